//! The servers under test: the real `gantry up` and the etcd 3.4 baseline, each started on
//! 127.0.0.1 in its own temp dir and stopped by PID when dropped.
//! Also reads a process's memory from `/proc/PID/status`.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::http::{Endpoint, Scheme};

/// A running server process that is killed (by PID) and reaped when dropped.
pub struct Proc {
    child: Child,
    dir: tempfile::TempDir,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `gantry up` and how to reach it.
pub struct GantryServer {
    pub proc: Proc,
    pub endpoint: Endpoint,
}

/// Starts `gantry up --api-port 0` in a fresh temp data dir and waits for `/readyz`.
pub async fn start_gantry(bin: &Path) -> Result<GantryServer> {
    let dir = tempfile::Builder::new()
        .prefix("gantry-bench-")
        .tempdir()
        .context("failed to create a gantry data dir")?;
    let mut child = Command::new(bin)
        .args([
            "server",
            "--disable-scheduler",
            "--api-port",
            "0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("GANTRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("failed to start {}", bin.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("gantry: API server listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let proc = Proc { child, dir };
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| anyhow!("gantry did not print its URL within 60 s"))?;
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("bad url {url}"))?;
    let pki = proc.dir.path().join("pki");
    let ca = std::fs::read(pki.join("ca.crt")).context("failed to read the gantry CA")?;
    let token = std::fs::read_to_string(pki.join("admin.token"))
        .context("failed to read the admin token")?;
    let endpoint = Endpoint::new(
        port,
        Scheme::Https {
            ca,
            token: token.trim().to_string(),
        },
    )?;
    wait_ready(&endpoint, "/readyz").await?;
    Ok(GantryServer { proc, endpoint })
}

/// A running etcd and its plain-HTTP client endpoint (the v3 JSON gateway lives there).
pub struct EtcdServer {
    pub proc: Proc,
    pub endpoint: Endpoint,
}

/// Starts a single-member etcd on free 127.0.0.1 ports in a temp dir; installs
/// Debian's `etcd-server` first if no `etcd` binary is found.
pub async fn start_etcd() -> Result<EtcdServer> {
    let bin = etcd_bin()?;
    let dir = tempfile::Builder::new()
        .prefix("etcd-bench-")
        .tempdir()
        .context("failed to create an etcd data dir")?;
    let client = free_port()?;
    let peer = free_port()?;
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let child = Command::new(&bin)
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &curl,
            "--advertise-client-urls",
            &curl,
        ])
        .args([
            "--listen-peer-urls",
            &purl,
            "--initial-advertise-peer-urls",
            &purl,
        ])
        .args(["--initial-cluster", &format!("bench={purl}")])
        .args(["--logger", "zap", "--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("failed to start {}", bin.display()))?;
    let proc = Proc { child, dir };
    let endpoint = Endpoint::new(client, Scheme::Http)?;
    wait_ready(&endpoint, "/health").await?;
    Ok(EtcdServer { proc, endpoint })
}

/// Resident set size (`VmRSS`) of a process, in bytes.
pub fn rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:").map(|k| k * 1024)
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("failed to read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// The `etcd` binary, installing `etcd-server` (Debian's etcd 3.4) when missing.
fn etcd_bin() -> Result<PathBuf> {
    let find = || {
        ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    eprintln!("gantry-bench: etcd not found, running `apt-get install -y etcd-server`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "etcd-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install().context("failed to run apt-get")?.success() {
        let _ = Command::new("apt-get").arg("update").status();
        if !install().context("failed to run apt-get")?.success() {
            bail!("apt-get install -y etcd-server failed");
        }
    }
    find().ok_or_else(|| anyhow!("etcd-server installed but no etcd binary found"))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(l.local_addr()
        .context("failed to read a local address")?
        .port())
}

async fn wait_ready(endpoint: &Endpoint, path: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match endpoint.get_once(path).await {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => format!("HTTP {code}: {}", String::from_utf8_lossy(&body)),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > deadline {
            bail!(
                "server on port {} never became ready: {last}",
                endpoint.port
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
