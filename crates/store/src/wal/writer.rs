//! The single writer thread: group commit, CAS evaluation, log appends, and starting
//! snapshots (written on a helper thread while the writer appends to a fresh log).
//!
//! Invariant: a reply is sent only after the batch holding its record was fdatasync'd and
//! applied to memory, so an acknowledged write survives a crash and is visible to readers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::files::{self, Recovered};
use super::record::{self, LogOp, MAX_BATCH_BYTES};
use super::{read, write, Shared, WalStoreConfig};
use crate::{Event, KeyValue, StoreError};

/// Largest key plus value accepted, leaving room in a record for its fixed fields.
const MAX_VALUE_BYTES: usize = record::MAX_RECORD_BYTES - 64;
/// Most requests folded into one fsync.
const MAX_BATCH_OPS: usize = 8192;

/// A write asked of the writer.
pub(crate) enum Op {
    Create {
        key: Arc<str>,
        value: Bytes,
    },
    Update {
        key: Arc<str>,
        value: Bytes,
        expected: Option<i64>,
    },
    Delete {
        key: Arc<str>,
        expected: Option<i64>,
    },
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Event, StoreError>>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    config: WalStoreConfig,
    log: File,
    log_path: PathBuf,
    log_bytes: u64,
    /// After a failed snapshot, do not retry before the log reaches this size.
    snapshot_retry_at: u64,
    /// The snapshot being written in the background, at most one at a time.
    snapshot_job: Option<JoinHandle<io::Result<()>>>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, config: WalStoreConfig, recovered: Recovered) -> Self {
        Writer {
            shared,
            config,
            log: recovered.log,
            log_path: recovered.log_path,
            log_bytes: recovered.log_bytes,
            snapshot_retry_at: 0,
            snapshot_job: None,
        }
    }

    /// Serves requests until every sender is gone or the log fails.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut bytes = first.op.size();
            let mut batch = vec![first];
            // Group commit: everything that queued up while the previous fsync ran goes
            // into this one.
            while self.config.group_commit && batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES
            {
                match rx.try_recv() {
                    Ok(req) => {
                        bytes += req.op.size();
                        batch.push(req);
                    }
                    Err(_) => break,
                }
            }
            if let Err(err) = self.commit(batch) {
                // The log's state on disk is unknown after a failed write or fsync; stop
                // accepting writes rather than acknowledge anything on top of it.
                tracing::error!(error = %err, path = %self.log_path.display(), "store log write failed; store is now closed");
                break;
            }
            self.maybe_snapshot();
        }
        write(&self.shared.state).close_watchers();
        // Leave the directory alone once the store is closed (the lock goes with it).
        self.finish_snapshot(true);
    }

    fn commit(&mut self, batch: Vec<Request>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let state = read(&self.shared.state);
            // Keys written earlier in this batch, so later CAS checks see them.
            let mut overlay: HashMap<Arc<str>, Option<KeyValue>> = HashMap::new();
            let mut revision = state.revision;
            for req in batch {
                let key = req.op.key();
                let current = match overlay.get(key) {
                    Some(kv) => kv.clone(),
                    None => state.kvs.get(key).cloned(),
                };
                let result = plan(req.op, current, revision + 1);
                if let Ok(event) = &result {
                    revision += 1;
                    match event {
                        Event::Put { kv, .. } => {
                            record::encode_log(&mut buf, LogOp::Put, revision, &kv.key, &kv.value);
                            overlay.insert(kv.key.clone(), Some(kv.clone()));
                        }
                        Event::Delete { prev, .. } => {
                            record::encode_log(&mut buf, LogOp::Delete, revision, &prev.key, &[]);
                            overlay.insert(prev.key.clone(), None);
                        }
                    }
                }
                outcomes.push((req.reply, result));
            }
        }
        if !buf.is_empty() {
            if let Err(err) = self.log.write_all(&buf).and_then(|()| self.log.sync_data()) {
                for (reply, result) in outcomes {
                    let _ = reply.send(result.and(Err(StoreError::Io(io::Error::new(
                        err.kind(),
                        err.to_string(),
                    )))));
                }
                return Err(err);
            }
            self.log_bytes += buf.len() as u64;
            self.shared
                .syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut state = write(&self.shared.state);
            for event in outcomes.iter().filter_map(|(_, r)| r.as_ref().ok()) {
                state.apply(event.clone());
            }
        }
        for (reply, result) in outcomes {
            // The caller may have stopped waiting; the write stands regardless.
            let _ = reply.send(result);
        }
        Ok(())
    }

    /// Starts a snapshot once the log is several times larger than the live data: switches
    /// to a fresh log at once, then writes the snapshot on another thread so writes go on.
    fn maybe_snapshot(&mut self) {
        if !self.finish_snapshot(false) {
            return;
        }
        let live = read(&self.shared.state).live_bytes;
        if self.log_bytes < self.config.snapshot_min_log_bytes
            || self.log_bytes < live.saturating_mul(self.config.snapshot_ratio)
            || self.log_bytes < self.snapshot_retry_at
        {
            return;
        }
        // Only this thread writes, so this copy is consistent; values are reference-counted,
        // so it is cheap.
        let (revision, entries) = {
            let state = read(&self.shared.state);
            (
                state.revision,
                state.kvs.values().cloned().collect::<Vec<_>>(),
            )
        };
        let (log, log_path) = match files::create_log(&self.config.dir, revision + 1) {
            Ok(created) => created,
            Err(err) => {
                tracing::warn!(error = %err, "store log switch failed; will retry later");
                self.snapshot_retry_at = self.log_bytes.saturating_mul(2);
                return;
            }
        };
        let old_log_bytes = std::mem::replace(&mut self.log_bytes, 0);
        self.log = log;
        self.log_path = log_path;
        self.snapshot_retry_at = 0;
        let dir = self.config.dir.clone();
        let job = std::thread::Builder::new()
            .name("gantry-store-snapshot".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                files::write_snapshot(&dir, revision, &entries)?;
                files::remove_obsolete(&dir, revision)?;
                tracing::info!(
                    revision,
                    keys = entries.len(),
                    old_log_bytes,
                    millis = started.elapsed().as_millis() as u64,
                    "store snapshot written"
                );
                Ok(())
            });
        match job {
            Ok(job) => self.snapshot_job = Some(job),
            Err(err) => tracing::warn!(error = %err, "store snapshot thread failed to start"),
        }
    }

    /// Reaps a finished snapshot job (or waits for it when `wait`); true when none is running.
    fn finish_snapshot(&mut self, wait: bool) -> bool {
        match &self.snapshot_job {
            None => return true,
            Some(job) if !wait && !job.is_finished() => return false,
            Some(_) => {}
        }
        if let Some(job) = self.snapshot_job.take() {
            match job.join() {
                Ok(Ok(())) => {}
                // The older logs are still there, so nothing is lost; the next snapshot
                // retries once the new log has grown enough.
                Ok(Err(err)) => tracing::warn!(error = %err, "store snapshot failed"),
                Err(_) => tracing::warn!("store snapshot thread panicked"),
            }
        }
        true
    }
}

