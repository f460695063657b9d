//! Scheduler settings: the profile's name (matched against `spec.schedulerName`), the scoring
//! strategy, and the queue's back-off.

use std::time::Duration;

/// How NodeResourcesFit ranks feasible nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScoringStrategy {
    /// Prefer nodes with the most free CPU and memory (Kubernetes' default; spreads load).
    #[default]
    LeastAllocated,
    /// Prefer the fullest nodes that still fit (packs machines).
    MostAllocated,
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Pods whose `spec.schedulerName` equals this are ours; also the event source component.
    pub name: String,
    pub scoring: ScoringStrategy,
    /// Back-off after the first failed attempt; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// An unschedulable pod is retried after this long even if no cluster event arrived.
    pub unschedulable_timeout: Duration,
}

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            name: DEFAULT_SCHEDULER_NAME.to_string(),
            scoring: ScoringStrategy::default(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_timeout: Duration::from_secs(60),
        }
    }
}
