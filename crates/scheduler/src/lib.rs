//! The Gantry scheduler: assigns pending pods to nodes.
//!
//! Decisions are pure ([`Framework::schedule_one`] over a [`Snapshot`]); effects (binding,
//! events, pod status) live only in [`Scheduler`]. See `docs/dev/scheduling.md`.

mod config;
mod effects;
pub mod framework;
pub mod plugins;
pub mod queue;
pub mod registry;
pub mod resources;
mod scheduler;
#[cfg(test)]
mod testing;

use k8s_openapi::api::core::v1::Pod;

pub use config::{SchedulerConfig, ScoringStrategy, DEFAULT_SCHEDULER_NAME};
pub use framework::{FitError, Framework, NodeInfo, Rejection, Snapshot};
pub use scheduler::{Scheduler, SchedulerError};

/// Chooses a node for `pod` with the default profile (LeastAllocated scoring).
pub fn schedule_one(pod: &Pod, snapshot: &Snapshot) -> Result<String, FitError> {
    registry::framework(&SchedulerConfig::default()).schedule_one(pod, snapshot)
}
