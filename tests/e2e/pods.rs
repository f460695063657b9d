//! Issue 3: `gantry up` runs real pods from an image in a local registry: the node registers,
//! a pod bound to it runs in its own namespaces, `kubectl logs` (and `-f`) read its output
//! through the API server, a failing container restarts with back-off, and deleting the pod
//! stops it and removes it.

use std::time::Duration;

use anyhow::{Context as _, Result};
use gantry_testkit::images;
use gantry_testkit::registry::Registry;
use gantry_testkit::Gantry;
use serde_json::Value;

use crate::start;

/// A registry holding `busybox:1`, built from Debian's busybox-static.
pub(crate) fn registry_with_busybox() -> Result<(Registry, tempfile::TempDir, String)> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let layout = images::busybox_layout(dir.path())?;
    images::push(&layout, registry.addr(), "busybox:1")?;
    let image = format!("{}/busybox:1", registry.addr());
    Ok((registry, dir, image))
}

pub(crate) fn node_name(g: &Gantry) -> Result<String> {
    g.eventually(Duration::from_secs(20), || {
        let nodes = g.get_json(&["nodes"])?;
        Ok(nodes["items"][0]["metadata"]["name"]
            .as_str()
            .map(str::to_string))
    })
}

pub(crate) fn pod(name: &str, node: &str, image: &str, script: &str, restart: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {image}\n    command: [sh, -c, '{script}']\n"
    )
}

fn phase_of(g: &Gantry, name: &str) -> Result<Value> {
    g.get_json(&["pod", name])
}

#[test]
fn pods_run_log_restart_and_go_away() -> Result<()> {
    let (_registry, _dir, image) = registry_with_busybox()?;
    let g = start()?;
    let node = node_name(&g)?;
    let n = g.get_json(&["node", &node])?;
    let ready = n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "node is not Ready: {n}");

    let script = "echo hello from $(hostname); echo processes $(ps -o pid | wc -l); i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done";
    let out = g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        &pod("web", &node, &image, script, "Always"),
    )?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let running = g.eventually(Duration::from_secs(60), || {
        let p = phase_of(&g, "web")?;
        Ok((p["status"]["phase"] == "Running").then_some(p))
    })?;
    let cs = &running["status"]["containerStatuses"][0];
    assert!(cs["state"]["running"].is_object(), "{cs}");
    assert!(
        cs["imageID"]
            .as_str()
            .is_some_and(|d| d.contains("sha256:")),
        "{cs}"
    );

    let logs = g.eventually(Duration::from_secs(20), || {
        let out = g.kubectl("1.32", &["logs", "web"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(text.contains("tick 1").then_some(text))
    })?;
    assert!(
        logs.starts_with("hello from web\n"),
        "the pod's hostname is its name: {logs}"
    );
    // Only the shell, its subshell, ps and wc (plus ps's header line) are visible: the
    // container has a PID namespace of its own, not the host's hundreds of processes.
    let count: usize = logs
        .lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|n| n.trim().parse().ok())
        .context("no process count in the log")?;
    assert!(count <= 6, "the container sees {count} processes:\n{logs}");
    let tail = g.kubectl_ok("1.32", &["logs", "web", "--tail=1"])?;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let mut follow = g
        .kubectl_cmd("1.32")?
        .args(["logs", "-f", "web", "--tail=1"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = follow.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut followed = Vec::new();
    while followed.len() < 3 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => followed.push(l),
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(followed.len() >= 3, "kubectl logs -f stalled: {followed:?}");

    // A container that fails is restarted, with its previous log kept.
    let crash = pod("crash", &node, &image, "echo attempt; exit 3", "Always");
    g.kubectl_stdin("1.32", &["apply", "-f", "-"], &crash)?;
    let restarted = g.eventually(Duration::from_secs(60), || {
        let p = phase_of(&g, "crash")?;
        let count = p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0);
        Ok((count >= 1).then_some(p))
    })?;
    let last = &restarted["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3, "{restarted}");
    let previous = g.kubectl_ok("1.32", &["logs", "crash", "--previous"])?;
    assert_eq!(previous.trim(), "attempt");

    // Without a nodeName the scheduler binds the pod: `kubectl run` works end to end.
    g.kubectl_ok(
        "1.32",
        &[
            "run",
            "once",
            &format!("--image={image}"),
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "echo scheduled and ran",
        ],
    )?;
    let done = g.eventually(Duration::from_secs(60), || {
        let p = phase_of(&g, "once")?;
        Ok((p["status"]["phase"] == "Succeeded").then_some(p))
    })?;
    assert_eq!(done["spec"]["nodeName"], node.as_str());
    assert_eq!(
        g.kubectl_ok("1.32", &["logs", "once"])?.trim(),
        "scheduled and ran"
    );
    let events = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=once",
        ],
    )?;
    assert!(
        events.contains("Scheduled") && events.contains("Started"),
        "{events}"
    );

    // Deletion stops the containers and removes the pod.
    g.kubectl_ok(
        "1.32",
        &["delete", "pod", "web", "crash", "once", "--wait=false"],
    )?;
    g.eventually(Duration::from_secs(60), || {
        let out = g.kubectl("1.32", &["get", "pods", "-o", "name"])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim()
            .is_empty()
            .then_some(()))
    })?;
    Ok(())
}

#[test]
fn a_missing_image_is_reported_as_err_image_pull() -> Result<()> {
    let registry = Registry::start()?;
    let g = start()?;
    let node = node_name(&g)?;
    let image = format!("{}/nothing:here", registry.addr());
    g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        &pod("ghost", &node, &image, "true", "Always"),
    )?;
    let waiting = g.eventually(Duration::from_secs(60), || {
        let p = phase_of(&g, "ghost")?;
        let reason = p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            .as_str()
            .map(str::to_string);
        Ok(reason.filter(|r| r == "ErrImagePull" || r == "ImagePullBackOff"))
    })?;
    assert!(waiting == "ErrImagePull" || waiting == "ImagePullBackOff");
    let events = g.kubectl_ok(
        "1.32",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=ghost",
        ],
    )?;
    assert!(events.contains("Failed"), "{events}");
    Ok(())
}
