//! Issue 3, acceptance 5 and 6: a second `gantry agent` process (`agent-b`, its own data dir)
//! joins a `gantry up` cluster. `kill -9` of that agent while its pods run, then a restart,
//! re-adopts the same containers (same IDs, restart counts, shims and sandboxes; nothing
//! duplicated), and deleting the pods leaves no process, mount or cgroup behind. Both agents
//! register Ready Nodes and run the pods bound to them, with `kubectl logs` proxied to each.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use gantry_testkit::{AgentProcess, Gantry};
use serde_json::Value;

use crate::pods::{pod, registry_with_busybox};
use crate::start;

const AGENT_B: &str = "agent-b";
const LOOP: &str =
    "echo hello from $(hostname); i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done";

fn apply(g: &Gantry, yaml: &str) -> Result<()> {
    let out = g.kubectl_stdin("1.32", &["apply", "-f", "-"], yaml)?;
    ensure!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The Node once its Ready condition is True.
fn ready_node(g: &Gantry, name: &str) -> Result<Value> {
    g.eventually(Duration::from_secs(30), || {
        let out = g.kubectl("1.32", &["get", "node", name, "-o", "json"])?;
        if !out.status.success() {
            return Ok(None);
        }
        let n: Value = serde_json::from_slice(&out.stdout)?;
        let ready = n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        Ok(ready.then_some(n))
    })
    .with_context(|| format!("node {name} never became Ready"))
}

fn kubelet_port(node: &Value) -> i64 {
    node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .unwrap_or(0)
}

/// The pod once it is Running with its container running.
fn running(g: &Gantry, name: &str) -> Result<Value> {
    g.eventually(Duration::from_secs(60), || {
        let p = g.get_json(&["pod", name])?;
        let up = p["status"]["phase"] == "Running"
            && p["status"]["containerStatuses"][0]["state"]["running"].is_object();
        Ok(up.then_some(p))
    })
    .with_context(|| format!("pod {name} never ran"))
}

/// `(containerID, restartCount)` of the pod's only container.
fn identity(p: &Value) -> (String, i64) {
    let cs = &p["status"]["containerStatuses"][0];
    (
        cs["containerID"].as_str().unwrap_or_default().to_string(),
        cs["restartCount"].as_i64().unwrap_or(-1),
    )
}

/// Every process whose command line passes through `f`, as (pid, argv).
fn processes(f: impl Fn(&[String]) -> bool) -> Vec<(i32, Vec<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if f(&argv) {
            out.push((pid, argv));
        }
    }
    out
}

/// PIDs of the `gantry shim` processes serving containers under `data_dir`.
fn shims_of(data_dir: &Path) -> BTreeSet<i32> {
    let dir = data_dir.to_string_lossy().into_owned();
    processes(|argv| {
        argv.get(1).is_some_and(|a| a == "shim") && argv.iter().any(|a| a.contains(&dir))
    })
    .into_iter()
    .map(|(pid, _)| pid)
    .collect()
}

/// PIDs of the `gantry pause` sandboxes the agent recorded under `data_dir`.
fn pauses_of(data_dir: &Path) -> Result<BTreeSet<i32>> {
    let mut pids = BTreeSet::new();
    for e in std::fs::read_dir(data_dir.join("runtime/sandboxes"))?.flatten() {
        let record: Value = serde_json::from_slice(&std::fs::read(e.path())?)?;
        let pid = record["pid"]
            .as_i64()
            .context("sandbox record without pid")?;
        pids.insert(i32::try_from(pid)?);
    }
    Ok(pids)
}

