//! Pod and pod template validation: containers, ports, env, probes, volumes, tolerations and
//! the few fields a running pod may change.
//!
//! Know before editing: templates are validated by the same `pod_spec`; the workload decides
//! which restart policies it accepts. What may change on update lives in `pod_update`.

use serde_json::Value;

use super::meta::{
    annotations, is_dns1123_label, is_dns1123_subdomain, is_valid_label_value, labels,
};
use super::{field_of, list_of, non_negative, str_of, FieldError, Path};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_INT32: i64 = 2147483647;

/// A Pod object.
pub(super) fn pod(obj: &Value, errs: &mut Vec<FieldError>) {
    pod_spec(field_of(obj, "spec"), &Path::root("spec"), errs);
}

/// A pod template at `path` (`spec.template`): its labels, annotations and spec.
pub(super) fn template(tpl: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let meta = field_of(tpl, "metadata");
    labels(field_of(meta, "labels"), &path.child("labels"), errs);
    annotations(
        field_of(meta, "annotations"),
        &path.child("annotations"),
        errs,
    );
    let spec = field_of(tpl, "spec");
    pod_spec(spec, &path.child("spec"), errs);
    if !list_of(spec, "ephemeralContainers").is_empty() {
        errs.push(
            path.child("spec")
                .child("ephemeralContainers")
                .forbidden("ephemeral containers not allowed in pod template"),
        );
    }
}

/// `ValidatePodSpec`, for pods and templates alike.
fn pod_spec(spec: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let mut volumes: Vec<&str> = Vec::new();
    for (i, v) in list_of(spec, "volumes").iter().enumerate() {
        let p = path.child("volumes").index(i).child("name");
        let name = str_of(v, "name");
        if name.is_empty() {
            errs.push(p.required(""));
        } else {
            for m in is_dns1123_label(name) {
                errs.push(p.invalid(name, &m));
            }
            if volumes.contains(&name) {
                errs.push(p.duplicate(name));
            }
            volumes.push(name);
        }
    }
    let mut names: Vec<String> = Vec::new();
    let containers = list_of(spec, "containers");
    if containers.is_empty() {
        errs.push(path.child("containers").required(""));
    }
    for (i, c) in containers.iter().enumerate() {
        container(
            c,
            &path.child("containers").index(i),
            &mut names,
            false,
            errs,
        );
    }
    for (i, c) in list_of(spec, "initContainers").iter().enumerate() {
        container(
            c,
            &path.child("initContainers").index(i),
            &mut names,
            true,
            errs,
        );
    }
    one_of(
        str_of(spec, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
        &path.child("restartPolicy"),
        errs,
    );
    one_of(
        str_of(spec, "dnsPolicy"),
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        &path.child("dnsPolicy"),
        errs,
    );
    labels(
        field_of(spec, "nodeSelector"),
        &path.child("nodeSelector"),
        errs,
    );
    for (key, rule) in [
        (
            "serviceAccountName",
            is_dns1123_subdomain as fn(&str) -> Vec<String>,
        ),
        ("nodeName", is_dns1123_subdomain),
        ("priorityClassName", is_dns1123_subdomain),
        ("hostname", is_dns1123_label),
        ("subdomain", is_dns1123_label),
    ] {
        let v = str_of(spec, key);
        if !v.is_empty() {
            for m in rule(v) {
                errs.push(path.child(key).invalid(v, &m));
            }
        }
    }
    if let Some(d) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(1..=MAX_INT32).contains(&d) {
            errs.push(
                path.child("activeDeadlineSeconds")
                    .invalid(d, "must be between 1 and 2147483647, inclusive"),
            );
        }
    }
    for (i, t) in list_of(spec, "tolerations").iter().enumerate() {
        toleration(t, &path.child("tolerations").index(i), errs);
    }
}

