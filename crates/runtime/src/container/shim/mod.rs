//! The per-container shim, run as `gantry shim --id ID --bundle DIR --log FILE --state-dir DIR
//! --runc PATH --runc-root DIR [--log-max-bytes N]`. It daemonises, starts the container with
//! `runc run --detach` while holding its stdout/stderr pipes, writes the CRI log, records
//! `pid`, waits for the container's init (as child subreaper), records whether the OOM
//! killer fired, runs `runc delete` and finally writes `exit.json`.
//! Invariant: [`main`] must be called before the process starts any thread (it forks).

mod log;
mod oom;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::files::{self, ExitRecord};
use super::sys::{self, WaitStatus};
use super::time::format_rfc3339_nanos;

pub use self::log::{CriLog, MAX_LINE};
pub use self::oom::oom_killed;

/// Default size at which the CRI log is rotated.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The shim's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub log: PathBuf,
    pub state_dir: PathBuf,
    pub runc: PathBuf,
    pub runc_root: PathBuf,
    pub log_max_bytes: u64,
}

impl ShimArgs {
    /// The arguments that [`ShimArgs::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, value) in [
            ("--id", self.id.clone()),
            ("--bundle", self.bundle.display().to_string()),
            ("--log", self.log.display().to_string()),
            ("--state-dir", self.state_dir.display().to_string()),
            ("--runc", self.runc.display().to_string()),
            ("--runc-root", self.runc_root.display().to_string()),
            ("--log-max-bytes", self.log_max_bytes.to_string()),
        ] {
            args.push(flag.to_string());
            args.push(value);
        }
        args
    }

    /// Parses `--flag value` pairs (in any order).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let (mut id, mut bundle, mut log, mut state_dir, mut runc, mut runc_root) =
            (None, None, None, None, None, None);
        let mut log_max_bytes = DEFAULT_LOG_MAX_BYTES;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--id" => id = Some(value),
                "--bundle" => bundle = Some(PathBuf::from(value)),
                "--log" => log = Some(PathBuf::from(value)),
                "--state-dir" => state_dir = Some(PathBuf::from(value)),
                "--runc" => runc = Some(PathBuf::from(value)),
                "--runc-root" => runc_root = Some(PathBuf::from(value)),
                "--log-max-bytes" => {
                    log_max_bytes = value
                        .parse()
                        .map_err(|_| format!("bad --log-max-bytes {value:?}"))?
                }
                other => return Err(format!("unknown flag {other}")),
            }
        }
        let need = |v: Option<PathBuf>, f: &str| v.ok_or_else(|| format!("missing {f}"));
        Ok(ShimArgs {
            id: id.ok_or("missing --id")?,
            bundle: need(bundle, "--bundle")?,
            log: need(log, "--log")?,
            state_dir: need(state_dir, "--state-dir")?,
            runc: need(runc, "--runc")?,
            runc_root: need(runc_root, "--runc-root")?,
            log_max_bytes,
        })
    }
}

/// Entry point of `gantry shim` (`args` without the program name and subcommand). The
/// process that calls it exits at once with 0 once the daemon is forked off.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = match ShimArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            say(&format!("usage error: {e}"));
            return ExitCode::from(2);
        }
    };
    match sys::daemonize() {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(e) => {
            say(&format!("failed to daemonise: {e}"));
            return ExitCode::FAILURE;
        }
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("shim failed: {e}"));
            // Leave a verdict behind so that nobody waits for a container forever.
            if files::read_exit(&args.state_dir).is_none() {
                let rec = ExitRecord {
                    exit_code: 128,
                    signal: None,
                    oom_killed: false,
                    started_at: None,
                    finished_at: format_rfc3339_nanos(SystemTime::now()),
                    message: Some(format!("shim failed: {e}")),
                };
                let _ = write_exit(&args.state_dir, &rec);
            }
            ExitCode::FAILURE
        }
    }
}

/// Diagnostics go to stderr, which `Runc::start` points at `shim.log`.
fn say(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{} {msg}",
        format_rfc3339_nanos(SystemTime::now())
    );
}

