//! A revisioned key-value store with watch, shaped like etcd's model so that an etcd backend
//! fits behind the same trait: one global revision that every write increments, keys that
//! remember the revision that created and last modified them, compare-and-swap on that
//! revision, range reads by prefix, and watches of a prefix from any retained revision.
//!
//! Invariant: a write future resolves only after the write is durable (fsync'd); a watcher
//! sees events in revision order with no gaps from its start revision.

use std::sync::Arc;

use bytes::Bytes;

mod wal;

pub use wal::{WalStore, WalStoreConfig};

/// A stored value with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Arc<str>,
    pub value: Bytes,
    /// Revision of the write that created this key (since it last did not exist).
    pub create_revision: i64,
    /// Revision of the write that last changed this key.
    pub mod_revision: i64,
}

/// One change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A create (`prev` is `None`) or update.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// A delete at `revision`; `prev` is the value that was deleted.
    Delete { prev: KeyValue, revision: i64 },
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// The result of a range read.
#[derive(Debug, Clone)]
pub struct RangeResult {
    /// Matching pairs in key order.
    pub kvs: Vec<KeyValue>,
    /// The store revision the read observed.
    pub revision: i64,
    /// True when `limit` cut the result short.
    pub more: bool,
}

/// Errors a store operation returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} was modified at revision {actual}, expected {expected}")]
    Conflict {
        key: String,
        expected: i64,
        actual: i64,
    },
    #[error("revision {requested} has been compacted; oldest retained is {compacted}")]
    Compacted { requested: i64, compacted: i64 },
    #[error("revision {requested} is in the future; current revision is {current}")]
    FutureRevision { requested: i64, current: i64 },
    #[error(
        "key {key} with value of {size} bytes exceeds the store's record limit of {limit} bytes"
    )]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    #[error("store I/O failed")]
    Io(#[from] std::io::Error),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("store is closed")]
    Closed,
}

/// A stream of watch events. Dropping it cancels the watch.
pub struct Watch {
    /// Events in revision order. The channel closes when the store shuts down or the watcher
    /// falls too far behind (then the caller re-lists).
    pub events: tokio::sync::mpsc::Receiver<Event>,
}

/// etcd-shaped storage. Implementations must be cheap to share across tasks.
#[allow(async_fn_in_trait)]
pub trait Store: Send + Sync + 'static {
    /// The revision of the latest write.
    fn current_revision(&self) -> i64;

    /// The oldest revision a watch may start after (everything at or below it is compacted).
    fn compacted_revision(&self) -> i64;

    /// One key.
    fn get(&self, key: &str) -> Option<KeyValue>;

    /// Keys starting with `prefix`, in order, strictly after `start_after` when given, at most
    /// `limit` (0 = unlimited).
    fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> RangeResult;

    /// Number of keys starting with `prefix`.
    fn count(&self, prefix: &str) -> usize;

    /// Creates `key`; fails with `AlreadyExists` if present. Returns the new revision.
    fn create(
        &self,
        key: &str,
        value: Bytes,
    ) -> impl std::future::Future<Output = Result<KeyValue, StoreError>> + Send;

    /// Replaces `key`. With `expected` set, fails with `Conflict` unless the key's
    /// `mod_revision` equals it. Fails with `NotFound` when absent.
    fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<i64>,
    ) -> impl std::future::Future<Output = Result<KeyValue, StoreError>> + Send;

    /// Deletes `key`, with the same compare-and-swap rule. Returns the deleted pair and the
    /// revision of the delete.
    fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
    ) -> impl std::future::Future<Output = Result<(KeyValue, i64), StoreError>> + Send;

    /// Watches keys starting with `prefix`, delivering every change with revision greater
    /// than `after`. Fails with `Compacted` when `after` is older than the retained history.
    fn watch(&self, prefix: &str, after: i64) -> Result<Watch, StoreError>;

    /// Forgets history at or below `revision` (watches can no longer start there).
    fn compact(&self, revision: i64);
}
