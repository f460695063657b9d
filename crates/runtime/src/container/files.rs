//! The files of one container's directory (`<state_dir>/<id>/`), shared by the shim that
//! writes them and [`crate::container::runc`] that reads them.
//! Invariant: every file is written to a temporary name and renamed, so a reader never sees
//! half a file; `pid` appears only after `started_at`, `exit.json` only after `runc delete`.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::time::{format_rfc3339_nanos, parse_rfc3339};

/// Where cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The OCI bundle (holds `config.json`).
pub const BUNDLE: &str = "bundle";
/// What `Runc::start` was asked for: [`Meta`].
pub const META: &str = "meta.json";
/// The container's init pid (decimal), once it runs.
pub const PID: &str = "pid";
/// When the container started (RFC 3339).
pub const STARTED_AT: &str = "started_at";
/// The shim's own pid (decimal).
pub const SHIM_PID: &str = "shim.pid";
/// The shim's diagnostics (its stderr).
pub const SHIM_LOG: &str = "shim.log";
/// runc's pid file, written by `runc run --pid-file`.
pub const RUNC_PID: &str = "runc.pid";
/// runc's own JSON log (`runc --log`): the reason a start failed.
pub const RUNC_LOG: &str = "runc.log";
/// The container's CRI log when the config names none.
pub const CONTAINER_LOG: &str = "container.log";
/// How the container ended: [`ExitRecord`].
pub const EXIT: &str = "exit.json";

/// Written by `Runc::start` so that a restarted agent can find logs and cgroups again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub id: String,
    pub log_path: std::path::PathBuf,
    pub cgroups_path: String,
}

/// `exit.json`: how the container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// The exit status, or 128 + signal when killed by a signal (as a shell reports it);
    /// 128 when the container never started.
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// RFC 3339; `None` when the container never started.
    pub started_at: Option<String>,
    pub finished_at: String,
    /// Why the container could not start (runc's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ExitRecord {
    pub fn started(&self) -> Option<SystemTime> {
        self.started_at.as_deref().and_then(parse_rfc3339)
    }

    pub fn finished(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.finished_at)
    }
}

/// Writes `contents` to `dir/name` atomically (temporary file, fsync, rename).
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Reads a decimal pid file.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Reads `started_at`.
pub fn read_started_at(dir: &Path) -> Option<SystemTime> {
    parse_rfc3339(std::fs::read_to_string(dir.join(STARTED_AT)).ok()?.trim())
}

/// Writes `started_at` then `pid`.
pub fn write_started(dir: &Path, pid: i32, at: SystemTime) -> std::io::Result<()> {
    write_atomic(dir, STARTED_AT, format_rfc3339_nanos(at).as_bytes())?;
    write_atomic(dir, PID, pid.to_string().as_bytes())
}

/// Reads `exit.json`; `None` when absent or unreadable.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    serde_json::from_slice(&std::fs::read(dir.join(EXIT)).ok()?).ok()
}
