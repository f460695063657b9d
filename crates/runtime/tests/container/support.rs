//! Test support: installs runc and busybox when missing, builds a busybox rootfs, and gives
//! each case its own state dir, runc root and cgroup parent, removed again on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gantry_runtime::container::{ContainerConfig, ContainerState, Runc, RuncConfig};

pub const SHIM_MARKER: &str = "__gantry_test_shim";
pub const PAUSE_MARKER: &str = "__gantry_test_pause";

const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "ps", "hostname", "id", "echo", "grep", "dd", "httpd", "wget", "seq",
    "mkdir", "unshare", "true", "wc", "ls", "head",
];

/// Installs Debian's runc and busybox-static when they are missing.
pub fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = [
        ("runc", "/usr/sbin/runc"),
        ("busybox-static", "/bin/busybox"),
    ]
    .iter()
    .filter(|(_, path)| !Path::new(path).exists())
    .map(|(pkg, _)| *pkg)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = || {
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install()?.success() {
        std::process::Command::new("apt-get")
            .args(["update", "-q"])
            .status()?;
        if !install()?.success() {
            bail!("apt-get install {missing:?} failed");
        }
    }
    Ok(())
}

/// One case's runtime: its own state dir, runc root and cgroup parent.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub runc: Runc,
    pub cgroup_parent: String,
}

impl Env {
    pub fn new() -> Result<Env> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::Builder::new().prefix("gantry-ctr-").tempdir()?;
        let cgroup_parent = format!(
            "/gantry-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut cfg = RuncConfig::new(
            dir.path().join("state"),
            std::env::current_exe()?,
            vec![SHIM_MARKER.to_string()],
        );
        cfg.runc_path = PathBuf::from("/usr/sbin/runc");
        cfg.cgroup_parent = cgroup_parent.clone();
        Ok(Env {
            runc: Runc::new(cfg),
            dir,
            cgroup_parent,
        })
    }

    /// A fresh busybox rootfs named `name`.
    pub fn rootfs(&self, name: &str) -> Result<PathBuf> {
        let root = self.dir.path().join("rootfs").join(name);
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .context("failed to copy busybox")?;
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
        )?;
        Ok(root)
    }

    /// A container running `sh -c script` in its own namespaces.
    pub fn container(&self, id: &str, script: &str) -> Result<ContainerConfig> {
        Ok(ContainerConfig {
            id: id.to_string(),
            rootfs: self.rootfs(id)?,
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            hostname: id.to_string(),
            ..Default::default()
        })
    }

    /// The container's cgroup directory in one v1 hierarchy.
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_parent.trim_start_matches('/'))
            .join(id)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever a failed case left behind: containers, then the cgroup parent.
        // Drop runs inside the case's runtime, which cannot block: use a thread of its own.
        let runc = &self.runc;
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        for c in runc.list().await.unwrap_or_default() {
                            let _ = runc.remove(&c.id).await;
                        }
                    });
                }
            });
        });
        let rel = self.cgroup_parent.trim_start_matches('/');
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(rel));
            }
        }
    }
}

/// Polls until the container has exited.
pub async fn wait_exited(runc: &Runc, id: &str, timeout: Duration) -> Result<ContainerState> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = runc.state(id).await?;
        if matches!(state, ContainerState::Exited { .. }) {
            return Ok(state);
        }
        if Instant::now() > deadline {
            bail!("container {id} still {state:?} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bodies of the container's CRI log records of `stream`, checking the record format.
pub fn log_lines(path: &Path, stream: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (ts, s, tag) = (parts.next(), parts.next(), parts.next());
        let ts = ts.context("no timestamp")?;
        if gantry_runtime::container::time::parse_rfc3339(ts).is_none()
            || !matches!(tag, Some("F" | "P"))
        {
            bail!("not a CRI log record: {line:?}");
        }
        if s == Some(stream) {
            out.push(parts.next().unwrap_or("").to_string());
        }
    }
    Ok(out)
}

/// Waits until the log has a record `want` on stdout.
pub async fn wait_log(path: &Path, want: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if log_lines(path, "stdout")
            .unwrap_or_default()
            .iter()
            .any(|l| l == want)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no {want:?} in {} after {timeout:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn exit_code(state: &ContainerState) -> Option<i32> {
    match state {
        ContainerState::Exited { exit_code, .. } => Some(*exit_code),
        _ => None,
    }
}
