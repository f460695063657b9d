//! Server-side defaulting: fills the fields Kubernetes' `SetDefaults_*` functions fill, so a
//! created object reads back exactly as it would from a real API server.
//!
//! Run it after decoding and before validation, on create and on update alike. Only values
//! that are absent (or `null`, or `""` for string enums) are filled; a value the client set is
//! never changed. Allocation (cluster IPs, node ports), generated selectors and admission
//! defaults (service account) are not defaulting and live in the API server.

mod pod;
mod workloads;

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;

/// Fills unset fields of `obj` (an object of type `rt`) with upstream defaults.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (rt.group, rt.kind) {
        ("", "Pod") => pod::pod(root),
        ("", "Service") => service(root),
        ("", "Secret") => secret(root),
        ("", "Namespace") => namespace(root),
        ("", "Node") => node(root),
        ("", "Endpoints") => endpoints(root),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(root),
        ("apps", "Deployment") => workloads::deployment(root),
        ("apps", "ReplicaSet") => workloads::replica_set(root),
        ("apps", "DaemonSet") => workloads::daemon_set(root),
        ("apps", "StatefulSet") => workloads::stateful_set(root),
        ("batch", "Job") => workloads::job(root),
        _ => {}
    }
}

/// `SetDefaults_Service`; cluster IPs, IP families and node ports are the allocator's.
fn service(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_str(port, "protocol", "TCP");
            let unset = match port.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if unset {
                if let Some(p) = port.get("port").cloned() {
                    port.insert("targetPort".into(), p);
                }
            }
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" || ty == "ClusterIP" {
        default_str(spec, "internalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default_value(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // `status.loadBalancer` is a non-pointer struct upstream, so it always serialises as `{}`.
    if let Some(status) = ensure_obj(root, "status") {
        default_value(status, "loadBalancer", json!({}));
    }
}

/// `SetDefaults_Secret`, plus the v1 conversion that folds `stringData` into `data`.
fn secret(root: &mut Map<String, Value>) {
    default_str(root, "type", "Opaque");
    // Upstream merges stringData into data while converting v1 to the internal type, so
    // stringData is never stored or returned; its values win over data's.
    if let Some(Value::Object(string_data)) = root.remove("stringData") {
        if let Some(data) = ensure_obj(root, "data") {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or_default();
                data.insert(k, Value::String(base64_encode(text.as_bytes())));
            }
        }
    }
}

