//! Pod sandboxes: a small `gantry pause` process holding the pod's network, IPC and UTS
//! namespaces (hostname = pod name, loopback up), which containers join by
//! `/proc/<pid>/ns/<kind>`.
//! Invariant: the namespaces are created with `unshare(2)` in the forked child before it
//! executes the pause binary (a single-threaded point), never in the agent itself.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::config::{NamespaceMode, Namespaces, SandboxConfig};
use super::sys;

/// What `pause_main` prints once the sandbox is ready.
const READY: &str = "ready";

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    pid: i32,
    host_network: bool,
    share_pid: bool,
    child: Option<Child>,
}

/// Why a sandbox could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid pod hostname {0:?}")]
    InvalidHostname(String),
    #[error("failed to spawn the pause process")]
    Spawn(#[source] std::io::Error),
    #[error("pause process failed before it was ready: {0}")]
    NotReady(String),
    #[error("failed to stop the pause process")]
    Stop(#[source] std::io::Error),
}

/// A namespace the sandbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    Network,
    Ipc,
    Uts,
    /// Only with `share_pid`: the namespace the pause process's children live in.
    Pid,
}

impl NamespaceKind {
    fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Network => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Pid => "pid_for_children",
        }
    }
}

impl Sandbox {
    /// Starts the pause process in new namespaces and waits until its loopback is up.
    pub fn start(cfg: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        let hostname = cfg.hostname.clone().into_bytes();
        if hostname.is_empty() || hostname.len() > 64 || hostname.contains(&0) {
            return Err(SandboxError::InvalidHostname(cfg.hostname.clone()));
        }
        let mut flags = libc::CLONE_NEWIPC;
        if !cfg.host_network {
            flags |= libc::CLONE_NEWNET | libc::CLONE_NEWUTS;
        }
        if cfg.share_pid {
            flags |= libc::CLONE_NEWPID;
        }
        let (host_network, share_pid) = (cfg.host_network, cfg.share_pid);
        let mut cmd = Command::new(&cfg.pause_exe);
        cmd.args(&cfg.pause_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: unshare() and sethostname() are plain
        // syscalls, and `hostname` was allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if !host_network && libc::sethostname(hostname.as_ptr().cast(), hostname.len()) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
        let pid =
            i32::try_from(child.id()).map_err(|e| SandboxError::Spawn(std::io::Error::other(e)))?;
        let mut line = String::new();
        let ready = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        if !matches!(ready, Some(Ok(_))) || line.trim() != READY {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(SandboxError::NotReady(format!(
                "{} ({status})",
                line.trim()
            )));
        }
        tracing::info!(pid, host_network, "sandbox started");
        Ok(Sandbox {
            pid,
            host_network,
            share_pid,
            child: Some(child),
        })
    }

    /// Re-adopts a sandbox started by an earlier agent process.
    pub fn adopt(pid: i32, host_network: bool, share_pid: bool) -> Sandbox {
        Sandbox {
            pid,
            host_network,
            share_pid,
            child: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/<pid>/ns/<kind>`; `None` for the network namespace (and UTS) of a
    /// `hostNetwork` pod, which uses the host's.
    pub fn ns_path(&self, kind: NamespaceKind) -> Option<PathBuf> {
        let held = match kind {
            NamespaceKind::Ipc => true,
            NamespaceKind::Network | NamespaceKind::Uts => !self.host_network,
            NamespaceKind::Pid => self.share_pid,
        };
        if !held {
            return None;
        }
        Some(PathBuf::from(format!(
            "/proc/{}/ns/{}",
            self.pid,
            kind.proc_name()
        )))
    }

    /// The namespaces a container of this pod joins (its own PID namespace unless shared).
    pub fn namespaces(&self) -> Namespaces {
        let mode = |kind| {
            self.ns_path(kind)
                .map_or(NamespaceMode::Host, NamespaceMode::Path)
        };
        Namespaces {
            network: mode(NamespaceKind::Network),
            ipc: mode(NamespaceKind::Ipc),
            uts: mode(NamespaceKind::Uts),
            pid: self
                .ns_path(NamespaceKind::Pid)
                .map_or(NamespaceMode::New, NamespaceMode::Path),
        }
    }

    /// SIGTERM, then SIGKILL after five seconds; reaps the process when we started it.
    pub fn stop(mut self) -> Result<(), SandboxError> {
        if let Err(e) = sys::kill(self.pid, libc::SIGTERM) {
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(SandboxError::Stop(e));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let gone = match self.child.as_mut() {
                Some(child) => child.try_wait().map_err(SandboxError::Stop)?.is_some(),
                None => !sys::alive(self.pid),
            };
            if gone {
                tracing::info!(pid = self.pid, "sandbox stopped");
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = sys::kill(self.pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Entry point of `gantry pause`: brings loopback up, starts the init of a shared PID
/// namespace when it was given one, says it is ready on stdout and sleeps until SIGTERM or
/// SIGINT. Must be called while the process is single-threaded (it may fork).
pub fn pause_main() -> ExitCode {
    if let Err(e) = sys::loopback_up() {
        let _ = writeln!(std::io::stderr(), "pause: failed to bring loopback up: {e}");
        return ExitCode::FAILURE;
    }
    let own = std::fs::read_link("/proc/self/ns/pid").ok();
    let children = std::fs::read_link("/proc/self/ns/pid_for_children").ok();
    if own != children {
        // Started with CLONE_NEWPID: the namespace lives only as long as its init, so give
        // it one that reaps orphans and dies with us.
        if let Err(e) = sys::fork_pid_init() {
            let _ = writeln!(
                std::io::stderr(),
                "pause: failed to start the PID namespace init: {e}"
            );
            return ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout();
    if writeln!(out, "{READY}").and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    match sys::wait_for_termination() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pause: failed to wait for a signal: {e}");
            ExitCode::FAILURE
        }
    }
}