fn run(a: &ShimArgs) -> std::io::Result<()> {
    let dir = &a.state_dir;
    files::write_atomic(
        dir,
        files::SHIM_PID,
        std::process::id().to_string().as_bytes(),
    )?;
    sys::set_child_subreaper()?;
    let log = Arc::new(Mutex::new(CriLog::open(&a.log, a.log_max_bytes)?));

    let mut runc = Command::new(&a.runc)
        .arg("--root")
        .arg(&a.runc_root)
        .arg("--log")
        .arg(dir.join(files::RUNC_LOG))
        .arg("--log-format")
        .arg("json")
        .args(["run", "--detach", "--bundle"])
        .arg(&a.bundle)
        .arg("--pid-file")
        .arg(dir.join(files::RUNC_PID))
        .arg(&a.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The container inherits runc's stdout and stderr: these pipes stay open until the last
    // process in the container closes them.
    let (done_tx, done_rx) = mpsc::channel();
    let mut pumps = 0;
    for (stream, reader) in [
        (
            "stdout",
            runc.stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
        ),
        (
            "stderr",
            runc.stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
        ),
    ] {
        let Some(reader) = reader else { continue };
        let log = Arc::clone(&log);
        let done = done_tx.clone();
        pumps += 1;
        std::thread::spawn(move || {
            if let Err(e) = log::pump(BufReader::with_capacity(64 * 1024, reader), stream, &log) {
                say(&format!("log pump {stream} stopped: {e}"));
            }
            let _ = done.send(());
        });
    }
    let status = runc.wait()?;
    let pid = files::read_pid(&dir.join(files::RUNC_PID));
    let (Some(pid), true) = (pid, status.success()) else {
        let rec = ExitRecord {
            exit_code: 128,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: format_rfc3339_nanos(SystemTime::now()),
            message: Some(runc_error(dir).unwrap_or_else(|| format!("runc run failed: {status}"))),
        };
        wait_pumps(&done_rx, pumps);
        runc_delete(a);
        return write_exit(dir, &rec);
    };
    let started = SystemTime::now();
    files::write_started(dir, pid, started)?;

    let ws = loop {
        match sys::wait_any()? {
            Some((p, ws)) if p == pid => break Some(ws),
            Some(_) => continue,
            None => break None,
        }
    };
    if ws.is_none() {
        // Not our child after all (no subreaper support): poll until it is gone.
        while sys::alive(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let finished = SystemTime::now();
    wait_pumps(&done_rx, pumps);
    let oom = oom_killed(
        Path::new(files::CGROUP_ROOT),
        &cgroups_path(&a.bundle).unwrap_or_default(),
    );
    let (exit_code, signal) = match ws {
        Some(WaitStatus::Exited(code)) => (code, None),
        Some(WaitStatus::Signaled(sig)) => (128 + sig, Some(sig)),
        None => (255, None),
    };
    runc_delete(a);
    let rec = ExitRecord {
        exit_code,
        signal,
        oom_killed: oom,
        started_at: Some(format_rfc3339_nanos(started)),
        finished_at: format_rfc3339_nanos(finished),
        message: None,
    };
    write_exit(dir, &rec)
}

/// Waits (briefly) for the log pumps to drain; processes that escaped the container's PID
/// namespace could hold the pipes forever.
fn wait_pumps(done: &mpsc::Receiver<()>, pumps: usize) {
    for _ in 0..pumps {
        if done.recv_timeout(Duration::from_secs(2)).is_err() {
            return;
        }
    }
}

fn write_exit(dir: &Path, rec: &ExitRecord) -> std::io::Result<()> {
    let json = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    files::write_atomic(dir, files::EXIT, &json)
}

fn runc_delete(a: &ShimArgs) {
    let out = Command::new(&a.runc)
        .arg("--root")
        .arg(&a.runc_root)
        .args(["delete", "--force"])
        .arg(&a.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match out {
        Ok(o) if !o.status.success() => say(&format!(
            "runc delete failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => say(&format!("runc delete failed: {e}")),
        Ok(_) => {}
    }
}

/// `linux.cgroupsPath` from the bundle's `config.json`.
fn cgroups_path(bundle: &Path) -> Option<String> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    spec["linux"]["cgroupsPath"].as_str().map(str::to_string)
}

/// The last error runc logged (`runc --log-format json`).
fn runc_error(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(files::RUNC_LOG)).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error" || v["level"] == "fatal")
            .then(|| v["msg"].as_str().map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = ShimArgs {
            id: "c1".into(),
            bundle: "/s/c1/bundle".into(),
            log: "/s/c1/container.log".into(),
            state_dir: "/s/c1".into(),
            runc: "/usr/sbin/runc".into(),
            runc_root: "/run/gantry/runc".into(),
            log_max_bytes: 1234,
        };
        assert_eq!(ShimArgs::parse(a.to_args()), Ok(a));
        assert!(ShimArgs::parse(vec!["--id".to_string()]).is_err());
        assert!(ShimArgs::parse(vec!["--id".to_string(), "x".to_string()]).is_err());
    }
}
