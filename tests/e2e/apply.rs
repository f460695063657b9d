//! Acceptance 3 and 4: client-side apply (strategic merge patches, removed list elements,
//! strict field validation) and server-side apply (managedFields, conflicts, force).

use anyhow::Result;
use serde_json::Value;

use crate::{expect_failure, start};

const APP_V1: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: busybox:1.36
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: blue}]
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"#;

#[test]
fn client_side_apply_merges_containers_by_name_and_drops_removed_ports() -> Result<()> {
    let g = start()?;
    let out = g.kubectl_stdin("1.32", &["apply", "-f", "-"], APP_V1)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("deployment.apps/api created") && stdout.contains("service/api created"),
        "{stdout}"
    );

    // Someone else changes a field apply does not manage: it must survive the next apply.
    g.kubectl_ok("1.32", &["annotate", "deployment", "api", "team=payments"])?;
    let v2 = APP_V1
        .replacen(
            "image: busybox:1.36\n        ports",
            "image: busybox:1.37\n        ports",
            1,
        )
        .replace("  - {name: https, port: 443, targetPort: 8443}\n", "");
    let out = g.kubectl_stdin("1.32", &["apply", "-f", "-", "-v=8"], &v2)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("application/strategic-merge-patch+json"),
        "kubectl did not send a strategic merge patch"
    );
    let d: Value = g.get_json(&["deployment", "api"])?;
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(containers[0]["name"], "api");
    assert_eq!(containers[0]["image"], "busybox:1.37");
    assert_eq!(
        containers[0]["env"][0]["value"], "blue",
        "fields of the merged container were lost"
    );
    assert_eq!(containers[1]["image"], "busybox:1.36");
    assert_eq!(d["metadata"]["annotations"]["team"], "payments");
    assert_eq!(d["metadata"]["generation"], 2);
    let svc: Value = g.get_json(&["service", "api"])?;
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, vec![80]);
    Ok(())
}

#[test]
fn apply_refuses_unknown_fields_with_strict_decoding_error() -> Result<()> {
    let g = start()?;
    let bad = APP_V1.replace(
        "        env: [{name: MODE, value: blue}]",
        "        imagePullPolice: Always",
    );
    for v in ["1.31", "1.33"] {
        let out = g.kubectl_stdin(v, &["apply", "-f", "-"], &bad)?;
        expect_failure(&out, "strict decoding error");
        expect_failure(&out, "imagePullPolice");
    }
    let none = g.kubectl_ok("1.32", &["get", "deployments", "-o", "name"])?;
    assert!(
        none.trim().is_empty(),
        "a refused manifest was stored: {none}"
    );
    Ok(())
}

#[test]
fn server_side_apply_tracks_managers_and_conflicts() -> Result<()> {
    let g = start()?;
    let out = g.kubectl_stdin("1.32", &["apply", "--server-side", "-f", "-"], APP_V1)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("serverside-applied"));
    let d: Value = g.get_json(&["deployment", "api", "--show-managed-fields"])?;
    let managers: Vec<(String, String)> = d["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or("").to_string(),
                m["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("kubectl".to_string(), "Apply".to_string())),
        "{managers:?}"
    );

    // An update by the same manager.
    let v2 = APP_V1.replacen("replicas: 1", "replicas: 3", 1);
    let out = g.kubectl_stdin("1.32", &["apply", "--server-side", "-f", "-"], &v2)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(g.get_json(&["deployment", "api"])?["spec"]["replicas"], 3);

    // Another manager that changes an owned field conflicts, then forces.
    let v3 = APP_V1.replacen("replicas: 1", "replicas: 5", 1);
    let out = g.kubectl_stdin(
        "1.32",
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        &v3,
    )?;
    expect_failure(&out, "conflict");
    expect_failure(&out, ".spec.replicas");
    assert_eq!(g.get_json(&["deployment", "api"])?["spec"]["replicas"], 3);
    let out = g.kubectl_stdin(
        "1.32",
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &v3,
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(g.get_json(&["deployment", "api"])?["spec"]["replicas"], 5);
    Ok(())
}
