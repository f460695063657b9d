//! Pod and pod template defaults (`SetDefaults_Pod`, `SetDefaults_PodSpec`, containers, ports,
//! probes, volumes).
//!
//! Know before editing: some defaults apply only to Pods, never to templates (requests from
//! limits, enableServiceLinks, hostNetwork host ports), exactly as upstream, because a
//! Deployment's template must read back as the user wrote it.

use serde_json::{json, Map, Value};

use super::{default_str, default_value, ensure_obj, objects_mut};

/// Defaults of a Pod object.
pub(super) fn pod(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    pod_spec(spec);
    for key in ["containers", "initContainers"] {
        for c in objects_mut(spec, key) {
            requests_from_limits(c);
        }
    }
    default_value(spec, "enableServiceLinks", json!(true));
    // Set by the Priority admission plugin upstream when no priority class applies; clients
    // expect to read these back. A named class is the API server's to resolve.
    let no_class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if no_class {
        default_value(spec, "priority", json!(0));
        default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in objects_mut(spec, key) {
                for port in objects_mut(c, "ports") {
                    let unset = port
                        .get("hostPort")
                        .is_none_or(|h| h.is_null() || h.as_i64() == Some(0));
                    if let (true, Some(cp)) = (unset, port.get("containerPort").cloned()) {
                        port.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
}

/// Defaults of `spec.template` in a workload; the template's own metadata is left alone.
pub(super) fn template(spec: &mut Map<String, Value>) {
    let Some(template) = ensure_obj(spec, "template") else {
        return;
    };
    if let Some(pod_spec_obj) = ensure_obj(template, "spec") {
        pod_spec(pod_spec_obj);
    }
}

/// `SetDefaults_PodSpec` and everything nested in a pod spec.
fn pod_spec(spec: &mut Map<String, Value>) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in objects_mut(spec, key) {
            container(c);
        }
    }
    for v in objects_mut(spec, "volumes") {
        volume(v);
    }
}

/// `SetDefaults_Container` plus the nested port, probe, handler and env defaults.
fn container(c: &mut Map<String, Value>) {
    let unset_policy = c
        .get("imagePullPolicy")
        .is_none_or(|p| p.is_null() || p.as_str() == Some(""));
    if unset_policy {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default_value(c, "resources", json!({}));
    for port in objects_mut(c, "ports") {
        default_str(port, "protocol", "TCP");
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = c.get_mut(key).and_then(Value::as_object_mut) {
            default_value(probe, "timeoutSeconds", json!(1));
            default_value(probe, "periodSeconds", json!(10));
            default_value(probe, "successThreshold", json!(1));
            default_value(probe, "failureThreshold", json!(3));
            handler(probe);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for key in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(key).and_then(Value::as_object_mut) {
                handler(h);
            }
        }
    }
    for env in objects_mut(c, "env") {
        if let Some(field_ref) = env
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            default_str(field_ref, "apiVersion", "v1");
        }
    }
}

/// `SetDefaults_HTTPGetAction` inside a probe or lifecycle handler.
fn handler(h: &mut Map<String, Value>) {
    if let Some(get) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_str(get, "path", "/");
        default_str(get, "scheme", "HTTP");
    }
}

/// Volume source defaults: an empty source means emptyDir; file modes default to 0644.
fn volume(v: &mut Map<String, Value>) {
    if v.keys().all(|k| k == "name") {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = v.get_mut(source).and_then(Value::as_object_mut) {
            default_value(src, "defaultMode", json!(0o644));
        }
    }
    if let Some(host_path) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        default_value(host_path, "type", json!(""));
    }
    if let Some(downward) = v.get_mut("downwardAPI").and_then(Value::as_object_mut) {
        for item in objects_mut(downward, "items") {
            field_ref_version(item);
        }
    }
    if let Some(projected) = v.get_mut("projected").and_then(Value::as_object_mut) {
        for src in objects_mut(projected, "sources") {
            if let Some(token) = src
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                default_value(token, "expirationSeconds", json!(3600));
            }
            if let Some(downward) = src.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                for item in objects_mut(downward, "items") {
                    field_ref_version(item);
                }
            }
        }
    }
}