fn container(
    c: &Value,
    path: &Path,
    names: &mut Vec<String>,
    init: bool,
    errs: &mut Vec<FieldError>,
) {
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(path.child("name").required(""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(path.child("name").invalid(name, &m));
        }
        if names.iter().any(|n| n == name) {
            errs.push(path.child("name").duplicate(name));
        } else {
            names.push(name.to_string());
        }
    }
    let image = str_of(c, "image");
    if image.is_empty() {
        errs.push(path.child("image").required(""));
    } else if image.trim() != image {
        errs.push(
            path.child("image")
                .invalid(image, "must not have leading or trailing whitespace"),
        );
    }
    one_of(
        str_of(c, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        &path.child("terminationMessagePolicy"),
        errs,
    );
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in list_of(c, "ports").iter().enumerate() {
        let pp = path.child("ports").index(i);
        let pname = str_of(p, "name");
        if !pname.is_empty() {
            let msgs = port_name(pname);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(pp.child("name").invalid(pname, &m));
                }
            } else if port_names.contains(&pname) {
                errs.push(pp.child("name").duplicate(pname));
            } else {
                port_names.push(pname);
            }
        }
        match p.get("containerPort").and_then(Value::as_i64) {
            None | Some(0) => errs.push(pp.child("containerPort").required("")),
            Some(n) => port_number(n, &pp.child("containerPort"), errs),
        }
        if let Some(h) = p
            .get("hostPort")
            .and_then(Value::as_i64)
            .filter(|h| *h != 0)
        {
            port_number(h, &pp.child("hostPort"), errs);
        }
        protocol(p, &pp, errs);
    }
    for (i, e) in list_of(c, "env").iter().enumerate() {
        let ep = path.child("env").index(i).child("name");
        let n = str_of(e, "name");
        if n.is_empty() {
            errs.push(ep.required(""));
        } else if n.chars().any(|ch| !(' '..='~').contains(&ch) || ch == '=') {
            errs.push(ep.invalid(n, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
        }
    }
    for (i, m) in list_of(c, "volumeMounts").iter().enumerate() {
        let mp = path.child("volumeMounts").index(i);
        if str_of(m, "name").is_empty() {
            errs.push(mp.child("name").required(""));
        }
        if str_of(m, "mountPath").is_empty() {
            errs.push(mp.child("mountPath").required(""));
        }
    }
    super::resources::requirements(field_of(c, "resources"), &path.child("resources"), errs);
    let sidecar = init && str_of(c, "restartPolicy") == "Always";
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = c.get(key).filter(|p| p.is_object()) else {
            continue;
        };
        let pp = path.child(key);
        if init && !sidecar {
            errs.push(
                pp.forbidden("may not be set for init containers without restartPolicy=Always"),
            );
            continue;
        }
        probe_rules(probe, &pp, errs);
        let success = probe.get("successThreshold").and_then(Value::as_i64);
        if key != "readinessProbe" && success.is_some_and(|s| s != 1) {
            errs.push(
                pp.child("successThreshold")
                    .invalid(success.unwrap_or_default(), "must be 1"),
            );
        }
    }
    one_of(
        str_of(c, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
        &path.child("imagePullPolicy"),
        errs,
    );
}

fn probe_rules(probe: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| probe.get(*h).is_some_and(|v| !v.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => errs.push(path.required("must specify a handler type")),
        [_] => {}
        [_, extra, ..] => errs.push(
            path.child(extra)
                .forbidden("may not specify more than 1 handler type"),
        ),
    }
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(probe, key, path, errs);
    }
}

