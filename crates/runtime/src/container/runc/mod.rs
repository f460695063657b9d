//! Containers run by runc, each under its own shim (see [`crate::container::shim`]).
//! Invariant: `<state_dir>/<id>/` is the only record of a container; every method reads it
//! afresh, so a new `Runc` over the same `state_dir` (after an agent restart) sees
//! exactly what the old one did.

pub(crate) mod cgroup;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::process::{Child, Command};

use super::config::{ConfigError, ContainerConfig};
use super::files::{self, ExitRecord, Meta};
use super::shim::{ShimArgs, DEFAULT_LOG_MAX_BYTES};
use super::{spec, sys};

/// How long `start` waits for the shim to report a started (or failed) container.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits for the shim to record the exit after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

/// Settings of the runc runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct RuncConfig {
    /// The `runc` binary.
    pub runc_path: PathBuf,
    /// runc's state (`runc --root`).
    pub root_dir: PathBuf,
    /// One directory per container: bundle, shim files, default log.
    pub state_dir: PathBuf,
    /// The executable that runs [`crate::container::shim::main`] (the `gantry` binary)...
    pub shim_exe: PathBuf,
    /// ...and the arguments that select it (`["shim"]`); the shim's flags follow them.
    pub shim_args: Vec<String>,
    /// Absolute cgroup under which each container gets `<cgroup_parent>/<id>`.
    pub cgroup_parent: String,
    /// Size at which a container's log is rotated.
    pub log_max_bytes: u64,
}

impl RuncConfig {
    /// Settings with Debian's runc, the `/gantry` cgroup parent and 10 MiB logs.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        shim_exe: impl Into<PathBuf>,
        shim_args: Vec<String>,
    ) -> Self {
        let state_dir = state_dir.into();
        RuncConfig {
            runc_path: PathBuf::from("runc"),
            root_dir: state_dir.join("runc"),
            state_dir,
            shim_exe: shim_exe.into(),
            shim_args,
            cgroup_parent: "/gantry".into(),
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
        }
    }
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHandle {
    pub id: String,
    pub pid: i32,
    pub started_at: SystemTime,
    pub log_path: PathBuf,
}

/// What a container is doing, as its directory tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        pid: i32,
        started_at: SystemTime,
    },
    Exited {
        exit_code: i32,
        signal: Option<i32>,
        oom_killed: bool,
        started_at: Option<SystemTime>,
        finished_at: Option<SystemTime>,
        /// Why it never started, when it did not.
        message: Option<String>,
    },
    /// Neither running nor exited: the shim died without a verdict, or the container is
    /// still starting.
    Unknown,
}

/// A container found in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub state: ContainerState,
    pub log_path: PathBuf,
}

