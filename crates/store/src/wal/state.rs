//! The in-memory half of the store: live keys, the current and compacted revisions, the ring
//! of recent events, and the registered watchers.
//!
//! Invariant: every revision in `(compacted, revision]` has exactly one event in `ring`, in
//! order; `apply` is the only way state changes, used by both recovery and the writer.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::{Event, KeyValue, RangeResult, StoreError};

/// Approximate per-key overhead counted into `live_bytes` (revisions, map node).
const KEY_OVERHEAD: u64 = 32;

/// A registered watch: events whose key starts with `prefix` go to `tx`.
pub(crate) struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Event>,
}

pub(crate) struct State {
    pub kvs: BTreeMap<Arc<str>, KeyValue>,
    pub revision: i64,
    pub compacted: i64,
    /// Bytes of live keys and values, to decide when the log is worth compacting.
    pub live_bytes: u64,
    ring: VecDeque<Event>,
    history: usize,
    watchers: Vec<Watcher>,
}

impl State {
    /// An empty store at `revision` with nothing retained before it.
    pub(crate) fn new(revision: i64, history: usize) -> Self {
        State {
            kvs: BTreeMap::new(),
            revision,
            compacted: revision,
            live_bytes: 0,
            ring: VecDeque::new(),
            history,
            watchers: Vec::new(),
        }
    }

    /// Inserts a key loaded from a snapshot (no event, no revision change).
    pub(crate) fn load(&mut self, kv: KeyValue) {
        self.live_bytes += kv_bytes(&kv);
        if let Some(old) = self.kvs.insert(kv.key.clone(), kv) {
            self.live_bytes -= kv_bytes(&old);
        }
    }

    /// Applies one event at `self.revision + 1`: updates keys, the ring and every watcher.
    /// A watcher whose channel is full or closed is dropped (its receiver sees the close).
    pub(crate) fn apply(&mut self, event: Event) {
        debug_assert_eq!(event.revision(), self.revision + 1);
        self.revision = event.revision();
        match &event {
            Event::Put { kv, prev } => {
                if let Some(prev) = prev {
                    self.live_bytes -= kv_bytes(prev);
                }
                self.live_bytes += kv_bytes(kv);
                self.kvs.insert(kv.key.clone(), kv.clone());
            }
            Event::Delete { prev, .. } => {
                self.live_bytes -= kv_bytes(prev);
                self.kvs.remove(&prev.key);
            }
        }
        // Publishing never blocks the writer: a slow watcher loses its channel instead. Also
        // forget watchers whose receiver is gone, even if their prefix sees no traffic.
        self.watchers.retain(|w| {
            !w.tx.is_closed()
                && (!event.key().starts_with(&w.prefix) || w.tx.try_send(event.clone()).is_ok())
        });
        self.ring.push_back(event);
        while self.ring.len() > self.history {
            if let Some(old) = self.ring.pop_front() {
                self.compacted = old.revision();
            }
        }
        if self.history == 0 {
            self.compacted = self.revision;
        }
    }

