//! Acceptance 6: label, annotate, the three patch types, edit, scale.

use anyhow::Result;

use crate::{expect_failure, start};

#[test]
fn label_annotate_and_patch_types() -> Result<()> {
    let g = start()?;
    g.kubectl_ok(
        "1.32",
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=1",
        ],
    )?;
    g.kubectl_ok("1.32", &["label", "deployment", "web", "env=prod"])?;
    let out = g.kubectl("1.32", &["label", "deployment", "web", "env=dev"])?;
    expect_failure(&out, "already has a value");
    g.kubectl_ok(
        "1.32",
        &["label", "deployment", "web", "env=dev", "--overwrite"],
    )?;
    g.kubectl_ok("1.32", &["annotate", "deployment", "web", "owner=team-a"])?;
    let d = g.get_json(&["deployment", "web"])?;
    assert_eq!(d["metadata"]["labels"]["env"], "dev");
    assert_eq!(d["metadata"]["annotations"]["owner"], "team-a");
    g.kubectl_ok("1.32", &["label", "deployment", "web", "env-"])?;
    assert!(g.get_json(&["deployment", "web"])?["metadata"]["labels"]
        .get("env")
        .is_none());

    // Strategic: containers merge by name.
    g.kubectl_ok(
        "1.32",
        &["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.37"}]}}}}"#],
    )?;
    // Merge: lists replace.
    g.kubectl_ok(
        "1.32",
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"minReadySeconds":5}}"#,
        ],
    )?;
    // JSON patch with a passing and then a failing test.
    g.kubectl_ok(
        "1.32",
        &["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/minReadySeconds","value":5},{"op":"replace","path":"/spec/replicas","value":2}]"#],
    )?;
    let out = g.kubectl(
        "1.32",
        &["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":7},{"op":"replace","path":"/spec/replicas","value":9}]"#],
    )?;
    assert!(
        !out.status.success(),
        "a failed JSON patch test must fail the patch"
    );
    let d = g.get_json(&["deployment", "web"])?;
    let c = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().map(Vec::len), Some(1));
    assert_eq!(c[0]["image"], "busybox:1.37");
    assert_eq!(
        c[0]["terminationMessagePath"], "/dev/termination-log",
        "defaulted fields were lost"
    );
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    assert_eq!(d["spec"]["replicas"], 2);
    Ok(())
}

#[test]
fn edit_with_a_scripted_editor() -> Result<()> {
    let g = start()?;
    g.kubectl_ok(
        "1.31",
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=color=blue",
        ],
    )?;
    let editor = g.data_dir().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n",
    )?;
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let out = g
        .kubectl_cmd("1.32")?
        .env("KUBE_EDITOR", &editor)
        .args(["edit", "configmap", "settings"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/settings edited"));
    assert_eq!(
        g.get_json(&["configmap", "settings"])?["data"]["color"],
        "green"
    );
    Ok(())
}

#[test]
fn scale_and_conditional_scale() -> Result<()> {
    let g = start()?;
    g.kubectl_ok(
        "1.33",
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=1",
        ],
    )?;
    let out = g.kubectl_ok("1.32", &["scale", "deployment/web", "--replicas=3"])?;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    assert_eq!(g.get_json(&["deployment", "web"])?["spec"]["replicas"], 3);
    let out = g.kubectl(
        "1.32",
        &[
            "scale",
            "deployment/web",
            "--replicas=2",
            "--current-replicas=4",
        ],
    )?;
    expect_failure(&out, "Expected replicas to be 4");
    assert_eq!(g.get_json(&["deployment", "web"])?["spec"]["replicas"], 3);
    g.kubectl_ok(
        "1.32",
        &[
            "scale",
            "deployment/web",
            "--replicas=2",
            "--current-replicas=3",
        ],
    )?;
    assert_eq!(g.get_json(&["deployment", "web"])?["spec"]["replicas"], 2);
    let raw = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ],
    )?;
    let scale: serde_json::Value = serde_json::from_str(&raw)?;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    Ok(())
}

#[test]
fn stale_resource_version_conflicts() -> Result<()> {
    let g = start()?;
    g.kubectl_ok("1.31", &["create", "configmap", "c", "--from-literal=a=1"])?;
    let stale = g.kubectl_ok("1.31", &["get", "configmap", "c", "-o", "json"])?;
    g.kubectl_ok("1.31", &["label", "configmap", "c", "x=y"])?;
    let out = g.kubectl_stdin("1.31", &["replace", "-f", "-"], &stale)?;
    expect_failure(&out, "the object has been modified");
    // Without a resourceVersion the replace is unconditional.
    let mut v: serde_json::Value = serde_json::from_str(&stale)?;
    v["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    v["data"]["a"] = "2".into();
    let out = g.kubectl_stdin("1.31", &["replace", "-f", "-"], &v.to_string())?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(g.get_json(&["configmap", "c"])?["data"]["a"], "2");
    Ok(())
}