fn toleration(t: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let key = str_of(t, "key");
    if !key.is_empty() {
        for m in super::meta::is_qualified_name(key) {
            errs.push(path.child("key").invalid(key, &m));
        }
    }
    let op = str_of(t, "operator");
    if key.is_empty() && op != "Exists" {
        errs.push(path.child("operator").invalid(op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
    }
    let effect = str_of(t, "effect");
    if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
        errs.push(path.child("effect").invalid(
            effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    let value = str_of(t, "value");
    match op {
        "" | "Equal" => {
            for m in is_valid_label_value(value) {
                errs.push(path.child("operator").invalid(value, &m));
            }
        }
        "Exists" if !value.is_empty() => {
            errs.push(
                path.child("operator")
                    .invalid(t.clone(), "value must be empty when `operator` is 'Exists'"),
            );
        }
        "Exists" => {}
        other => errs.push(
            path.child("operator")
                .not_supported(other, &["Equal", "Exists"]),
        ),
    }
    if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(
            path.child("effect")
                .not_supported(effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        );
    }
}

/// Required when empty, NotSupported when not one of `allowed`.
pub(super) fn one_of(v: &str, allowed: &[&str], path: &Path, errs: &mut Vec<FieldError>) {
    if v.is_empty() {
        errs.push(path.required(""));
    } else if !allowed.contains(&v) {
        errs.push(path.not_supported(v, allowed));
    }
}

/// `IsValidPortNum`.
pub(super) fn port_number(n: i64, path: &Path, errs: &mut Vec<FieldError>) {
    if !(1..=65535).contains(&n) {
        errs.push(path.invalid(n, "must be between 1 and 65535, inclusive"));
    }
}

/// `protocol` of a port: required, one of SCTP, TCP, UDP.
pub(super) fn protocol(port: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    one_of(
        str_of(port, "protocol"),
        PROTOCOLS,
        &path.child("protocol"),
        errs,
    );
}

/// `IsValidPortName`: IANA service names.
pub(super) fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn pod(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        apply_defaults(rt("", "Pod"), &mut p);
        p
    }

    fn check(spec: Value) -> Vec<String> {
        messages(&validate_create(rt("", "Pod"), &pod(spec)))
    }

    #[test]
    fn valid_pod_passes() {
        assert!(check(json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}]}]})).is_empty());
    }

    #[test]
    fn containers_are_required() {
        assert_eq!(check(json!({})), vec!["spec.containers: Required value"]);
    }

    #[test]
    fn container_name_image_and_duplicates() {
        let m = check(
            json!({"containers": [{"image": "a"}, {"name": "x", "image": ""}, {"name": "x", "image": "b"}],
            "initContainers": [{"name": "x", "image": "c"}]}),
        );
        assert_eq!(
            m,
            vec![
                "spec.containers[0].name: Required value",
                "spec.containers[1].image: Required value",
                "spec.containers[2].name: Duplicate value: \"x\"",
                "spec.initContainers[0].name: Duplicate value: \"x\"",
            ]
        );
    }

    #[test]
    fn container_ports() {
        let m = check(json!({"containers": [{"name": "c", "image": "i", "ports": [
            {"containerPort": 70000}, {"containerPort": 0, "protocol": "HTTP"}, {"name": "Web", "containerPort": 1}]}]}));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].containerPort: Required value",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[2].name: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ]
        );
    }

    #[test]
    fn pod_level_enums() {
        let m = check(
            json!({"restartPolicy": "Sometimes", "dnsPolicy": "Weird", "activeDeadlineSeconds": 0,
            "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Maybe"}]}),
        );
        assert_eq!(
            m,
            vec![
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"",
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            ]
        );
    }

    #[test]
    fn probes_env_mounts_and_tolerations() {
        let m = check(json!({"containers": [{"name": "c", "image": "i",
            "livenessProbe": {"successThreshold": 2},
            "env": [{"name": "A=B"}, {"value": "x"}],
            "volumeMounts": [{"name": "v"}]}],
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Maybe"}]}));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "spec.containers[0].env[1].name: Required value",
                "spec.containers[0].volumeMounts[0].mountPath: Required value",
                "spec.containers[0].livenessProbe: Required value: must specify a handler type",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"",
            ]
        );
    }

    #[test]
    fn duplicate_volumes() {
        let m = check(
            json!({"volumes": [{"name": "v"}, {"name": "v"}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(m, vec!["spec.volumes[1].name: Duplicate value: \"v\""]);
    }
}
