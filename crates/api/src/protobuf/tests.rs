//! Fixtures are the exact bodies kubectl 1.32.5 sent for `kubectl create …` (see the README
//! beside them); the synthetic bodies below are built with a tiny encoder.

use super::*;
use serde_json::json;

const NAMESPACE: &[u8] = include_bytes!("../../tests/fixtures/protobuf/namespace.pb");
const DEPLOYMENT: &[u8] = include_bytes!("../../tests/fixtures/protobuf/deployment.pb");
const CONFIGMAP: &[u8] = include_bytes!("../../tests/fixtures/protobuf/configmap.pb");
const SECRET: &[u8] = include_bytes!("../../tests/fixtures/protobuf/secret.pb");
const SERVICE: &[u8] = include_bytes!("../../tests/fixtures/protobuf/service.pb");
const JOB: &[u8] = include_bytes!("../../tests/fixtures/protobuf/job.pb");

fn decoded(body: &[u8]) -> Value {
    decode(body).unwrap_or_else(|e| panic!("fixture decodes: {e}"))
}

#[test]
fn kubectl_namespace_matches_its_json_form() {
    // The same command with kubectl 1.31 (JSON) sends exactly this object.
    assert_eq!(
        serde_json::to_string(&decoded(NAMESPACE)).expect("serialises"),
        r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"shop","creationTimestamp":null},"spec":{},"status":{}}"#
    );
}

#[test]
fn kubectl_deployment_keeps_replicas_labels_and_image() {
    let expected = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]}
            },
            "strategy": {}
        },
        "status": {}
    });
    let got = decoded(DEPLOYMENT);
    assert_eq!(got, expected);
    // Key order follows the Go structs, like Kubernetes' own JSON.
    assert_eq!(
        serde_json::to_string(&got).ok(),
        serde_json::to_string(&expected).ok()
    );
}

#[test]
fn kubectl_configmap_and_secret_data() {
    let cm = decoded(CONFIGMAP);
    assert_eq!(cm["metadata"]["name"], "cfg");
    assert_eq!(cm["data"], json!({"a": "b"}));
    let secret = decoded(SECRET);
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(
        secret["data"],
        json!({"k": "dg=="}),
        "bytes are base64 of \"v\""
    );
}

#[test]
fn kubectl_service_ports_and_target_port() {
    let svc = decoded(SERVICE);
    assert_eq!(
        svc["spec"],
        json!({
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "web"},
            "type": "ClusterIP"
        })
    );
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
}

#[test]
fn kubectl_job_command_and_restart_policy() {
    let job = decoded(JOB);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["command"], json!(["echo", "hi"]));
    assert_eq!(pod["restartPolicy"], "Never");
}

// ---- a tiny encoder for synthetic bodies ----

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(tag: u32, wire: u8, out: &mut Vec<u8>) {
    varint(u64::from(tag) << 3 | u64::from(wire), out);
}