fn alive(pid: i32) -> bool {
    // A zombie has no command line left; only live processes count.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Every cgroup directory of the pod, in any hierarchy.
fn pod_cgroups(uid: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let rel = format!("gantry/pod{uid}");
    let mut dirs = vec![root.join(&rel)];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        dirs.push(e.path().join(&rel));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// The init PIDs of the containers under `data_dir` (each shim records its container's).
fn container_pids(data_dir: &Path) -> Result<BTreeSet<i32>> {
    let mut pids = BTreeSet::new();
    for e in std::fs::read_dir(data_dir.join("runtime/shim"))?.flatten() {
        if let Ok(pid) = std::fs::read_to_string(e.path().join("pid")) {
            pids.insert(pid.trim().parse::<i32>()?);
        }
    }
    Ok(pids)
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Result<Vec<String>> {
    let dir = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect())
}

fn delete_pods(g: &Gantry, names: &[&str]) -> Result<()> {
    let mut args = vec!["delete", "pod"];
    args.extend_from_slice(names);
    args.extend_from_slice(&["--wait=true", "--timeout=60s"]);
    g.kubectl_ok("1.32", &args)?;
    g.eventually(Duration::from_secs(30), || {
        let out = g.kubectl_ok("1.32", &["get", "pods", "-o", "name"])?;
        Ok(out.trim().is_empty().then_some(()))
    })
}

#[test]
fn a_killed_agent_readopts_its_containers_and_deletion_leaves_nothing() -> Result<()> {
    let (_registry, _dir, image) = registry_with_busybox()?;
    let g = start()?;
    let mut b = AgentProcess::start(&g, AGENT_B)?;
    let port_before = kubelet_port(&ready_node(&g, AGENT_B)?);
    let names = ["keep-1", "keep-2"];
    for name in names {
        apply(&g, &pod(name, AGENT_B, &image, LOOP, "Always"))?;
    }
    let mut before = Vec::new();
    let mut uids = Vec::new();
    for name in names {
        let p = running(&g, name)?;
        uids.push(
            p["metadata"]["uid"]
                .as_str()
                .context("pod without uid")?
                .to_string(),
        );
        before.push(identity(&p));
    }
    let shims = shims_of(b.data_dir());
    assert_eq!(shims.len(), 2, "one shim per container: {shims:?}");
    let pauses = pauses_of(b.data_dir())?;
    assert_eq!(pauses.len(), 2, "one sandbox per pod: {pauses:?}");
    let workloads = container_pids(b.data_dir())?;
    assert_eq!(workloads.len(), 2, "container processes: {workloads:?}");

    b.kill9()?;
    for pid in shims.iter().chain(&pauses).chain(&workloads) {
        assert!(alive(*pid), "process {pid} died with the agent");
    }
    b.restart()?;
    // The new agent registers its new endpoint, then re-adopts; logs go through it.
    g.eventually(Duration::from_secs(30), || {
        let n = ready_node(&g, AGENT_B)?;
        Ok((kubelet_port(&n) != port_before).then_some(()))
    })
    .context("the restarted agent never updated its Node")?;
    for name in names {
        g.eventually(Duration::from_secs(20), || {
            let out = g.kubectl("1.32", &["logs", name, "--tail=1"])?;
            Ok(String::from_utf8_lossy(&out.stdout)
                .contains("tick")
                .then_some(()))
        })
        .with_context(|| format!("kubectl logs {name} after the restart"))?;
    }
    // Give the workers time to (wrongly) restart or duplicate anything.
    std::thread::sleep(Duration::from_secs(5));
    for (name, was) in names.iter().zip(&before) {
        let p = running(&g, name)?;
        assert_eq!(&identity(&p), was, "pod {name} changed: {p}");
    }
    assert_eq!(shims_of(b.data_dir()), shims, "shims changed or duplicated");
    assert_eq!(pauses_of(b.data_dir())?, pauses, "sandboxes changed");
    assert_eq!(
        container_pids(b.data_dir())?,
        workloads,
        "container processes changed"
    );
    let state_dirs = std::fs::read_dir(b.data_dir().join("runtime/shim"))?
        .flatten()
        .filter(|e| e.file_name() != "runc")
        .count();
    assert_eq!(state_dirs, 2, "one container directory per container");

    delete_pods(&g, &names)?;
    let leftover = shims_of(b.data_dir());
    assert!(leftover.is_empty(), "shims left: {leftover:?}");
    for pid in pauses.iter().chain(&workloads) {
        assert!(!alive(*pid), "process {pid} outlived its pod");
    }
    let pause_left = processes(|argv| argv.get(1).is_some_and(|a| a == "pause"))
        .into_iter()
        .filter(|(pid, _)| pauses.contains(pid))
        .count();
    assert_eq!(pause_left, 0);
    let mounts = mounts_under(b.data_dir())?;
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    for uid in &uids {
        let cgroups = pod_cgroups(uid);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    }
    Ok(())
}

#[test]
fn two_agents_on_one_machine_run_the_pods_bound_to_them() -> Result<()> {
    let (_registry, _dir, image) = registry_with_busybox()?;
    let g = start()?;
    let b = AgentProcess::start(&g, AGENT_B)?;
    ready_node(&g, AGENT_B)?;
    let host = g.eventually(Duration::from_secs(20), || {
        let nodes = g.get_json(&["nodes"])?;
        Ok(nodes["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .find(|n| *n != AGENT_B)
            .map(str::to_string))
    })?;
    ready_node(&g, &host)?;
    let table = g.kubectl_ok("1.32", &["get", "nodes"])?;
    for name in [host.as_str(), AGENT_B] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([name, "Ready"])),
            "{name} is not listed Ready:\n{table}"
        );
    }

    apply(&g, &pod("on-host", &host, &image, LOOP, "Always"))?;
    apply(&g, &pod("on-b", AGENT_B, &image, LOOP, "Always"))?;
    for (name, node) in [("on-host", host.as_str()), ("on-b", AGENT_B)] {
        let p = running(&g, name)?;
        assert_eq!(p["spec"]["nodeName"], node);
        let logs = g.eventually(Duration::from_secs(20), || {
            let out = g.kubectl("1.32", &["logs", name])?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(text.contains("tick 0").then_some(text))
        })?;
        assert!(
            logs.starts_with(&format!("hello from {name}\n")),
            "{name}: {logs}"
        );
    }
    // Each agent runs its own pod from its own data directory.
    assert_eq!(shims_of(b.data_dir()).len(), 1);
    assert_eq!(shims_of(&g.data_dir().join("node")).len(), 1);

    delete_pods(&g, &["on-host", "on-b"])?;
    assert!(shims_of(b.data_dir()).is_empty());
    Ok(())
}