fn field_ref_version(item: &mut Map<String, Value>) {
    if let Some(field_ref) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
        default_str(field_ref, "apiVersion", "v1");
    }
}

/// Pods only: a resource with a limit but no request is requested at its limit.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(resources) = ensure_obj(c, "resources") else {
        return;
    };
    let Some(requests) = ensure_obj(resources, "requests") else {
        return;
    };
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
}

/// The tag of an image reference as the kubelet's parser sees it: `latest` when there is
/// neither tag nor digest, None when only a digest is given.
fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest.is_some() => None,
        None => Some("latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{apply_defaults, rt};
    use super::*;

    fn pod_of(spec: Value) -> Value {
        let mut p =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
        apply_defaults(rt("", "Pod"), &mut p);
        p
    }

    #[test]
    fn pod_spec_level_defaults() {
        let p = pod_of(json!({"containers": [{"name": "c", "image": "nginx:1.27"}]}));
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        assert_eq!(s["priority"], 0);
        assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority");
        let classed = pod_of(
            json!({"priorityClassName": "high", "containers": [{"name": "c", "image": "x:1"}]}),
        );
        assert!(classed["spec"].get("priority").is_none());
    }

    #[test]
    fn explicit_values_are_kept() {
        let p = pod_of(
            json!({"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "enableServiceLinks": false, "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never"}]}),
        );
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 0);
        assert_eq!(p["spec"]["enableServiceLinks"], false);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn container_defaults() {
        let p = pod_of(
            json!({"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}),
        );
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert!(c["ports"][0].get("hostPort").is_none());
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let policy = |image: &str| {
            let p = pod_of(json!({"containers": [{"name": "c", "image": image}]}));
            p["spec"]["containers"][0]["imagePullPolicy"].clone()
        };
        assert_eq!(policy("nginx"), "Always");
        assert_eq!(policy("nginx:latest"), "Always");
        assert_eq!(policy("localhost:5000/app"), "Always");
        assert_eq!(policy("localhost:5000/app:v2"), "IfNotPresent");
        assert_eq!(policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(policy("nginx:1.0@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn probe_and_handler_defaults() {
        let p = pod_of(json!({"containers": [{"name": "c", "image": "x:1",
            "livenessProbe": {"httpGet": {"port": 8080}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}}]}));
        let c = &p["spec"]["containers"][0];
        let live = &c["livenessProbe"];
        assert_eq!(live["timeoutSeconds"], 1);
        assert_eq!(live["periodSeconds"], 10);
        assert_eq!(live["successThreshold"], 1);
        assert_eq!(live["failureThreshold"], 3);
        assert_eq!(
            live["httpGet"],
            json!({"port": 8080, "path": "/", "scheme": "HTTP"})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["path"], "/stop");
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
    }

    #[test]
    fn pod_requests_default_to_limits() {
        let p = pod_of(json!({"containers": [{"name": "c", "image": "x:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]}));
        let r = &p["spec"]["containers"][0]["resources"];
        assert_eq!(r["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
    }

    #[test]
    fn host_network_pods_get_host_ports() {
        let p = pod_of(
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x:1",
            "ports": [{"containerPort": 9100}]}]}),
        );
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 9100);
    }

    #[test]
    fn env_and_volume_defaults() {
        let p = pod_of(json!({"containers": [{"name": "c", "image": "x:1",
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
            "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "s", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                {"name": "h", "hostPath": {"path": "/var"}}]}));
        let s = &p["spec"];
        assert_eq!(
            s["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(s["volumes"][0], json!({"name": "scratch", "emptyDir": {}}));
        assert_eq!(s["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(s["volumes"][2]["secret"]["defaultMode"], 256);
        assert_eq!(s["volumes"][3]["projected"]["defaultMode"], 420);
        assert_eq!(
            s["volumes"][3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(s["volumes"][4]["hostPath"]["type"], "");
    }

    #[test]
    fn init_containers_get_container_defaults() {
        let p = pod_of(
            json!({"initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "c", "image": "x:1"}]}),
        );
        assert_eq!(p["spec"]["initContainers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["initContainers"][0]["terminationMessagePolicy"],
            "File"
        );
    }
}
