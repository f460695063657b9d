//! The store directory: naming, locking, recovery (snapshot + logs), and writing snapshots.
//!
//! Invariant: every step that changes which files exist is followed by an fsync of the
//! directory, and recovery accepts every state a crash between two steps can leave behind:
//! a leftover `snap.tmp` is ignored, logs wholly at or below the snapshot are skipped, and a
//! log is deleted only after a snapshot covering it is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::record::{self, Frame, Frames, LogOp};
use super::state::State;
use crate::{Event, KeyValue, StoreError};

const SNAPSHOT_TMP: &str = "snap.tmp";
const LOCK_FILE: &str = "LOCK";

/// What recovery hands to the writer: the rebuilt state and the log to append to.
pub(crate) struct Recovered {
    pub state: State,
    pub log: File,
    pub log_path: PathBuf,
    pub log_bytes: u64,
}

/// Takes an exclusive advisory lock on `dir`, held until the returned file is dropped.
#[allow(unsafe_code)]
pub(crate) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    use std::os::fd::AsRawFd;
    fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(StoreError::Io(io::Error::new(
            err.kind(),
            format!(
                "store directory {} is in use by another process: {err}",
                dir.display()
            ),
        )));
    }
    Ok(file)
}

/// Rebuilds the state from the newest snapshot plus every log, truncating a torn tail of the
/// last log, and opens the log to append to.
pub(crate) fn recover(dir: &Path, history: usize) -> Result<Recovered, StoreError> {
    let _ = fs::remove_file(dir.join(SNAPSHOT_TMP));
    let (snaps, logs) = list(dir)?;
    let mut state = match snaps.last() {
        Some(&rev) => read_snapshot(&snapshot_path(dir, rev), history)?,
        None => State::new(0, history),
    };
    let snapshot_revision = state.revision;
    let mut obsolete = Vec::new();
    for (i, &start) in logs.iter().enumerate() {
        let path = log_path(dir, start);
        let last = i + 1 == logs.len();
        let max_rev = replay_log(&path, &mut state, snapshot_revision, last)?;
        if !last && max_rev <= snapshot_revision {
            obsolete.push(path);
        }
    }
    let log_path = match logs.last() {
        Some(&start) => log_path(dir, start),
        None => {
            let path = log_path(dir, state.revision + 1);
            File::create(&path)?;
            sync_dir(dir)?;
            path
        }
    };
    let log = OpenOptions::new().append(true).open(&log_path)?;
    let log_bytes = log.metadata()?.len();
    if !obsolete.is_empty() || snaps.len() > 1 {
        for path in obsolete {
            fs::remove_file(path)?;
        }
        for &rev in &snaps[..snaps.len().saturating_sub(1)] {
            fs::remove_file(snapshot_path(dir, rev))?;
        }
        sync_dir(dir)?;
    }
    Ok(Recovered {
        state,
        log,
        log_path,
        log_bytes,
    })
}

/// Creates the empty log whose first record will be `start`, durably.
pub(crate) fn create_log(dir: &Path, start: i64) -> io::Result<(File, PathBuf)> {
    let path = log_path(dir, start);
    let log = OpenOptions::new().create(true).append(true).open(&path)?;
    sync_dir(dir)?;
    Ok((log, path))
}

/// Writes a snapshot of `entries` at `revision` crash-safely: temp file, fsync, rename,
/// fsync directory. Until the rename lands, recovery simply replays the older logs.
pub(crate) fn write_snapshot(dir: &Path, revision: i64, entries: &[KeyValue]) -> io::Result<()> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut buf = Vec::with_capacity(1 << 17);
    record::encode_snapshot_header(&mut buf, revision, entries.len() as u64);
    for kv in entries {
        record::encode_snapshot_entry(
            &mut buf,
            &kv.key,
            &kv.value,
            kv.create_revision,
            kv.mod_revision,
        );
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, snapshot_path(dir, revision))?;
    sync_dir(dir)
}

/// Deletes the logs a snapshot at `revision` covers (those starting at or below it) and
/// every older snapshot.
pub(crate) fn remove_obsolete(dir: &Path, revision: i64) -> io::Result<()> {
    let (snaps, logs) = list(dir)?;
    for start in logs.into_iter().filter(|&s| s <= revision) {
        fs::remove_file(log_path(dir, start))?;
    }
    for rev in snaps.into_iter().filter(|&r| r < revision) {
        fs::remove_file(snapshot_path(dir, rev))?;
    }
    sync_dir(dir)
}

/// Replays one log into `state`; returns the highest revision it held (0 when empty).
fn replay_log(
    path: &Path,
    state: &mut State,
    snapshot_revision: i64,
    last: bool,
) -> Result<i64, StoreError> {
    let data = fs::read(path)?;
    let corrupt = |offset: usize, reason: &str| {
        StoreError::Corrupt(format!("{} at offset {offset}: {reason}", path.display()))
    };
    let mut max_rev = 0;
    for frame in Frames::new(&data) {
        let (offset, payload) = match frame {
            Frame::Record { offset, payload } => (offset, payload),
            Frame::Torn { offset } if last => {
                tracing::warn!(path = %path.display(), offset, dropped = data.len() - offset, "truncating torn log tail");
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                break;
            }
            Frame::Torn { offset } => {
                return Err(corrupt(offset, "torn record in a log that is not the last"))
            }
            Frame::Corrupt { offset, reason } => return Err(corrupt(offset, reason)),
        };
        let rec =
            record::decode_log(payload).ok_or_else(|| corrupt(offset, "malformed log record"))?;
        max_rev = rec.revision;
        if rec.revision <= snapshot_revision {
            continue;
        }
        if rec.revision != state.revision + 1 {
            return Err(corrupt(offset, "revision out of sequence"));
        }
        let prev = state.kvs.get(&rec.key).cloned();
        let event = match rec.op {
            LogOp::Put => Event::Put {
                kv: KeyValue {
                    key: prev.as_ref().map_or(rec.key, |p| p.key.clone()),
                    value: rec.value,
                    create_revision: prev.as_ref().map_or(rec.revision, |p| p.create_revision),
                    mod_revision: rec.revision,
                },
                prev,
            },
            LogOp::Delete => Event::Delete {
                prev: prev.ok_or_else(|| corrupt(offset, "delete of a missing key"))?,
                revision: rec.revision,
            },
        };
        state.apply(event);
    }
    Ok(max_rev)
}

