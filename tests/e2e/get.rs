//! Acceptance 5: `kubectl get` output formats, selectors and watch.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::start;

#[test]
fn wide_tables_print_upstream_headers() -> Result<()> {
    let g = start()?;
    g.kubectl_ok("1.32", &["create", "deployment", "web", "--image=busybox"])?;
    g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: solo, labels: {tier: db}}\nspec: {containers: [{name: c, image: '127.0.0.1:9/busybox:1'}]}\n",
    )?;
    let out = g.kubectl_ok(
        "1.32",
        &["get", "pods,deploy,svc,nodes", "-A", "-o", "wide"],
    )?;
    let squeezed = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for header in [
        "NAMESPACE   NAME       READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES",
        "READY   UP-TO-DATE   AVAILABLE   AGE",
        "CONTAINERS   IMAGES    SELECTOR",
        "TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE",
    ] {
        assert!(squeezed(&out).contains(&squeezed(header)), "missing {header:?} in:\n{out}");
    }
    // The pod is listed (bound to this machine's node or about to be; its image does not
    // exist, so it never runs).
    assert!(out.contains("pod/solo"), "{out}");
    assert!(
        squeezed(&out).contains("STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("node/") && l.contains(" Ready ")),
        "{out}"
    );
    assert!(
        out.contains("service/kubernetes") && out.contains("10.96.0.1"),
        "{out}"
    );
    Ok(())
}

#[test]
fn output_formats_and_selectors() -> Result<()> {
    let g = start()?;
    for (name, tier) in [("b-cfg", "web"), ("a-cfg", "db"), ("c-cfg", "web")] {
        g.kubectl_ok("1.31", &["create", "configmap", name, "--from-literal=k=v"])?;
        g.kubectl_ok(
            "1.31",
            &["label", "configmap", name, &format!("tier={tier}")],
        )?;
    }
    let names = g.kubectl_ok("1.32", &["get", "cm", "-l", "tier=web", "-o", "name"])?;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        vec!["configmap/b-cfg", "configmap/c-cfg"]
    );
    let set = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "cm",
            "-l",
            "tier in (db),tier notin (web)",
            "-o",
            "name",
        ],
    )?;
    assert_eq!(set.trim(), "configmap/a-cfg");
    let by_field = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=c-cfg",
            "-o",
            "name",
        ],
    )?;
    assert_eq!(by_field.trim(), "configmap/c-cfg");
    let yaml = g.kubectl_ok("1.32", &["get", "cm", "a-cfg", "-o", "yaml"])?;
    assert!(
        yaml.contains("kind: ConfigMap")
            && yaml.contains("tier: db")
            && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let sorted = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "cm",
            "-l",
            "tier",
            "--sort-by",
            "{.metadata.name}",
            "-o",
            "name",
        ],
    )?;
    assert_eq!(
        sorted.lines().collect::<Vec<_>>(),
        vec!["configmap/a-cfg", "configmap/b-cfg", "configmap/c-cfg"]
    );
    let out = g.kubectl("1.32", &["get", "cm", "--field-selector", "spec.color=red"])?;
    crate::expect_failure(&out, "field label not supported");
    // Pagination: kubectl asks in chunks of 500; a small chunk size exercises `continue`.
    let paged = g.kubectl_ok(
        "1.32",
        &["get", "cm", "--chunk-size=1", "-l", "tier", "-o", "name"],
    )?;
    assert_eq!(paged.lines().count(), 3, "{paged}");
    Ok(())
}

#[test]
fn get_watch_prints_rows_for_new_objects() -> Result<()> {
    let g = start()?;
    let mut child = g
        .kubectl_cmd("1.32")?
        .args(["get", "pods", "-w", "--request-timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: watched}\nspec: {containers: [{name: c, image: '127.0.0.1:9/busybox:1'}]}\n",
    )?;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = line.starts_with("watched");
            seen.push(line);
            if hit {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("watched") && l.contains("Pending")),
        "watch printed: {seen:?}"
    );
    Ok(())
}
