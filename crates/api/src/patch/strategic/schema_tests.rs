//! kubectl's real strategic merge patches against the generated Kubernetes schema.

use serde_json::{json, Value};

use super::strategic_merge_patch;
use crate::patch::{apply_patch, PatchType};
use crate::schema::{kind_message, Message};

fn kind(group: &str, kind: &str) -> &'static Message {
    kind_message(group, "v1", kind).unwrap_or_else(|| panic!("{kind} is in the schema"))
}

fn patched(doc: &Value, body: &str, root: &'static Message) -> Value {
    let body: Value = serde_json::from_str(body).expect("test patch is JSON");
    let mut out = doc.clone();
    strategic_merge_patch(&mut out, &body, root).expect("patch applies");
    out
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "demo", "labels": {"app": "api"},
                     "finalizers": ["example.dev/a", "example.dev/b"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [{
                        "name": "api", "image": "busybox:1.41",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "imagePullPolicy": "IfNotPresent"
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}]
                }
            }
        }
    })
}

#[test]
fn kubectl_apply_image_change_on_a_real_deployment() {
    // Verbatim body of kubectl 1.32 `apply -f app-v2.yaml` (strategic-merge-patch+json).
    let body = br#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"api\"},\"name\":\"api\",\"namespace\":\"demo\"},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"api\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"api\"}},\"spec\":{\"containers\":[{\"image\":\"busybox:1.99\",\"name\":\"api\",\"ports\":[{\"containerPort\":8080}]}]}}}}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"api"}],"containers":[{"image":"busybox:1.99","name":"api"}]}}}}"#;
    let doc = deployment();
    let out = apply_patch(
        &doc,
        body,
        PatchType::Strategic,
        Some(kind("apps", "Deployment")),
    )
    .expect("kubectl's patch applies");
    let mut want = doc.clone();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1.99");
    want["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration":
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].clone()
    });
    assert_eq!(out, want);
    assert!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .is_some_and(|s| s.contains("busybox:1.99"))
    );
}

#[test]
fn kubectl_rollout_restart_adds_a_template_annotation() {
    let body = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-27T01:29:25Z"}}}}}"#;
    let out = patched(&deployment(), body, kind("apps", "Deployment"));
    assert_eq!(
        out["spec"]["template"]["metadata"],
        json!({"labels": {"app": "api"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T01:29:25Z"}})
    );
    assert_eq!(
        out["spec"]["template"]["spec"],
        deployment()["spec"]["template"]["spec"]
    );
}

#[test]
fn strategy_switch_to_recreate_retains_only_type() {
    let body =
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}"#;
    let out = patched(&deployment(), body, kind("apps", "Deployment"));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn volume_source_switch_retains_keys_through_inlined_fields() {
    // Volumes merge by name with `merge,retainKeys`; the source fields are inlined in Go.
    let body = r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"data"}],"volumes":[{"$retainKeys":["hostPath","name"],"emptyDir":null,"hostPath":{"path":"/srv"},"name":"data"}]}}}}"#;
    let out = patched(&deployment(), body, kind("apps", "Deployment"));
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "hostPath": {"path": "/srv"}}])
    );
}

#[test]
fn finalizers_union_and_delete_from_primitive_list() {
    let root = kind("apps", "Deployment");
    let out = patched(
        &deployment(),
        r#"{"metadata":{"finalizers":["example.dev/c"]}}"#,
        root,
    );
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["example.dev/c", "example.dev/a", "example.dev/b"])
    );
    let body = r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.dev/a"]}}"#;
    let out = patched(&deployment(), body, root);
    assert_eq!(out["metadata"]["finalizers"], json!(["example.dev/b"]));
}

#[test]
fn tolerations_have_no_merge_strategy_and_are_replaced() {
    let body =
        r#"{"spec":{"template":{"spec":{"tolerations":[{"key":"b","operator":"Exists"}]}}}}"#;
    let out = patched(&deployment(), body, kind("apps", "Deployment"));
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn kubectl_apply_removing_a_service_port() {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}
        ]}
    });
    let body = r#"{"spec":{"$setElementOrder/ports":[{"port":80}],"ports":[{"$patch":"delete","port":443}]}}"#;
    let out = patched(&svc, body, kind("", "Service"));
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
}

#[test]
fn null_deletes_a_pod_label() {
    let pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "canary": "true"}}, "spec": {"containers": []}});
    let out = patched(
        &pod,
        r#"{"metadata":{"labels":{"canary":null}}}"#,
        kind("", "Pod"),
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
}
