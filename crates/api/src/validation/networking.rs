//! Service, Endpoints and EndpointSlice validation.
//!
//! Know before editing: cluster IPs are compared as `spec.clusterIPs`; the API server must
//! copy the old allocation into an update that omits it (upstream's `patchAllocatedValues`)
//! before calling `validate_update`, or `kubectl replace` of a Service fails.

use std::net::IpAddr;

use serde_json::Value;

use super::meta::{is_dns1123_label, is_dns1123_subdomain, labels};
use super::pod::{one_of, port_name, port_number, protocol};
use super::{field_of, list_of, str_of, FieldError, Path};

const VALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

pub(super) fn service(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    let ty = str_of(spec, "type");
    let headless = str_of(spec, "clusterIP") == "None";
    if ty == "ExternalName" {
        let name = str_of(spec, "externalName");
        if name.is_empty() {
            errs.push(path.child("externalName").required(""));
        } else {
            for m in is_dns1123_subdomain(name.strip_suffix('.').unwrap_or(name)) {
                errs.push(path.child("externalName").invalid(name, &m));
            }
        }
    }
    let ports = list_of(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(path.child("ports").required(""));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut seen: Vec<(i64, &str)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = path.child("ports").index(i);
        let name = str_of(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(pp.child("name").required(""));
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(pp.child("name").invalid(name, &m));
            }
            if names.contains(&name) {
                errs.push(pp.child("name").duplicate(name));
            } else {
                names.push(name);
            }
        }
        port_number(
            p.get("port").and_then(Value::as_i64).unwrap_or(0),
            &pp.child("port"),
            errs,
        );
        protocol(p, &pp, errs);
        match field_of(p, "targetPort") {
            Value::Number(n) => port_number(n.as_i64().unwrap_or(0), &pp.child("targetPort"), errs),
            Value::String(s) => {
                for m in port_name(s) {
                    errs.push(pp.child("targetPort").invalid(s.as_str(), &m));
                }
            }
            _ => {}
        }
        if ty == "ClusterIP"
            && p.get("nodePort")
                .and_then(Value::as_i64)
                .is_some_and(|n| n != 0)
        {
            errs.push(
                pp.child("nodePort")
                    .forbidden("may not be used when `type` is 'ClusterIP'"),
            );
        }
        let key = (
            p.get("port").and_then(Value::as_i64).unwrap_or(0),
            str_of(p, "protocol"),
        );
        if seen.contains(&key) {
            errs.push(pp.duplicate(serde_json::json!({"port": key.0, "protocol": key.1})));
        } else {
            seen.push(key);
        }
    }
    if !matches!(
        ty,
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort"
    ) {
        let allowed = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
        if ty.is_empty() {
            errs.push(path.child("type").required(""));
        } else {
            errs.push(path.child("type").not_supported(ty, allowed));
        }
    }
    one_of(
        str_of(spec, "sessionAffinity"),
        &["ClientIP", "None"],
        &path.child("sessionAffinity"),
        errs,
    );
    labels(field_of(spec, "selector"), &path.child("selector"), errs);
    for (i, ip) in cluster_ips(spec).iter().enumerate() {
        if !ip.is_empty() && *ip != "None" && ip.parse::<IpAddr>().is_err() {
            errs.push(path.child("clusterIPs").index(i).invalid(*ip, VALID_IP));
        }
    }
    let itp = str_of(spec, "internalTrafficPolicy");
    if !itp.is_empty() && !matches!(itp, "Cluster" | "Local") {
        errs.push(
            path.child("internalTrafficPolicy")
                .not_supported(itp, &["Cluster", "Local"]),
        );
    }
}

/// A set cluster IP may not change (ExternalName services and headless-to-headless aside).
pub(super) fn service_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (field_of(new, "spec"), field_of(old, "spec"));
    if str_of(ns, "type") == "ExternalName" || str_of(os, "type") == "ExternalName" {
        return;
    }
    if str_of(ns, "clusterIP") == "None" && str_of(os, "clusterIP") == "None" {
        return;
    }
    let (new_ips, old_ips) = (cluster_ips(ns), cluster_ips(os));
    let shown = Value::from(new_ips.clone());
    let path = Path::root("spec").child("clusterIPs");
    if new_ips.len() == old_ips.len() {
        for (i, (n, o)) in new_ips.iter().zip(&old_ips).enumerate() {
            if n != o {
                errs.push(
                    path.index(i)
                        .invalid(shown.clone(), "may not change once set"),
                );
            }
        }
    } else if new_ips.is_empty() {
        errs.push(
            path.index(0)
                .invalid(shown, "primary clusterIP can not be unset"),
        );
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(path.index(0).invalid(shown, "may not change once set"));
    }
}

