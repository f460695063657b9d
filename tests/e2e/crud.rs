//! Acceptance 2 and 8: typed creates with kubectl 1.31 (JSON) and 1.32/1.33 (protobuf), and
//! upstream's exact Status bytes.

use anyhow::Result;

use crate::{expect_failure, start};

#[test]
fn typed_creates_work_with_json_and_protobuf_clients() -> Result<()> {
    let g = start()?;
    for (i, v) in ["1.31", "1.32", "1.33"].iter().enumerate() {
        let ns = format!("shop{i}");
        let out = g.kubectl_ok(v, &["create", "namespace", &ns])?;
        assert_eq!(out.trim(), format!("namespace/{ns} created"));
        let out = g.kubectl_ok(
            v,
            &[
                "create",
                "deployment",
                "web",
                "--image=busybox",
                "--replicas=2",
                "-n",
                &ns,
            ],
        )?;
        assert_eq!(out.trim(), "deployment.apps/web created");
        g.kubectl_ok(
            v,
            &[
                "create",
                "configmap",
                "cfg",
                "--from-literal=color=blue",
                "-n",
                &ns,
            ],
        )?;
        g.kubectl_ok(
            v,
            &[
                "create",
                "secret",
                "generic",
                "creds",
                "--from-literal=password=s3cret",
                "-n",
                &ns,
            ],
        )?;
        g.kubectl_ok(
            v,
            &[
                "create",
                "service",
                "clusterip",
                "web",
                "--tcp=80:8080",
                "-n",
                &ns,
            ],
        )?;

        let d = g.get_json(&["deployment", "web", "-n", &ns])?;
        assert_eq!(d["spec"]["replicas"], 2, "kubectl {v}");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox"
        );
        // Defaulting as upstream.
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(d["metadata"]["generation"], 1);
        let cm = g.get_json(&["configmap", "cfg", "-n", &ns])?;
        assert_eq!(cm["data"]["color"], "blue");
        let s = g.get_json(&["secret", "creds", "-n", &ns])?;
        assert_eq!(s["data"]["password"], "czNjcmV0");
        assert_eq!(s["type"], "Opaque");
        let svc = g.get_json(&["service", "web", "-n", &ns])?;
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
        assert!(
            svc["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.")),
            "{svc}"
        );
    }
    Ok(())
}

#[test]
fn create_in_missing_namespace_and_duplicates_fail_clearly() -> Result<()> {
    let g = start()?;
    let out = g.kubectl("1.31", &["create", "configmap", "x", "-n", "nowhere"])?;
    expect_failure(&out, "namespaces \"nowhere\" not found");
    g.kubectl_ok("1.32", &["create", "namespace", "dup"])?;
    let out = g.kubectl("1.32", &["create", "namespace", "dup"])?;
    expect_failure(&out, "namespaces \"dup\" already exists");
    let out = g.kubectl("1.31", &["create", "namespace", "Bad_Name"])?;
    expect_failure(&out, "RFC 1123");
    Ok(())
}

#[test]
fn duplicate_post_returns_upstream_status_bytes() -> Result<()> {
    let g = start()?;
    g.kubectl_ok(
        "1.31",
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    )?;
    let ca = g.data_dir().join("pki/ca.crt");
    let body = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80}]}}"#;
    let out = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&ca)
        .args(["-H", &format!("Authorization: Bearer {}", g.token()?)])
        .args([
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "--data",
            body,
        ])
        .arg(format!("{}/api/v1/namespaces/default/services", g.url))
        .args(["-w", "%{http_code}"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"services \\\"web\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"web\",\"kind\":\"services\"},\"code\":409}\n409"
    );
    Ok(())
}

#[test]
fn malformed_bodies_get_precise_errors_and_the_server_keeps_serving() -> Result<()> {
    let g = start()?;
    let ca = g.data_dir().join("pki/ca.crt");
    let token = g.token()?;
    let post = |ct: &str, body: &[u8]| -> Result<String> {
        let path = g.data_dir().join("body.bin");
        std::fs::write(&path, body)?;
        let out = std::process::Command::new("curl")
            // curl 7.88 drops an HTTP/2 answer that arrives before the upload ends.
            .args(["-s", "--http1.1", "--cacert"])
            .arg(&ca)
            .args([
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-H",
                &format!("Content-Type: {ct}"),
            ])
            .args(["-X", "POST", "--data-binary"])
            .arg(format!("@{}", path.display()))
            .arg(format!("{}/api/v1/namespaces/default/configmaps", g.url))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let bad_json = post("application/json", b"{\"kind\": \"ConfigMap\", ")?;
    assert!(
        bad_json.contains("\"code\":400") && bad_json.contains("json parse error"),
        "{bad_json}"
    );
    let bad_pb = post("application/vnd.kubernetes.protobuf", b"k8s\x00\xff\xff")?;
    assert!(bad_pb.contains("\"code\":400"), "{bad_pb}");
    let wrong_kind = post(
        "application/json",
        br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
    )?;
    assert!(
        wrong_kind.contains("\"code\":400")
            && wrong_kind.contains("does not match the expected kind"),
        "{wrong_kind}"
    );
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 << 20)
    );
    let too_big = post("application/json", big.as_bytes())?;
    assert!(
        too_big.contains("\"code\":413"),
        "{}",
        &too_big[..too_big.len().min(300)]
    );
    // Nothing half-written, and the server still answers.
    let list = g.kubectl_ok("1.31", &["get", "configmaps", "-o", "name"])?;
    assert!(
        !list.contains("big") && !list.contains("configmap/x"),
        "{list}"
    );
    Ok(())
}

#[test]
fn server_dry_run_stores_nothing_and_warn_mode_reports_unknown_fields() -> Result<()> {
    let g = start()?;
    let out = g.kubectl_ok(
        "1.32",
        &[
            "create",
            "configmap",
            "dry",
            "--from-literal=a=b",
            "--dry-run=server",
            "-o",
            "json",
        ],
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["data"]["a"], "b");
    assert!(
        v["metadata"]["uid"].is_string(),
        "a server dry run returns the object as it would be stored"
    );
    let out = g.kubectl("1.32", &["get", "configmap", "dry"])?;
    expect_failure(&out, "not found");
    let out = g.kubectl_stdin(
        "1.32",
        &["apply", "--validate=warn", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lenient}\nbogus: 1\n",
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"bogus\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = g.get_json(&["configmap", "lenient"])?;
    assert!(
        stored.get("bogus").is_none(),
        "an unknown field was stored: {stored}"
    );
    Ok(())
}

#[test]
fn immutable_fields_and_unknown_resources_are_refused() -> Result<()> {
    let g = start()?;
    g.kubectl_ok("1.32", &["create", "deployment", "web", "--image=busybox"])?;
    let out = g.kubectl(
        "1.32",
        &["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#],
    )?;
    expect_failure(&out, "field is immutable");
    let out = g.kubectl("1.32", &["get", "widgets"])?;
    expect_failure(&out, "the server doesn't have a resource type \"widgets\"");
    let out = g.kubectl(
        "1.31",
        &["get", "--raw", "/apis/apps/v1/namespaces/default/widgets"],
    )?;
    expect_failure(&out, "NotFound");
    Ok(())
}