/// Why a runc operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    #[error("invalid container config")]
    Config(#[from] ConfigError),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("failed to {action} for container {id}")]
    Io {
        action: &'static str,
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shim for container {id} exited with {status}")]
    ShimFailed {
        id: String,
        status: std::process::ExitStatus,
    },
    #[error("container {id} did not start within {timeout:?}")]
    StartTimeout { id: String, timeout: Duration },
    #[error("container {id} failed to start: {message}")]
    StartFailed { id: String, message: String },
    #[error("exec with a terminal is not supported")]
    TtyUnsupported,
}

/// The runc runtime.
#[derive(Debug, Clone)]
pub struct Runc {
    cfg: RuncConfig,
}

impl Runc {
    pub fn new(cfg: RuncConfig) -> Self {
        Runc { cfg }
    }

    pub fn config(&self) -> &RuncConfig {
        &self.cfg
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join(id)
    }

    /// Writes the bundle, starts the shim and waits until the container runs (or failed).
    pub async fn start(&self, config: &ContainerConfig) -> Result<ContainerHandle, RuncError> {
        config.validate()?;
        let id = config.id.clone();
        let io = |action: &'static str| {
            let id = id.clone();
            move |source| RuncError::Io { action, id, source }
        };
        let dir = self.container_dir(&id);
        let bundle = dir.join(files::BUNDLE);
        tokio::fs::create_dir_all(&self.cfg.state_dir)
            .await
            .map_err(io("create state dir"))?;
        tokio::fs::create_dir_all(&self.cfg.root_dir)
            .await
            .map_err(io("create runc root"))?;
        match tokio::fs::create_dir(&dir).await {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuncError::AlreadyExists(id))
            }
            r => r.map_err(io("create container dir"))?,
        }
        tokio::fs::create_dir(&bundle)
            .await
            .map_err(io("create bundle"))?;

        let mut config = config.clone();
        let cgroups_path = config
            .cgroups_path
            .get_or_insert_with(|| {
                format!("{}/{}", self.cfg.cgroup_parent.trim_end_matches('/'), id)
            })
            .clone();
        let log_path = config
            .log_path
            .clone()
            .unwrap_or_else(|| dir.join(files::CONTAINER_LOG));
        if let Some(parent) = log_path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io("create log dir"))?;
        }
        let spec = serde_json::to_vec_pretty(&spec::runtime_spec(&config))
            .map_err(|e| io("encode spec")(e.into()))?;
        files::write_atomic(&bundle, "config.json", &spec).map_err(io("write config.json"))?;
        let meta = Meta {
            id: id.clone(),
            log_path: log_path.clone(),
            cgroups_path,
        };
        let meta = serde_json::to_vec(&meta).map_err(|e| io("encode meta")(e.into()))?;
        files::write_atomic(&dir, files::META, &meta).map_err(io("write meta"))?;

        let shim_args = ShimArgs {
            id: id.clone(),
            bundle,
            log: log_path.clone(),
            state_dir: dir.clone(),
            runc: self.cfg.runc_path.clone(),
            runc_root: self.cfg.root_dir.clone(),
            log_max_bytes: self.cfg.log_max_bytes,
        };
        let shim_log =
            std::fs::File::create(dir.join(files::SHIM_LOG)).map_err(io("create shim log"))?;
        let status = Command::new(&self.cfg.shim_exe)
            .args(&self.cfg.shim_args)
            .args(shim_args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(shim_log)
            .status()
            .await
            .map_err(io("spawn shim"))?;
        if !status.success() {
            return Err(RuncError::ShimFailed { id, status });
        }
        tracing::debug!(container = %id, "shim started");

        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let (Some(pid), Some(started_at)) = (
                files::read_pid(&dir.join(files::PID)),
                files::read_started_at(&dir),
            ) {
                tracing::info!(container = %id, pid, "container started");
                return Ok(ContainerHandle {
                    id,
                    pid,
                    started_at,
                    log_path,
                });
            }
            if let Some(rec) = files::read_exit(&dir) {
                let message = rec
                    .message
                    .unwrap_or_else(|| format!("exited with {}", rec.exit_code));
                return Err(RuncError::StartFailed { id, message });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuncError::StartTimeout {
                    id,
                    timeout: START_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The container's state from its directory.
    pub async fn state(&self, id: &str) -> Result<ContainerState, RuncError> {
        let dir = self.container_dir(id);
        if !tokio::fs::try_exists(dir.join(files::META))
            .await
            .unwrap_or(false)
        {
            return Err(RuncError::NotFound(id.to_string()));
        }
        Ok(read_state(&dir))
    }

    /// The container's CRI log file.
    pub fn log_path(&self, id: &str) -> Result<PathBuf, RuncError> {
        Ok(self.meta(id)?.log_path)
    }

    /// SIGTERM, up to `grace` for the container to exit, then SIGKILL. Returns the final
    /// state (normally `Exited`).
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<ContainerState, RuncError> {
        let dir = self.container_dir(id);
        let state = self.state(id).await?;
        if matches!(state, ContainerState::Exited { .. }) {
            return Ok(state);
        }
        tracing::info!(container = %id, grace_ms = grace.as_millis() as u64, "stopping container");
        self.kill(id, "TERM").await;
        if let Some(exited) = wait_exit(&dir, grace).await {
            return Ok(exited);
        }
        tracing::info!(container = %id, "grace period over, killing container");
        self.kill(id, "KILL").await;
        if let Some(exited) = wait_exit(&dir, KILL_TIMEOUT).await {
            return Ok(exited);
        }
        Ok(read_state(&dir))
    }

    /// Kills what is left of the container and deletes its runc state, cgroups and directory.
    pub async fn remove(&self, id: &str) -> Result<(), RuncError> {
        let dir = self.container_dir(id);
        let meta = self.meta(id)?;
        if !matches!(read_state(&dir), ContainerState::Exited { .. }) {
            self.kill(id, "KILL").await;
            let _ = wait_exit(&dir, KILL_TIMEOUT).await;
        }
        let _ = Command::new(&self.cfg.runc_path)
            .arg("--root")
            .arg(&self.cfg.root_dir)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if let Some(shim) = files::read_pid(&dir.join(files::SHIM_PID)) {
            if sys::alive(shim) && files::read_exit(&dir).is_none() {
                let _ = sys::kill(shim, libc::SIGKILL);
            }
        }
        cgroup::remove(Path::new(files::CGROUP_ROOT), &meta.cgroups_path);
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(|source| RuncError::Io {
                action: "remove container dir",
                id: id.to_string(),
                source,
            })?;
        tracing::info!(container = %id, "container removed");
        Ok(())
    }

    /// Every container in the state directory (re-adoption after an agent restart).
    pub async fn list(&self) -> Result<Vec<ContainerInfo>, RuncError> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.cfg.state_dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(RuncError::Io {
                    action: "list containers",
                    id: String::new(),
                    source,
                })
            }
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Ok(meta) = self.meta(&id) {
                out.push(ContainerInfo {
                    state: read_state(&entry.path()),
                    id,
                    log_path: meta.log_path,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Runs `argv` in the container (`runc exec`) with piped stdin, stdout and stderr.
    pub async fn exec(&self, id: &str, argv: &[String], tty: bool) -> Result<Child, RuncError> {
        if tty {
            return Err(RuncError::TtyUnsupported);
        }
        self.meta(id)?;
        Command::new(&self.cfg.runc_path)
            .arg("--root")
            .arg(&self.cfg.root_dir)
            .args(["exec", id])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuncError::Io {
                action: "spawn runc exec",
                id: id.to_string(),
                source,
            })
    }

    fn meta(&self, id: &str) -> Result<Meta, RuncError> {
        super::config::validate_id(id).map_err(|_| RuncError::NotFound(id.to_string()))?;
        let bytes = std::fs::read(self.container_dir(id).join(files::META))
            .map_err(|_| RuncError::NotFound(id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|_| RuncError::NotFound(id.to_string()))
    }

    async fn kill(&self, id: &str, signal: &str) {
        // Fails harmlessly when the container already stopped.
        let _ = Command::new(&self.cfg.runc_path)
            .arg("--root")
            .arg(&self.cfg.root_dir)
            .args(["kill", id, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

fn exited(rec: ExitRecord) -> ContainerState {
    ContainerState::Exited {
        exit_code: rec.exit_code,
        signal: rec.signal,
        oom_killed: rec.oom_killed,
        started_at: rec.started(),
        finished_at: rec.finished(),
        message: rec.message,
    }
}

/// Exited if `exit.json` says so; Running while the shim (or, without a shim, the
/// container's init) lives; Unknown otherwise.
fn read_state(dir: &Path) -> ContainerState {
    if let Some(rec) = files::read_exit(dir) {
        return exited(rec);
    }
    let pid = files::read_pid(&dir.join(files::PID));
    let started = files::read_started_at(dir);
    let shim_alive = files::read_pid(&dir.join(files::SHIM_PID)).is_some_and(sys::alive);
    match (pid, started) {
        (Some(pid), Some(started_at)) if shim_alive || sys::alive(pid) => {
            ContainerState::Running { pid, started_at }
        }
        _ => ContainerState::Unknown,
    }
}

async fn wait_exit(dir: &Path, timeout: Duration) -> Option<ContainerState> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(rec) = files::read_exit(dir) {
            return Some(exited(rec));
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}