    /// Registers a watcher of `prefix` after replaying retained events newer than `after`.
    pub(crate) fn watch(
        &mut self,
        prefix: &str,
        after: i64,
        buffer: usize,
    ) -> Result<mpsc::Receiver<Event>, StoreError> {
        let after = after.max(0);
        if after > self.revision {
            return Err(StoreError::FutureRevision {
                requested: after,
                current: self.revision,
            });
        }
        if after < self.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: self.compacted,
            });
        }
        // Ring revisions are consecutive, so the events after `after` start at a known index.
        let skip = self.ring.len() - usize::try_from(self.revision - after).unwrap_or(0);
        let replay: Vec<&Event> = self
            .ring
            .iter()
            .skip(skip)
            .filter(|e| e.key().starts_with(prefix))
            .collect();
        let (tx, rx) = mpsc::channel(replay.len() + buffer.max(1));
        for event in replay {
            // Cannot fail: the channel was sized for the replay plus the live buffer.
            let _ = tx.try_send(event.clone());
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(rx)
    }

    /// Drops retained events at or below `revision`.
    pub(crate) fn compact(&mut self, revision: i64) {
        let revision = revision.min(self.revision);
        if revision <= self.compacted {
            return;
        }
        while self.ring.front().is_some_and(|e| e.revision() <= revision) {
            self.ring.pop_front();
        }
        self.compacted = revision;
    }

    pub(crate) fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> RangeResult {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut iter = self
            .kvs
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv);
        let kvs: Vec<KeyValue> = match limit {
            0 => iter.by_ref().cloned().collect(),
            n => iter.by_ref().take(n).cloned().collect(),
        };
        let more = iter.next().is_some();
        RangeResult {
            kvs,
            revision: self.revision,
            more,
        }
    }

    pub(crate) fn count(&self, prefix: &str) -> usize {
        self.kvs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Closes every watch (their receivers see the channel end).
    pub(crate) fn close_watchers(&mut self) {
        self.watchers.clear();
    }
}

fn kv_bytes(kv: &KeyValue) -> u64 {
    (kv.key.len() + kv.value.len()) as u64 + KEY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put(state: &mut State, key: &str, value: &str) {
        let rev = state.revision + 1;
        let prev = state.kvs.get(key).cloned();
        let kv = KeyValue {
            key: Arc::from(key),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
        };
        state.apply(Event::Put { kv, prev });
    }

    #[test]
    fn range_honours_prefix_start_after_and_limit() {
        let mut s = State::new(0, 10);
        for k in ["/a/1", "/a/2", "/a/3", "/b/1"] {
            put(&mut s, k, "v");
        }
        let keys = |r: &RangeResult| {
            r.kvs
                .iter()
                .map(|kv| kv.key.to_string())
                .collect::<Vec<_>>()
        };
        let r = s.range("/a/", None, 2);
        assert_eq!(keys(&r), ["/a/1", "/a/2"]);
        assert!(r.more);
        let r = s.range("/a/", Some("/a/2"), 2);
        assert_eq!(keys(&r), ["/a/3"]);
        assert!(!r.more);
        assert_eq!(r.revision, 4);
        assert_eq!(s.count("/a/"), 3);
        assert_eq!(s.count("/"), 4);
    }

    #[test]
    fn history_limit_moves_compacted_revision() {
        let mut s = State::new(0, 2);
        for i in 0..5 {
            put(&mut s, &format!("/k{i}"), "v");
        }
        assert_eq!(s.compacted, 3);
        assert!(matches!(
            s.watch("/", 2, 10),
            Err(StoreError::Compacted {
                requested: 2,
                compacted: 3
            })
        ));
        let mut rx = s.watch("/", 3, 10).expect("in history");
        assert_eq!(rx.try_recv().expect("replayed").revision(), 4);
        assert_eq!(rx.try_recv().expect("replayed").revision(), 5);
        assert!(matches!(
            s.watch("/", 6, 10),
            Err(StoreError::FutureRevision { .. })
        ));
    }

    #[test]
    fn cancelled_watches_are_forgotten_even_without_matching_events() {
        let mut s = State::new(0, 100);
        let quiet = s.watch("/quiet/", 0, 10).expect("watch");
        drop(quiet);
        let _busy = s.watch("/busy/", 0, 10).expect("watch");
        put(&mut s, "/busy/1", "v");
        assert_eq!(s.watchers.len(), 1);
    }

    #[test]
    fn slow_watcher_is_dropped_without_blocking() {
        let mut s = State::new(0, 100);
        let mut rx = s.watch("/", 0, 2).expect("watch");
        for i in 0..5 {
            put(&mut s, &format!("/k{i}"), "v");
        }
        assert_eq!(rx.try_recv().expect("buffered").revision(), 1);
        assert_eq!(rx.try_recv().expect("buffered").revision(), 2);
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
