//! Acceptance 7: cascading deletion in all three modes, finalizers, namespace termination.

use std::time::Duration;

use anyhow::Result;
use gantry_testkit::Gantry;

use crate::start;

/// Creates a ConfigMap owned by the deployment `owner` (as a controller would).
fn dependent(g: &Gantry, owner: &str, name: &str) -> Result<()> {
    let d = g.get_json(&["deployment", owner])?;
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - {{apiVersion: apps/v1, kind: Deployment, name: {owner}, uid: {uid}, controller: true, blockOwnerDeletion: true}}\ndata: {{a: b}}\n"
    );
    let out = g.kubectl_stdin("1.32", &["apply", "-f", "-"], &manifest)?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn exists(g: &Gantry, what: &str) -> Result<bool> {
    let out = g.kubectl("1.32", &["get", what, "-o", "name"])?;
    Ok(out.status.success())
}

#[test]
fn cascade_modes() -> Result<()> {
    let g = start()?;
    for mode in ["background", "foreground", "orphan"] {
        let owner = format!("own-{mode}");
        let dep = format!("dep-{mode}");
        g.kubectl_ok("1.32", &["create", "deployment", &owner, "--image=busybox"])?;
        dependent(&g, &owner, &dep)?;
        g.kubectl_ok(
            "1.32",
            &["delete", "deployment", &owner, &format!("--cascade={mode}")],
        )?;
        let cm = format!("configmap/{dep}");
        if mode == "orphan" {
            std::thread::sleep(Duration::from_secs(2));
            assert!(exists(&g, &cm)?, "orphaned dependent was deleted");
            let c = g.get_json(&["configmap", &dep])?;
            assert!(
                c["metadata"].get("ownerReferences").is_none(),
                "owner reference not removed: {c}"
            );
        } else {
            g.eventually(Duration::from_secs(20), || {
                Ok((!exists(&g, &cm)?).then_some(()))
            })?;
        }
        g.eventually(Duration::from_secs(20), || {
            Ok((!exists(&g, &format!("deployment/{owner}"))?).then_some(()))
        })?;
    }
    Ok(())
}

#[test]
fn finalizer_blocks_deletion_until_removed() -> Result<()> {
    let g = start()?;
    g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\ndata: {a: b}\n",
    )?;
    g.kubectl_ok("1.32", &["delete", "configmap", "held", "--wait=false"])?;
    let c = g.get_json(&["configmap", "held"])?;
    assert!(c["metadata"]["deletionTimestamp"].is_string(), "{c}");
    g.kubectl_ok(
        "1.32",
        &[
            "patch",
            "configmap",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    )?;
    g.eventually(Duration::from_secs(10), || {
        Ok((!exists(&g, "configmap/held")?).then_some(()))
    })?;
    Ok(())
}

#[test]
fn namespace_deletion_goes_through_terminating() -> Result<()> {
    let g = start()?;
    g.kubectl_ok("1.32", &["create", "namespace", "doomed"])?;
    g.kubectl_ok("1.32", &["create", "configmap", "c1", "-n", "doomed"])?;
    g.kubectl_stdin(
        "1.32",
        &["apply", "-n", "doomed", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n",
    )?;
    g.eventually(Duration::from_secs(10), || {
        Ok(exists(&g, "serviceaccount/default")
            .ok()
            .filter(|b| *b)
            .map(|_| ()))
    })?;
    g.kubectl_ok("1.32", &["delete", "namespace", "doomed", "--wait=false"])?;
    let ns = g.get_json(&["namespace", "doomed"])?;
    assert_eq!(ns["status"]["phase"], "Terminating");
    let out = g.kubectl("1.32", &["create", "configmap", "late", "-n", "doomed"])?;
    crate::expect_failure(&out, "being terminated");
    g.eventually(Duration::from_secs(10), || {
        Ok((!exists(&g, "configmap/c1")?).then_some(()))
    })?;
    assert!(
        exists(&g, "namespace/doomed")?,
        "namespace vanished before its content"
    );
    g.kubectl_ok(
        "1.32",
        &[
            "patch",
            "configmap",
            "held",
            "-n",
            "doomed",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    )?;
    g.eventually(Duration::from_secs(20), || {
        Ok((!exists(&g, "namespace/doomed")?).then_some(()))
    })?;
    Ok(())
}