pub(super) fn endpoints(obj: &Value, errs: &mut Vec<FieldError>) {
    let path = Path::root("subsets");
    for (i, ss) in list_of(obj, "subsets").iter().enumerate() {
        let sp = path.index(i);
        let (ready, not_ready) = (list_of(ss, "addresses"), list_of(ss, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(sp.required("must specify `addresses` or `notReadyAddresses`"));
        }
        for (key, list) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                endpoint_address(a, &sp.child(key).index(j), errs);
            }
        }
        let ports = list_of(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let pp = sp.child("ports").index(j);
            let name = str_of(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(pp.child("name").required(""));
            } else if !name.is_empty() {
                for m in is_dns1123_label(name) {
                    errs.push(pp.child("name").invalid(name, &m));
                }
            }
            port_number(
                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                &pp.child("port"),
                errs,
            );
            protocol(p, &pp, errs);
        }
    }
}

pub(super) fn endpoint_slice(obj: &Value, errs: &mut Vec<FieldError>) {
    let addr_type = str_of(obj, "addressType");
    let at = Path::root("addressType");
    if addr_type.is_empty() {
        errs.push(at.required(""));
    } else if !matches!(addr_type, "IPv4" | "IPv6" | "FQDN") {
        errs.push(at.not_supported(addr_type, &["FQDN", "IPv4", "IPv6"]));
    }
    let endpoints = list_of(obj, "endpoints");
    let ep = Path::root("endpoints");
    if endpoints.len() > 1000 {
        errs.push(ep.too_many(endpoints.len(), 1000));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let ap = ep.index(i).child("addresses");
        let addrs = list_of(e, "addresses");
        if addrs.is_empty() {
            errs.push(ap.required("must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(ap.too_many(addrs.len(), 100));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let msg = match (addr_type, a.parse::<IpAddr>()) {
                ("IPv4", Ok(IpAddr::V4(_))) | ("IPv6", Ok(IpAddr::V6(_))) => None,
                ("IPv4", _) => Some("must be a valid IPv4 address".to_string()),
                ("IPv6", _) => Some("must be a valid IPv6 address".to_string()),
                ("FQDN", _) => is_dns1123_subdomain(a).into_iter().next(),
                _ => None,
            };
            if let Some(m) = msg {
                errs.push(ap.index(j).invalid(a, &m));
            }
        }
        for (key, rule) in [
            ("nodeName", is_dns1123_subdomain as fn(&str) -> Vec<String>),
            ("hostname", is_dns1123_label),
        ] {
            if let Some(v) = e.get(key).and_then(Value::as_str) {
                for m in rule(v) {
                    errs.push(ep.index(i).child(key).invalid(v, &m));
                }
            }
        }
    }
    let ports = list_of(obj, "ports");
    let pp = Path::root("ports");
    if ports.len() > 20000 {
        errs.push(pp.too_many(ports.len(), 20000));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = pp.index(i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(ip.child("name").invalid(name, &m));
            }
        }
        if names.contains(&name) {
            errs.push(ip.child("name").duplicate(name));
        } else {
            names.push(name);
        }
        protocol(p, &ip, errs);
        if let Some(n) = p.get("port").and_then(Value::as_i64) {
            port_number(n, &ip.child("port"), errs);
        }
    }
}

pub(super) fn endpoint_slice_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (n, o) = (str_of(new, "addressType"), str_of(old, "addressType"));
    if n != o {
        errs.push(Path::root("addressType").invalid(n, "field is immutable"));
    }
}

