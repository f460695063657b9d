//! A real OCI distribution registry (Debian's `docker-registry`, distribution 2.8) on
//! 127.0.0.1 and a free port, storing into a temp dir; killed and removed on drop.
//! Installs the package when missing, as every test support helper here does.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry. `addr()` is `127.0.0.1:<port>`, spoken to over plain HTTP.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
}

impl Registry {
    /// Starts a registry with anonymous pull and push, and waits until `/v2/` answers.
    pub fn start() -> Result<Registry> {
        apt_install(REGISTRY_BIN, "docker-registry")?;
        let mut last = None;
        for _ in 0..3 {
            match Registry::try_start() {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn try_start() -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()
            .context("failed to create the registry dir")?;
        // Port 0 cannot be handed to the registry, so take a free port and release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("failed to find a free port")?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start docker-registry")?;
        let mut reg = Registry { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if reg.get_status("/v2/").is_ok_and(|s| s == 200) {
                return Ok(reg);
            }
            if let Some(status) = reg.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", reg.log());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer within 20 s: {}", reg.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The registry's storage root (distribution's filesystem driver layout), for tests that
    /// tamper with what it serves.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The stored data file of blob `sha256:<hex>`.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// What the registry wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The HTTP status of a GET on `path`.
    pub fn get_status(&self, path: &str) -> Result<u16> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        let line = String::from_utf8_lossy(&head);
        line.split(' ')
            .nth(1)
            .and_then(|c| c.trim().parse().ok())
            .with_context(|| format!("bad status line {line:?}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs Debian package `package` unless `probe` exists (`apt-get update` once if needed).
/// Serialized within the process; apt's own lock (with a timeout) serializes across processes.
pub fn apt_install(probe: &str, package: &str) -> Result<()> {
    static APT: Mutex<()> = Mutex::new(());
    if Path::new(probe).exists() {
        return Ok(());
    }
    let _g = APT.lock().unwrap_or_else(|p| p.into_inner());
    if Path::new(probe).exists() {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "-q",
                package,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let out = install().context("failed to run apt-get")?;
    if !out.status.success() {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update", "-q"])
            .output()
            .context("failed to run apt-get update")?;
        let out = install().context("failed to run apt-get")?;
        if !out.status.success() {
            bail!(
                "apt-get install {package} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if !Path::new(probe).exists() {
        bail!("{package} is installed but {probe} is missing");
    }
    Ok(())
}
