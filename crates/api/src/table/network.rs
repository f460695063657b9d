//! Table printers for Services, Endpoints and EndpointSlices.
//! The one thing to know: list-valued cells (endpoints, ports) show at most three entries
//! and then `+ N more...`, exactly as upstream, because users grep for that text.

use serde_json::Value;

use super::{age, array_at, col, format_labels, int_at, name, str_at, Column, Printed, AGE, NAME};

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", 0, ""),
    col("Cluster-IP", "string", 0, ""),
    col("External-IP", "string", 0, ""),
    col("Port(s)", "string", 0, ""),
    AGE,
    col("Selector", "string", 1, ""),
];

pub(super) const ENDPOINTS_COLUMNS: &[Column] = &[NAME, col("Endpoints", "string", 0, ""), AGE];

pub(super) const ENDPOINTSLICE_COLUMNS: &[Column] = &[
    NAME,
    col("AddressType", "string", 0, ""),
    col("Ports", "string", 0, ""),
    col("Endpoints", "string", 0, ""),
    AGE,
];

pub(super) fn service(obj: &Value, now: i64) -> Printed {
    let svc_type = match str_at(obj, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = match obj.pointer("/spec/clusterIPs/0").and_then(Value::as_str) {
        Some(ip) => ip,
        None => match str_at(obj, "/spec/clusterIP") {
            "" => "<none>",
            ip => ip,
        },
    };
    let ports: Vec<String> = array_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            match int_at(p, "/nodePort") {
                np if np > 0 => format!("{}:{np}/{protocol}", int_at(p, "/port")),
                _ => format!("{}/{protocol}", int_at(p, "/port")),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    Printed::cells(vec![
        name(obj).into(),
        svc_type.into(),
        cluster_ip.into(),
        external_ip(obj, svc_type).into(),
        ports.into(),
        age(obj, now).into(),
        format_labels(obj.pointer("/spec/selector")).into(),
    ])
}

/// Upstream's `getServiceExternalIP` in its wide form (the server never truncates).
fn external_ip(obj: &Value, svc_type: &str) -> String {
    let external: Vec<&str> = array_at(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut ingress: Vec<&str> = array_at(obj, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match str_at(i, "/ip") {
                    "" => str_at(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            ingress.sort();
            ingress.dedup();
            ingress.extend(external);
            if ingress.is_empty() {
                "<pending>".to_string()
            } else {
                ingress.join(",")
            }
        }
        "ExternalName" => str_at(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

pub(super) fn endpoints(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        age(obj, now).into(),
    ])
}

/// Upstream's `formatEndpoints`: `ip:port` per (ready) address and port, first three shown.
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = array_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = array_at(ss, "/addresses");
        let ports = array_at(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            list.extend(
                addresses
                    .iter()
                    .map(|a| str_at(a, "/ip").to_string())
                    .take(MAX.saturating_sub(list.len())),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            let p = int_at(port, "/port");
            list.extend(
                addresses
                    .iter()
                    .map(|a| join_host_port(str_at(a, "/ip"), p))
                    .take(MAX.saturating_sub(list.len())),
            );
        }
    }
    let joined = list.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn endpointslice(obj: &Value, now: i64) -> Printed {
    let ports: Vec<String> = array_at(obj, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => match p.get("name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => "*".to_string(),
            },
        })
        .collect();
    let addresses: Vec<String> = array_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| array_at(e, "/addresses"))
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    Printed::cells(vec![
        name(obj).into(),
        str_at(obj, "/addressType").into(),
        list_with_more(&ports).into(),
        list_with_more(&addresses).into(),
        age(obj, now).into(),
    ])
}

/// Upstream's `listWithMoreString`: three entries, then `+ N more...`; `<unset>` if empty.
fn list_with_more(items: &[String]) -> String {
    const MAX: usize = 3;
    let shown = items[..items.len().min(MAX)].join(",");
    if items.len() > MAX {
        format!("{shown} + {} more...", items.len() - MAX)
    } else if shown.is_empty() {
        "<unset>".to_string()
    } else {
        shown
    }
}
