//! Table printers for cluster and configuration kinds: Nodes, Namespaces, ConfigMaps,
//! Secrets, ServiceAccounts and Leases.
//! The one thing to know: node STATUS looks only at the Ready condition (the last one
//! wins if repeated) plus `spec.unschedulable`, as upstream's `printNode`.

use serde_json::Value;

use super::{age, array_at, col, len_at, name, str_at, Column, Printed, AGE, NAME};

pub(super) const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", 0, ""),
    col("Roles", "string", 0, ""),
    AGE,
    col("Version", "string", 0, ""),
    col("Internal-IP", "string", 1, ""),
    col("External-IP", "string", 1, ""),
    col("OS-Image", "string", 1, ""),
    col("Kernel-Version", "string", 1, ""),
    col("Container-Runtime", "string", 1, ""),
];

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[NAME, col("Status", "string", 0, ""), AGE];

pub(super) const CONFIGMAP_COLUMNS: &[Column] = &[NAME, col("Data", "string", 0, ""), AGE];

pub(super) const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", 0, ""),
    col("Data", "string", 0, ""),
    AGE,
];

pub(super) const SERVICEACCOUNT_COLUMNS: &[Column] = &[NAME, col("Secrets", "string", 0, ""), AGE];

pub(super) const LEASE_COLUMNS: &[Column] = &[NAME, col("Holder", "string", 0, ""), AGE];

pub(super) fn node(obj: &Value, now: i64) -> Printed {
    let ready = array_at(obj, "/status/conditions")
        .iter()
        .rfind(|c| str_at(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if obj
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    if let Some(Value::Object(labels)) = obj.pointer("/metadata/labels") {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if k == "kubernetes.io/role" {
                roles.extend(v.as_str().filter(|r| !r.is_empty()));
            }
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |ty: &str| {
        array_at(obj, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == ty)
            .map(|a| str_at(a, "/address"))
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |field: &str| match str_at(obj, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    Printed::cells(vec![
        name(obj).into(),
        status.join(",").into(),
        roles.into(),
        age(obj, now).into(),
        str_at(obj, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ])
}

pub(super) fn namespace(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![
        name(obj).into(),
        str_at(obj, "/status/phase").into(),
        age(obj, now).into(),
    ])
}

pub(super) fn configmap(obj: &Value, now: i64) -> Printed {
    let data = len_at(obj, "/data") + len_at(obj, "/binaryData");
    Printed::cells(vec![name(obj).into(), data.into(), age(obj, now).into()])
}

pub(super) fn secret(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![
        name(obj).into(),
        str_at(obj, "/type").into(),
        len_at(obj, "/data").into(),
        age(obj, now).into(),
    ])
}

pub(super) fn serviceaccount(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![
        name(obj).into(),
        len_at(obj, "/secrets").into(),
        age(obj, now).into(),
    ])
}

pub(super) fn lease(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![
        name(obj).into(),
        str_at(obj, "/spec/holderIdentity").into(),
        age(obj, now).into(),
    ])
}