/// `SetDefaults_Namespace` and `SetDefaults_NamespaceStatus`, plus the `kubernetes` finalizer
/// the namespace strategy adds on create.
fn namespace(root: &mut Map<String, Value>) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(name), Some(meta)) = (name, ensure_obj(root, "metadata")) {
        if let Some(labels) = ensure_obj(meta, "labels") {
            // Always overwritten: the label must tell the truth about the name.
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
    }
    if let Some(spec) = ensure_obj(root, "spec") {
        let empty = spec
            .get("finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if empty {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
    }
    if let Some(status) = ensure_obj(root, "status") {
        default_str(status, "phase", "Active");
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn node(root: &mut Map<String, Value>) {
    let Some(status) = root.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
        default_value(status, "allocatable", capacity);
    }
}

/// `SetDefaults_EndpointPort` for every port of every subset.
fn endpoints(root: &mut Map<String, Value>) {
    let Some(subsets) = root.get_mut("subsets").and_then(Value::as_array_mut) else {
        return;
    };
    for subset in subsets.iter_mut().filter_map(Value::as_object_mut) {
        for port in objects_mut(subset, "ports") {
            default_str(port, "protocol", "TCP");
        }
    }
}

/// discovery/v1 `SetDefaults_EndpointPort`: name `""` and protocol TCP.
fn endpoint_slice(root: &mut Map<String, Value>) {
    for port in objects_mut(root, "ports") {
        default_value(port, "name", json!(""));
        default_str(port, "protocol", "TCP");
    }
}

/// The object under `key`, inserting `{}` when absent or null; None when it is not an object
/// (a type error the decoder reports, not ours to clobber).
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Sets `key` when absent or null.
pub(crate) fn default_value(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// Sets a string enum when absent, null or empty (Go cannot tell `""` from unset).
pub(crate) fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if unset {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// The object elements of the array under `key` (nothing when absent).
pub(crate) fn objects_mut<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut())
        .filter_map(Value::as_object_mut)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
pub(crate) fn rt(group: &str, kind: &str) -> &'static ResourceType {
    crate::registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .expect("kind is registered")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(rt(group, kind), &mut obj);
        obj
    }

    #[test]
    fn service_defaults_type_affinity_policy_and_ports() {
        let svc = defaulted(
            "",
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["protocol"], "UDP");
        assert_eq!(spec["ports"][1]["targetPort"], "dns");
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn load_balancer_service_gets_external_policy_and_node_ports_flag() {
        let svc = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": 0}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        assert_eq!(spec["ports"][0]["targetPort"], 443);
    }

    #[test]
    fn external_name_service_gets_no_internal_traffic_policy() {
        let svc = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "a.b"}}),
        );
        assert!(svc["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn secret_defaults_to_opaque_and_folds_string_data() {
        let s = defaulted(
            "",
            "Secret",
            json!({"data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "hello"}}),
        );
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"a": "eA==", "b": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
        let tls = defaulted("", "Secret", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(tls["type"], "kubernetes.io/tls");
    }

    #[test]
    fn namespace_gets_finalizer_phase_and_name_label() {
        let ns = defaulted(
            "",
            "Namespace",
            json!({"metadata": {"name": "team-a", "labels": {"x": "y"}}}),
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let n = defaulted(
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "pods": "110"}}}),
        );
        assert_eq!(
            n["status"]["allocatable"],
            json!({"cpu": "4", "pods": "110"})
        );
        let n = defaulted(
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}}),
        );
        assert_eq!(n["status"]["allocatable"], json!({"cpu": "3"}));
    }

    #[test]
    fn endpoint_ports_default_protocol_and_slice_port_name() {
        let ep = defaulted(
            "",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let es = defaulted(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
        );
        assert_eq!(
            es["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
        assert_eq!(es["ports"][1]["protocol"], "UDP");
    }

    /// Every field defaulting adds must exist in the wire schema, or a defaulted object would
    /// fail strict decoding when a client sends it back.
    #[test]
    fn defaulted_objects_have_only_schema_fields() {
        let tpl = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"hostNetwork": true,
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": 80}}, "resources": {"limits": {"cpu": "1"}},
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
            "volumes": [{"name": "v"}, {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}});
        let cases = [
            ("", "Pod", tpl.clone()),
            (
                "",
                "Service",
                json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
            ),
            ("", "Secret", json!({"stringData": {"a": "b"}})),
            ("", "Namespace", json!({"metadata": {"name": "n"}})),
            ("", "Node", json!({"status": {"capacity": {"cpu": "1"}}})),
            (
                "",
                "Endpoints",
                json!({"subsets": [{"ports": [{"port": 1}]}]}),
            ),
            (
                "discovery.k8s.io",
                "EndpointSlice",
                json!({"ports": [{"port": 1}]}),
            ),
            (
                "apps",
                "Deployment",
                json!({"spec": {"template": tpl.clone()}}),
            ),
            (
                "apps",
                "ReplicaSet",
                json!({"spec": {"template": tpl.clone()}}),
            ),
            (
                "apps",
                "DaemonSet",
                json!({"spec": {"template": tpl.clone()}}),
            ),
            (
                "apps",
                "StatefulSet",
                json!({"spec": {"template": tpl.clone(), "volumeClaimTemplates": [{"metadata": {"name": "d"}}]}}),
            ),
            (
                "batch",
                "Job",
                json!({"spec": {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "X"}]}]}, "template": tpl}}),
            ),
        ];
        for (group, kind, obj) in cases {
            let obj = defaulted(group, kind, obj);
            let schema = crate::schema::kind_message(group, "v1", kind).expect("kind has a schema");
            assert_eq!(
                crate::strict::unknown_fields(schema, &obj),
                Vec::<String>::new(),
                "{kind}"
            );
        }
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
        assert_eq!(defaulted("", "ConfigMap", cm.clone()), cm);
    }
}