impl Op {
    fn key(&self) -> &Arc<str> {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    fn size(&self) -> usize {
        match self {
            Op::Create { key, value } | Op::Update { key, value, .. } => key.len() + value.len(),
            Op::Delete { key, .. } => key.len(),
        }
    }
}

/// Decides the outcome of `op` against the key's `current` value, as the write at `revision`.
fn plan(op: Op, current: Option<KeyValue>, revision: i64) -> Result<Event, StoreError> {
    let check = |key: &str, current: Option<KeyValue>, expected: Option<i64>| match current {
        None => Err(StoreError::NotFound {
            key: key.to_owned(),
        }),
        Some(cur) => match expected {
            Some(expected) if expected != cur.mod_revision => Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                actual: cur.mod_revision,
            }),
            _ => Ok(cur),
        },
    };
    if let Op::Create { key, value } | Op::Update { key, value, .. } = &op {
        // A record recovery would reject must never be written.
        let size = key.len() + value.len();
        if size > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                size,
                limit: MAX_VALUE_BYTES,
            });
        }
    }
    match op {
        Op::Create { key, value } => match current {
            Some(_) => Err(StoreError::AlreadyExists {
                key: key.to_string(),
            }),
            None => Ok(Event::Put {
                kv: KeyValue {
                    key,
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            }),
        },
        Op::Update {
            key,
            value,
            expected,
        } => {
            let prev = check(&key, current, expected)?;
            let kv = KeyValue {
                key: prev.key.clone(),
                value,
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            Ok(Event::Put {
                kv,
                prev: Some(prev),
            })
        }
        Op::Delete { key, expected } => {
            let prev = check(&key, current, expected)?;
            Ok(Event::Delete { prev, revision })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: i64, modified: i64) -> KeyValue {
        KeyValue {
            key: Arc::from(key),
            value: Bytes::from_static(b"v"),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn create_of_existing_key_is_already_exists() {
        let op = Op::Create {
            key: Arc::from("/k"),
            value: Bytes::new(),
        };
        assert!(matches!(
            plan(op, Some(kv("/k", 1, 1)), 2),
            Err(StoreError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn update_keeps_create_revision_and_checks_expected() {
        let op = Op::Update {
            key: Arc::from("/k"),
            value: Bytes::new(),
            expected: Some(3),
        };
        let Ok(Event::Put { kv: new, prev }) = plan(op, Some(kv("/k", 1, 3)), 7) else {
            panic!("update failed")
        };
        assert_eq!((new.create_revision, new.mod_revision), (1, 7));
        assert_eq!(prev.map(|p| p.mod_revision), Some(3));
        let op = Op::Update {
            key: Arc::from("/k"),
            value: Bytes::new(),
            expected: Some(2),
        };
        assert!(matches!(
            plan(op, Some(kv("/k", 1, 3)), 7),
            Err(StoreError::Conflict {
                expected: 2,
                actual: 3,
                ..
            })
        ));
    }

    #[test]
    fn oversized_value_is_refused_before_it_reaches_the_log() {
        let op = Op::Create {
            key: Arc::from("/k"),
            value: Bytes::from(vec![0u8; MAX_VALUE_BYTES]),
        };
        assert!(matches!(
            plan(op, None, 1),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn update_or_delete_of_missing_key_is_not_found() {
        let op = Op::Update {
            key: Arc::from("/k"),
            value: Bytes::new(),
            expected: None,
        };
        assert!(matches!(
            plan(op, None, 1),
            Err(StoreError::NotFound { .. })
        ));
        let op = Op::Delete {
            key: Arc::from("/k"),
            expected: None,
        };
        assert!(matches!(
            plan(op, None, 1),
            Err(StoreError::NotFound { .. })
        ));
    }
}