fn endpoint_address(a: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let ip = str_of(a, "ip");
    match ip.parse::<IpAddr>() {
        Err(_) => errs.push(path.child("ip").invalid(ip, VALID_IP)),
        Ok(addr) => {
            let special = if addr.is_unspecified() {
                Some("may not be unspecified (0.0.0.0)")
            } else if addr.is_loopback() {
                Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
            } else if is_link_local(&addr) {
                Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
            } else {
                None
            };
            if let Some(m) = special {
                errs.push(path.child("ip").invalid(ip, m));
            }
        }
    }
    let hostname = str_of(a, "hostname");
    if !hostname.is_empty() {
        for m in is_dns1123_label(hostname) {
            errs.push(path.child("hostname").invalid(hostname, &m));
        }
    }
    if let Some(node) = a.get("nodeName").and_then(Value::as_str) {
        for m in is_dns1123_subdomain(node) {
            errs.push(path.child("nodeName").invalid(node, &m));
        }
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `spec.clusterIPs`, or `[spec.clusterIP]` when only the singular field is set.
fn cluster_ips(spec: &Value) -> Vec<&str> {
    let ips: Vec<&str> = list_of(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    match str_of(spec, "clusterIP") {
        "" => Vec::new(),
        ip => vec![ip],
    }
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create, validate_update};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn svc(spec: Value) -> Value {
        let mut o = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        apply_defaults(rt("", "Service"), &mut o);
        o
    }

    fn check(spec: Value) -> Vec<String> {
        messages(&validate_create(rt("", "Service"), &svc(spec)))
    }

    #[test]
    fn valid_services_pass() {
        assert!(check(
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]})
        )
        .is_empty());
        assert!(check(json!({"clusterIP": "None"})).is_empty());
        assert!(
            check(json!({"type": "ExternalName", "externalName": "db.example.com"})).is_empty()
        );
    }

    #[test]
    fn ports_are_required_and_checked() {
        assert_eq!(check(json!({})), vec!["spec.ports: Required value"]);
        let m = check(
            json!({"ports": [{"port": 0}, {"name": "a", "port": 80, "nodePort": 30000}, {"name": "a", "port": 80}]}),
        );
        assert_eq!(
            m,
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                "spec.ports[2].name: Duplicate value: \"a\"",
                "spec.ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            ]
        );
    }

    #[test]
    fn type_affinity_and_cluster_ip() {
        let m = check(
            json!({"type": "Magic", "sessionAffinity": "Sticky", "clusterIP": "1.2.3", "ports": [{"port": 80}]}),
        );
        assert_eq!(
            m,
            vec![
                "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
                "spec.clusterIPs[0]: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ]
        );
        assert_eq!(
            check(json!({"type": "ExternalName"})),
            vec!["spec.externalName: Required value"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old = svc(
            json!({"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80}]}),
        );
        let new = svc(
            json!({"clusterIP": "10.0.0.6", "clusterIPs": ["10.0.0.6"], "ports": [{"port": 80}]}),
        );
        assert_eq!(
            messages(&validate_update(rt("", "Service"), &new, &old)),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.6\"}: may not change once set"]
        );
        let same = svc(
            json!({"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 81}]}),
        );
        assert!(validate_update(rt("", "Service"), &same, &old).is_empty());
    }

    #[test]
    fn endpoints_addresses_and_ports() {
        let mut ep = json!({"metadata": {"name": "web", "namespace": "d"}, "subsets": [
            {"addresses": [{"ip": "10.1.0.4"}, {"ip": "127.0.0.1"}], "ports": [{"port": 80}, {"name": "b", "port": 81}]},
            {"ports": [{"port": 80}]}]});
        apply_defaults(rt("", "Endpoints"), &mut ep);
        assert_eq!(
            messages(&validate_create(rt("", "Endpoints"), &ep)),
            vec![
                "subsets[0].addresses[1].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[0].ports[0].name: Required value",
                "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
            ]
        );
    }

    #[test]
    fn endpoint_slice_rules() {
        let rt = rt("discovery.k8s.io", "EndpointSlice");
        let mut es = json!({"metadata": {"name": "web-abc", "namespace": "d"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": []}, {"addresses": ["fe80::1"]}],
            "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]});
        apply_defaults(rt, &mut es);
        assert_eq!(
            messages(&validate_create(rt, &es)),
            vec![
                "endpoints[1].addresses: Required value: must contain at least 1 address",
                "endpoints[2].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
                "ports[1].name: Duplicate value: \"http\"",
            ]
        );
        let mut v6 = es.clone();
        v6["addressType"] = json!("IPv6");
        v6["endpoints"] = json!([{"addresses": ["fe80::1"]}]);
        v6["ports"] = json!([]);
        assert_eq!(
            messages(&validate_update(rt, &v6, &es)),
            vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
        let mut missing = es;
        missing["addressType"] = json!("");
        missing["endpoints"] = json!([]);
        assert_eq!(
            messages(&validate_create(rt, &missing))[0],
            "addressType: Required value"
        );
    }
}