fn len(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    key(tag, LEN, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn int(tag: u32, v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    key(tag, VARINT, &mut out);
    varint(v as u64, &mut out);
    out
}

fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [len(1, api_version.as_bytes()), len(2, kind.as_bytes())].concat();
    let mut out = MAGIC.to_vec();
    out.extend(len(1, &type_meta));
    out.extend(len(2, raw));
    out
}

#[test]
fn pointer_zero_survives_but_omitempty_zero_does_not() {
    // DeploymentSpec { replicas = 1 (*int32): 0, minReadySeconds = 5 (int32): 0, paused = 7: false }
    let spec = [int(1, 0), int(5, 0), int(7, 0)].concat();
    let got = decoded(&body("apps/v1", "Deployment", &len(2, &spec)));
    assert_eq!(got["spec"], json!({"replicas": 0}));
}

#[test]
fn well_known_types_take_their_json_forms() {
    // ObjectMeta.creationTimestamp = Time{seconds=1704164645}; labels with an empty value.
    let meta = [
        len(1, b"web"),
        len(8, &int(1, 1_704_164_645)),
        len(11, &[len(1, b"tier"), len(2, b"")].concat()),
    ]
    .concat();
    // ServicePort { port = 3: 80, targetPort = 4: IntOrString{type=1, strVal="http"} }
    let port = [int(3, 80), len(4, &[int(1, 1), len(3, b"http")].concat())].concat();
    // ServiceSpec { ports = 1, healthCheckNodePort = 12 (int32, omitempty): -1 }
    let spec = [len(1, &port), int(12, -1)].concat();
    let got = decoded(&body(
        "v1",
        "Service",
        &[len(1, &meta), len(2, &spec)].concat(),
    ));
    assert_eq!(got["metadata"]["creationTimestamp"], "2024-01-02T03:04:05Z");
    assert_eq!(got["metadata"]["labels"], json!({"tier": ""}));
    assert_eq!(got["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(got["spec"]["healthCheckNodePort"], -1);
}

#[test]
fn lease_micro_time_and_inlined_volume_source() {
    // LeaseSpec { holderIdentity = 1: "n1", renewTime = 4: MicroTime{1704164645, 500000000} }
    let spec = [
        len(1, b"n1"),
        len(4, &[int(1, 1_704_164_645), int(2, 500_000_000)].concat()),
    ]
    .concat();
    let lease = decoded(&body("coordination.k8s.io/v1", "Lease", &len(2, &spec)));
    assert_eq!(lease["spec"]["renewTime"], "2024-01-02T03:04:05.500000Z");
    // Volume { name = 1, volumeSource = 2 (inline): { emptyDir = 2: { sizeLimit = 2: "1Gi" } } }
    let source = len(2, &len(2, &len(1, b"1Gi")));
    let volume = [len(1, b"scratch"), len(2, &source)].concat();
    let pod = decoded(&body("v1", "Pod", &len(2, &len(1, &volume))));
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}])
    );
}

#[test]
fn bad_magic_is_rejected() {
    let err = decode(b"{\"kind\":\"Pod\"}").expect_err("json is not protobuf");
    assert!(matches!(err, ProtobufError::BadMagic));
}

#[test]
fn truncated_body_names_the_offset() {
    let mut truncated = body("v1", "Namespace", &int(2, 0));
    truncated.push(0x80); // a key varint that never ends
    let at = truncated.len() - 1;
    let err = decode(&truncated).expect_err("truncated");
    assert_eq!(err.to_string(), format!("truncated varint at offset {at}"));
    let short = &NAMESPACE[..NAMESPACE.len() - 5]; // cuts the last byte of raw
    let err = decode(short).expect_err("raw runs past the end");
    assert!(err.to_string().contains("runs past the end"), "{err}");
}

#[test]
fn unknown_kind_is_named_like_kubernetes() {
    let err = decode(&body("apps/v1", "Foo", b"")).expect_err("unknown kind");
    assert_eq!(err.to_string(), "unknown kind \"apps/v1, Kind=Foo\"");
    let err = decode(&body("v1", "Deployment", b"")).expect_err("wrong group");
    assert_eq!(err.to_string(), "unknown kind \"/v1, Kind=Deployment\"");
}

#[test]
fn unknown_field_names_message_and_number() {
    let err = decode(&body("v1", "ConfigMap", &int(99, 1))).expect_err("unknown field");
    assert!(
        err.to_string()
            .starts_with("unknown field number 99 in message k8s.io.api.core.v1.ConfigMap"),
        "{err}"
    );
}

#[test]
fn wrong_wire_type_names_the_field() {
    // ObjectMeta.name as a varint instead of a string.
    let err = decode(&body("v1", "ConfigMap", &len(1, &int(1, 7)))).expect_err("wire type");
    assert!(
        err.to_string().starts_with(
            "wrong wire type 0 for field k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta.name"
        ),
        "{err}"
    );
}

#[test]
fn content_encoding_and_invalid_utf8_are_rejected() {
    let mut encoded = body("v1", "ConfigMap", b"");
    encoded.extend(len(3, b"gzip"));
    let err = decode(&encoded).expect_err("encoded");
    assert_eq!(err.to_string(), "unsupported content encoding \"gzip\"");
    let err = decode(&body("v1", "ConfigMap", &len(1, &len(1, &[0xff, 0xfe])))).expect_err("utf8");
    assert_eq!(
        err.to_string(),
        "field k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta.name is not valid utf-8"
    );
}
