//! The scheduling queue: pending pods in FIFO order, with back-off and an unschedulable set.
//! Sans-IO: the caller passes the time, so every transition is unit-tested without sleeping.
//!
//! A pod that did not fit waits in the unschedulable set until a cluster event that may help
//! arrives (`on_cluster_event`), then becomes eligible when its back-off (1 s doubling to
//! 10 s by default) has expired. If an event arrived while the pod was being scheduled, it goes
//! straight to back-off, so the event is not lost. After `unschedulable_timeout` it is retried
//! regardless, in case an event was missed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// `namespace/name` of a pod.
pub type PodKey = String;

#[derive(Debug)]
pub struct SchedulingQueue {
    initial_backoff: Duration,
    max_backoff: Duration,
    unschedulable_timeout: Duration,
    /// Ready to be scheduled, oldest first.
    active: VecDeque<PodKey>,
    entries: HashMap<PodKey, Entry>,
    /// Incremented on every cluster event.
    events: u64,
    /// Source of `Entry::seq`.
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    attempts: u32,
    state: State,
    /// Insertion order, to keep back-off promotions FIFO among equal deadlines.
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    /// Popped; `events` was this value when the attempt began.
    InFlight {
        events_at_pop: u64,
    },
    /// Eligible again at `until`.
    Backoff {
        until: Instant,
    },
    /// Waiting for a cluster event; then back-off until `backoff_until`.
    Unschedulable {
        since: Instant,
        backoff_until: Instant,
    },
}

impl SchedulingQueue {
    pub fn new(
        initial_backoff: Duration,
        max_backoff: Duration,
        unschedulable_timeout: Duration,
    ) -> SchedulingQueue {
        SchedulingQueue {
            initial_backoff,
            max_backoff,
            unschedulable_timeout,
            active: VecDeque::new(),
            entries: HashMap::new(),
            events: 0,
            seq: 0,
        }
    }

    /// Adds a newly seen pending pod; a pod already known keeps its place and state.
    pub fn add(&mut self, key: &str) {
        if self.entries.contains_key(key) {
            return;
        }
        let seq = self.next_seq();
        self.entries.insert(
            key.to_string(),
            Entry {
                attempts: 0,
                state: State::Active,
                seq,
            },
        );
        self.active.push_back(key.to_string());
    }

    /// Forgets a pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.active.retain(|k| k != key);
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next pod to schedule: promotes expired back-offs (and timed-out unschedulable pods)
    /// to the active queue, then takes the oldest active pod.
    pub fn pop(&mut self, now: Instant) -> Option<PodKey> {
        let mut due: Vec<(u64, PodKey)> = self
            .entries
            .iter()
            .filter(|(_, e)| match e.state {
                State::Backoff { until } => until <= now,
                State::Unschedulable { since, .. } => since + self.unschedulable_timeout <= now,
                _ => false,
            })
            .map(|(k, e)| (e.seq, k.clone()))
            .collect();
        due.sort();
        for (_, key) in due {
            if let Some(e) = self.entries.get_mut(&key) {
                e.state = State::Active;
                self.active.push_back(key);
            }
        }
        let key = self.active.pop_front()?;
        if let Some(e) = self.entries.get_mut(&key) {
            e.state = State::InFlight {
                events_at_pop: self.events,
            };
        }
        Some(key)
    }

    /// The pod did not fit: park it until a cluster event, with back-off.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let events = self.events;
        let backoff = self.bump_backoff(key);
        let seq = self.next_seq();
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.seq = seq;
        let until = now + backoff;
        e.state = match e.state {
            State::InFlight { events_at_pop } if events_at_pop != events => {
                State::Backoff { until }
            }
            _ => State::Unschedulable {
                since: now,
                backoff_until: until,
            },
        };
    }

    /// The attempt failed for a transient reason (API error): retry after back-off.
    pub fn backoff(&mut self, key: &str, now: Instant) {
        let backoff = self.bump_backoff(key);
        let seq = self.next_seq();
        if let Some(e) = self.entries.get_mut(key) {
            e.seq = seq;
            e.state = State::Backoff {
                until: now + backoff,
            };
        }
    }

    /// Something changed that may let unschedulable pods fit (a node added or updated, an
    /// assigned pod deleted or finished).
    pub fn on_cluster_event(&mut self) {
        self.events += 1;
        for e in self.entries.values_mut() {
            if let State::Unschedulable { backoff_until, .. } = e.state {
                e.state = State::Backoff {
                    until: backoff_until,
                };
            }
        }
    }

    /// When `pop` may next return something new, if nothing is active now.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e.state {
                State::Backoff { until } => Some(until),
                State::Unschedulable { since, .. } => Some(since + self.unschedulable_timeout),
                _ => None,
            })
            .min()
    }

    fn bump_backoff(&mut self, key: &str) -> Duration {
        let Some(e) = self.entries.get_mut(key) else {
            return self.initial_backoff;
        };
        e.attempts = e.attempts.saturating_add(1);
        let doublings = e.attempts.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn fifo_and_no_duplicates() {
        let mut q = queue();
        let now = Instant::now();
        q.add("ns/a");
        q.add("ns/b");
        q.add("ns/a");
        assert_eq!(q.pop(now).as_deref(), Some("ns/a"));
        assert_eq!(q.pop(now).as_deref(), Some("ns/b"));
        assert_eq!(q.pop(now), None);
        assert_eq!(q.len(), 2, "in-flight pods stay known until removed");
        q.remove("ns/a");
        q.remove("ns/b");
        assert!(q.is_empty());
    }

    #[test]
    fn unschedulable_waits_for_an_event_and_its_backoff() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("ns/a");
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/a", t0);
        assert_eq!(q.pop(t0 + secs(5)), None, "no event yet");
        q.on_cluster_event();
        assert_eq!(
            q.pop(t0 + Duration::from_millis(500)),
            None,
            "back-off of 1 s"
        );
        assert_eq!(q.pop(t0 + secs(1)).as_deref(), Some("ns/a"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut q = queue();
        let mut now = Instant::now();
        q.add("ns/a");
        let mut seen = Vec::new();
        for _ in 0..6 {
            assert!(q.pop(now).is_some());
            q.backoff("ns/a", now);
            let deadline = q.next_deadline().expect("deadline");
            seen.push((deadline - now).as_secs());
            now = deadline;
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn an_event_during_the_attempt_is_not_lost() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("ns/a");
        assert!(q.pop(t0).is_some());
        q.on_cluster_event();
        q.unschedulable("ns/a", t0);
        assert_eq!(q.pop(t0 + secs(1)).as_deref(), Some("ns/a"));
    }

    #[test]
    fn unschedulable_pods_are_flushed_after_the_timeout() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("ns/a");
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/a", t0);
        assert_eq!(q.next_deadline(), Some(t0 + secs(60)));
        assert_eq!(q.pop(t0 + secs(59)), None);
        assert_eq!(q.pop(t0 + secs(60)).as_deref(), Some("ns/a"));
    }

    #[test]
    fn promoted_pods_queue_behind_active_ones_in_failure_order() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("ns/a");
        q.add("ns/b");
        assert!(q.pop(t0).is_some());
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/b", t0);
        q.unschedulable("ns/a", t0);
        q.add("ns/c");
        q.on_cluster_event();
        let later = t0 + secs(1);
        assert_eq!(q.pop(later).as_deref(), Some("ns/c"));
        assert_eq!(q.pop(later).as_deref(), Some("ns/b"));
        assert_eq!(q.pop(later).as_deref(), Some("ns/a"));
    }
}