fn read_snapshot(path: &Path, history: usize) -> Result<State, StoreError> {
    let data = fs::read(path)?;
    let corrupt = |offset: usize, reason: &str| {
        StoreError::Corrupt(format!("{} at offset {offset}: {reason}", path.display()))
    };
    let mut frames = Frames::new(&data);
    let (revision, count) = match frames.next() {
        Some(Frame::Record { payload, .. }) => record::decode_snapshot_header(payload)
            .ok_or_else(|| corrupt(0, "bad snapshot header"))?,
        _ => return Err(corrupt(0, "missing snapshot header")),
    };
    let mut state = State::new(revision, history);
    let mut seen = 0u64;
    for frame in frames {
        let (offset, payload) = match frame {
            Frame::Record { offset, payload } => (offset, payload),
            Frame::Torn { offset } | Frame::Corrupt { offset, .. } => {
                return Err(corrupt(offset, "damaged snapshot entry"))
            }
        };
        let e = record::decode_snapshot_entry(payload)
            .ok_or_else(|| corrupt(offset, "malformed snapshot entry"))?;
        state.load(KeyValue {
            key: e.key,
            value: e.value,
            create_revision: e.create_revision,
            mod_revision: e.mod_revision,
        });
        seen += 1;
    }
    if seen != count {
        return Err(corrupt(
            data.len(),
            "snapshot entry count does not match its header",
        ));
    }
    Ok(state)
}

/// Revisions of the snapshots and start revisions of the logs in `dir`, each ascending.
fn list(dir: &Path) -> io::Result<(Vec<i64>, Vec<i64>)> {
    let mut snaps = Vec::new();
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(rev) = parse_name(name, "snap-", ".snap") {
            snaps.push(rev);
        } else if let Some(rev) = parse_name(name, "wal-", ".log") {
            logs.push(rev);
        }
    }
    snaps.sort_unstable();
    logs.sort_unstable();
    Ok((snaps, logs))
}

fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<i64> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

fn snapshot_path(dir: &Path, revision: i64) -> PathBuf {
    dir.join(format!("snap-{revision:020}.snap"))
}

fn log_path(dir: &Path, start: i64) -> PathBuf {
    dir.join(format!("wal-{start:020}.log"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn write_log(dir: &Path, start: i64, records: &[(LogOp, &str)]) {
        let mut buf = Vec::new();
        for (i, (op, key)) in records.iter().enumerate() {
            record::encode_log(&mut buf, *op, start + i as i64, key, b"v");
        }
        fs::write(log_path(dir, start), buf).expect("write log");
    }

    #[test]
    fn crash_after_log_switch_before_snapshot_replays_both_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_log(
            dir.path(),
            1,
            &[(LogOp::Put, "/a"), (LogOp::Put, "/b"), (LogOp::Put, "/a")],
        );
        write_log(dir.path(), 4, &[(LogOp::Delete, "/b")]);
        let r = recover(dir.path(), 100).expect("recovers");
        assert_eq!(r.state.revision, 4);
        assert_eq!(r.state.kvs.keys().map(|k| &**k).collect::<Vec<_>>(), ["/a"]);
        assert_eq!(r.state.kvs["/a"].create_revision, 1);
        assert_eq!(r.log_path, log_path(dir.path(), 4));
        assert!(
            log_path(dir.path(), 1).exists(),
            "a log not covered by a snapshot is kept"
        );
    }

    #[test]
    fn crash_after_snapshot_before_cleanup_skips_covered_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_log(dir.path(), 1, &[(LogOp::Put, "/a"), (LogOp::Put, "/b")]);
        let kv = |k: &str, rev| KeyValue {
            key: Arc::from(k),
            value: bytes::Bytes::from_static(b"v"),
            create_revision: rev,
            mod_revision: rev,
        };
        write_snapshot(dir.path(), 2, &[kv("/a", 1), kv("/b", 2)]).expect("snapshot");
        write_log(dir.path(), 3, &[(LogOp::Put, "/c")]);
        let r = recover(dir.path(), 100).expect("recovers");
        assert_eq!(r.state.revision, 3);
        assert_eq!(r.state.kvs.len(), 3);
        assert!(!log_path(dir.path(), 1).exists(), "covered log is deleted");
    }

    #[test]
    fn gap_in_revisions_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_log(dir.path(), 1, &[(LogOp::Put, "/a")]);
        write_log(dir.path(), 5, &[(LogOp::Put, "/b")]);
        assert!(matches!(
            recover(dir.path(), 100),
            Err(StoreError::Corrupt(_))
        ));
    }
}
