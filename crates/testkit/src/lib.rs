//! Test support shared by component and end-to-end tests: start the real `gantry` binary on a
//! free port in a temporary data directory, restart or `kill -9` it, and run the real `kubectl`
//! (a chosen minor version) against it.
//!
//! Tests stay parallel-safe: every server gets its own data directory and port.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// Where the gcloud SDK keeps versioned kubectl binaries on this machine.
const KUBECTL_DIRS: &[&str] = &[
    "/usr/lib/google-cloud-sdk/bin",
    "/usr/local/bin",
    "/usr/bin",
];

/// The `gantry` binary under test: `GANTRY_BIN`, else `target/<profile>/gantry` next to the
/// running test executable.
pub fn gantry_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GANTRY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("failed to find the test executable")?;
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/gantry
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?;
    let bin = profile_dir.join("gantry");
    if !bin.exists() {
        bail!(
            "{} does not exist: build it first with `cargo build -p gantry` (the test command in README.md does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// The path of `kubectl.<minor>` (e.g. "1.31"), or plain `kubectl` for "".
pub fn kubectl_bin(version: &str) -> Result<PathBuf> {
    let name = if version.is_empty() {
        "kubectl".to_string()
    } else {
        format!("kubectl.{version}")
    };
    for dir in KUBECTL_DIRS {
        let p = Path::new(dir).join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{name} was not found in {KUBECTL_DIRS:?}: the machine's gcloud SDK provides kubectl 1.27-1.33")
}

/// A running `gantry up` with its own data directory.
pub struct Gantry {
    child: Option<Child>,
    data: tempfile::TempDir,
    pub url: String,
    pub port: u16,
    pub kubeconfig: PathBuf,
}

impl Gantry {
    /// Starts `gantry up` on a free port and waits until it serves.
    pub fn start() -> Result<Gantry> {
        let data = tempfile::Builder::new()
            .prefix("gantry-test-")
            .tempdir()
            .context("failed to create a data dir")?;
        let mut g = Gantry {
            child: None,
            kubeconfig: data.path().join("kubeconfig"),
            data,
            url: String::new(),
            port: 0,
        };
        g.spawn(0)?;
        Ok(g)
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The admin bearer token.
    pub fn token(&self) -> Result<String> {
        let t = std::fs::read_to_string(self.data.path().join("pki/admin.token"))
            .context("failed to read the admin token")?;
        Ok(t.trim().to_string())
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let mut child = Command::new(gantry_bin()?)
            .args([
                "up",
                "--api-port",
                &port.to_string(),
                "--kubelet-port",
                "0",
                "--data-dir",
            ])
            .arg(self.data.path())
            .env(
                "GANTRY_LOG",
                std::env::var("GANTRY_LOG").unwrap_or_else(|_| "warn".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("failed to start gantry")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("gantry: API server listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("gantry did not report its URL within 60 s (exit: {status:?})");
            }
        };
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("bad url {url}"))?;
        self.url = url;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.kubectl("", &["get", "--raw", "/readyz"])?;
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "gantry never became ready: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the server (no shutdown path runs).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().context("failed to kill gantry")?;
            c.wait().context("failed to reap gantry")?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        let port = self.port;
        self.spawn(port)
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let mut c = self
            .child
            .take()
            .ok_or_else(|| anyhow!("gantry is not running"))?;
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("gantry did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `kubectl.<version>` (or the machine's `kubectl` for "") with this cluster's
    /// kubeconfig.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Result<Output> {
        self.kubectl_cmd(version)?
            .args(args)
            .output()
            .context("failed to run kubectl")
    }

    /// A kubectl command ready for more arguments, stdin or env.
    pub fn kubectl_cmd(&self, version: &str) -> Result<Command> {
        let mut cmd = Command::new(kubectl_bin(version)?);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.data.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        Ok(cmd)
    }

    /// Runs kubectl and fails with its stderr unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> Result<String> {
        let out = self.kubectl(version, args)?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, version: &str, args: &[&str], stdin: &str) -> Result<Output> {
        use std::io::Write as _;
        let mut child = self
            .kubectl_cmd(version)?
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to run kubectl")?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no stdin"))?
            .write_all(stdin.as_bytes())?;
        child
            .wait_with_output()
            .context("failed to wait for kubectl")
    }

    /// `kubectl get … -o json` parsed.
    pub fn get_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl_ok("1.32", &a)?;
        serde_json::from_str(&out).context("kubectl printed invalid JSON")
    }

    /// Polls `f` until it returns `Ok(Some(_))` or the timeout passes.
    pub fn eventually<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f()? {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("condition not met within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Gantry {
    /// Deletes every pod through the API and waits for the node agent to stop them, so that a
    /// test leaves no container, sandbox or cgroup behind.
    pub fn delete_all_pods(&self) -> Result<()> {
        let out = self.kubectl("", &["get", "pods", "-A", "-o", "name"])?;
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(());
        }
        self.kubectl(
            "",
            &[
                "delete",
                "pods",
                "--all",
                "-A",
                "--wait=true",
                "--timeout=60s",
            ],
        )?;
        Ok(())
    }

    /// Last resort after the server is gone: stop what the node runtime recorded.
    fn reap_runtime(&self) {
        reap_runtime(&self.data.path().join("node/runtime"));
    }
}

/// Stops what a node runtime (its `runtime/` directory) recorded: shims, runc containers,
/// sandboxes, overlay mounts.
fn reap_runtime(runtime: &Path) {
    let pid_of = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    let kill = |pid: i32| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    };
    if let Ok(entries) = std::fs::read_dir(runtime.join("shim")) {
        for e in entries.flatten() {
            if let Some(pid) = pid_of(&e.path().join("shim.pid")) {
                kill(pid);
            }
            let _ = Command::new("runc")
                .arg("--root")
                .arg(runtime.join("shim/runc"))
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    if let Ok(entries) = std::fs::read_dir(runtime.join("sandboxes")) {
        for e in entries.flatten() {
            let record: Option<serde_json::Value> = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(pid) = record.and_then(|r| r["pid"].as_i64()) {
                kill(pid as i32);
            }
        }
    }
    // Overlay root filesystems mounted for containers.
    if let Ok(entries) = std::fs::read_dir(runtime.join("rootfs")) {
        for e in entries.flatten() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(e.path().join("rootfs"))
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A `gantry agent` process joining a [`Gantry`] cluster under its own node name and data
/// directory (parallel-safe: its kubelet port is picked by the agent). `kill -9`ed on drop, and
/// whatever its runtime recorded is stopped (after deleting its pods while it still runs).
pub struct AgentProcess {
    child: Option<Child>,
    data: tempfile::TempDir,
    args: Vec<std::ffi::OsString>,
    kubeconfig: PathBuf,
    node_name: String,
}

impl AgentProcess {
    /// Starts `gantry agent --node-name <node_name>` against `g`, with `g`'s data directory as
    /// `--cluster-dir` so the API server trusts its serving certificate.
    pub fn start(g: &Gantry, node_name: &str) -> Result<AgentProcess> {
        let data = tempfile::Builder::new()
            .prefix("gantry-agent-")
            .tempdir()
            .context("failed to create an agent data dir")?;
        let args: Vec<std::ffi::OsString> = vec![
            "agent".into(),
            "--kubeconfig".into(),
            g.kubeconfig.clone().into(),
            "--node-name".into(),
            node_name.into(),
            "--data-dir".into(),
            data.path().into(),
            "--kubelet-port".into(),
            "0".into(),
            "--cluster-dir".into(),
            g.data_dir().into(),
        ];
        let mut a = AgentProcess {
            child: None,
            data,
            args,
            kubeconfig: g.kubeconfig.clone(),
            node_name: node_name.to_string(),
        };
        a.spawn()?;
        Ok(a)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new(gantry_bin()?)
            .args(&self.args)
            .env(
                "GANTRY_LOG",
                std::env::var("GANTRY_LOG").unwrap_or_else(|_| "warn".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("failed to start gantry agent")?;
        self.child = Some(child);
        Ok(())
    }

    /// The agent's data directory (images, runtime state, logs).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The agent process's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the agent (its containers keep running under their shims).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().context("failed to kill the agent")?;
            c.wait().context("failed to reap the agent")?;
        }
        Ok(())
    }

    /// Starts the agent again with the same arguments (after [`AgentProcess::kill9`]).
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }
}

impl AgentProcess {
    /// Deletes the pods bound to this agent's node and waits for the agent to stop them.
    pub fn delete_pods(&self) -> Result<()> {
        let selector = format!("spec.nodeName={}", self.node_name);
        Command::new(kubectl_bin("")?)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.data.path())
            .args(["delete", "pods", "-A", "--field-selector", &selector])
            .args(["--wait=true", "--timeout=60s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("failed to run kubectl")?;
        Ok(())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.delete_pods();
        }
        let _ = self.kill9();
        reap_runtime(&self.data.path().join("runtime"));
    }
}

impl Drop for Gantry {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.delete_all_pods();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.reap_runtime();
    }
}

pub mod images;
pub mod registry;
