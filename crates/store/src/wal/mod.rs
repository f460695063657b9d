//! The embedded durable backend: all live keys in memory, every write appended to a
//! CRC-checked write-ahead log by one writer thread that group-commits (one `fdatasync` per
//! batch), with periodic snapshots that bound the log and an in-memory ring for watches.
//!
//! Invariant: only the writer thread changes state, and it applies a batch to memory only
//! after the batch is durable; readers and watch registration take the state lock briefly.
//! See `docs/adr/0001-embedded-store.md` for the design and its measured numbers.

mod files;
mod record;
mod state;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::{Event, KeyValue, RangeResult, Store, StoreError, Watch};
use state::State;
use writer::{Op, Request, Writer};

/// Settings of a [`WalStore`].
#[derive(Debug, Clone)]
pub struct WalStoreConfig {
    /// Directory holding the log, snapshots and lock file; created if missing.
    pub dir: PathBuf,
    /// Watch history events kept in memory; watches may start at most this far back.
    pub history: usize,
    /// Live events buffered per watcher beyond its replay; a watcher that falls further
    /// behind is dropped (its channel closes).
    pub watch_buffer: usize,
    /// Batch all writes queued during an fsync into the next one. Off = one fsync per write
    /// (only useful to measure the difference).
    pub group_commit: bool,
    /// Snapshot when the log is larger than this many times the live data…
    pub snapshot_ratio: u64,
    /// …and larger than this many bytes.
    pub snapshot_min_log_bytes: u64,
}

impl WalStoreConfig {
    /// Defaults: 100 000 events of history, 10 000 buffered per watcher, group commit on,
    /// snapshot when the log exceeds both 4× the live data and 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalStoreConfig {
            dir: dir.into(),
            history: 100_000,
            watch_buffer: 10_000,
            group_commit: true,
            snapshot_ratio: 4,
            snapshot_min_log_bytes: 64 << 20,
        }
    }
}

/// The embedded write-ahead-log store. Dropping it stops the writer thread after it has
/// finished the writes already queued, and closes every watch.
pub struct WalStore {
    shared: Arc<Shared>,
    tx: Option<std_mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    _lock: std::fs::File,
}

/// State shared by the store handle and its writer thread.
pub(crate) struct Shared {
    state: RwLock<State>,
    watch_buffer: usize,
    /// Log fsyncs since open (one per committed batch).
    syncs: AtomicU64,
}

impl WalStore {
    /// Opens (or creates) the store in `config.dir`: takes the directory lock, recovers the
    /// snapshot and log (truncating a torn tail), and starts the writer thread.
    pub fn open(config: WalStoreConfig) -> Result<Arc<WalStore>, StoreError> {
        let lock = files::lock_dir(&config.dir)?;
        let mut recovered = files::recover(&config.dir, config.history)?;
        tracing::info!(
            dir = %config.dir.display(),
            revision = recovered.state.revision,
            keys = recovered.state.kvs.len(),
            "store opened"
        );
        // The writer gets the log; the recovered state moves behind the shared lock.
        let state = std::mem::replace(&mut recovered.state, State::new(0, 0));
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            watch_buffer: config.watch_buffer,
            syncs: AtomicU64::new(0),
        });
        let (tx, rx) = std_mpsc::channel();
        let writer = Writer::new(shared.clone(), config, recovered);
        let thread = std::thread::Builder::new()
            .name("gantry-store-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(WalStore {
            shared,
            tx: Some(tx),
            thread: Some(thread),
            _lock: lock,
        }))
    }

    /// Number of log fsyncs since open; with group commit one covers a whole batch, so
    /// writes divided by this is the mean batch size.
    pub fn log_syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    fn submit(
        &self,
        op: Op,
    ) -> impl std::future::Future<Output = Result<Event, StoreError>> + Send {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Request { op, reply }).is_ok());
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        }
    }
}

impl Drop for WalStore {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store for WalStore {
    fn current_revision(&self) -> i64 {
        read(&self.shared.state).revision
    }

    fn compacted_revision(&self) -> i64 {
        read(&self.shared.state).compacted
    }

    fn get(&self, key: &str) -> Option<KeyValue> {
        read(&self.shared.state).kvs.get(key).cloned()
    }

    fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> RangeResult {
        read(&self.shared.state).range(prefix, start_after, limit)
    }

    fn count(&self, prefix: &str) -> usize {
        read(&self.shared.state).count(prefix)
    }

    fn create(
        &self,
        key: &str,
        value: Bytes,
    ) -> impl std::future::Future<Output = Result<KeyValue, StoreError>> + Send {
        let done = self.submit(Op::Create {
            key: Arc::from(key),
            value,
        });
        async move { done.await.and_then(into_kv) }
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<i64>,
    ) -> impl std::future::Future<Output = Result<KeyValue, StoreError>> + Send {
        let done = self.submit(Op::Update {
            key: Arc::from(key),
            value,
            expected,
        });
        async move { done.await.and_then(into_kv) }
    }

    fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> impl std::future::Future<Output = Result<(KeyValue, i64), StoreError>> + Send {
        let done = self.submit(Op::Delete {
            key: Arc::from(key),
            expected,
        });
        async move {
            match done.await? {
                Event::Delete { prev, revision } => Ok((prev, revision)),
                Event::Put { .. } => Err(StoreError::Corrupt(
                    "writer answered a delete with a put".into(),
                )),
            }
        }
    }

    fn watch(&self, prefix: &str, after: i64) -> Result<Watch, StoreError> {
        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(StoreError::Closed);
        }
        let events = write(&self.shared.state).watch(prefix, after, self.shared.watch_buffer)?;
        Ok(Watch { events })
    }

    fn compact(&self, revision: i64) {
        write(&self.shared.state).compact(revision);
    }
}

fn into_kv(event: Event) -> Result<KeyValue, StoreError> {
    match event {
        Event::Put { kv, .. } => Ok(kv),
        Event::Delete { .. } => Err(StoreError::Corrupt(
            "writer answered a put with a delete".into(),
        )),
    }
}

/// Read access that survives a panicked holder: the state is only mutated by whole-event
/// `apply` calls, so it is consistent even then.
fn read(lock: &RwLock<State>) -> RwLockReadGuard<'_, State> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<State>) -> RwLockWriteGuard<'_, State> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
