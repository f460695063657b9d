//! What a pod worker remembers about each container, and the pure decisions over it: which
//! containers to start now ([`plan`]) and when a dead one may restart ([`on_exit`]).
//! One thing to know: a container's *current* instance stays recorded after it exits, until
//! its replacement starts; `lastState` comes from it then.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::backoff::next_backoff;
use crate::config::BackoffConfig;
use crate::runtime::{ContainerId, ContainerState};

/// One instance of a container as the runtime last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: ContainerId,
    pub state: ContainerState,
    /// Its exit was already accounted for (back-off scheduled).
    pub exit_handled: bool,
}

/// A reason the container is waiting, other than being created or backing off a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Everything the worker knows about one container of its pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRecord {
    pub image_id: Option<String>,
    pub current: Option<Instance>,
    pub restart_count: u32,
    /// The termination of the instance before `current` (`lastState`).
    pub last_terminated: Option<ContainerState>,
    /// The back-off to apply after the next crash.
    pub backoff: Option<Duration>,
    /// A restart is allowed from this time; with the wait that set it (for messages).
    pub restart_at: Option<(Timestamp, Duration)>,
    pub waiting: Option<Waiting>,
    pub pull_failures: u32,
    pub pull_retry_at: Option<Timestamp>,
}

impl ContainerRecord {
    /// True while its current instance runs.
    pub fn running(&self) -> bool {
        matches!(
            self.current.as_ref().map(|i| &i.state),
            Some(ContainerState::Running { .. } | ContainerState::Created)
        )
    }

    /// The exit code of its current instance, when it has exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.current.as_ref().map(|i| &i.state) {
            Some(ContainerState::Exited { exit_code, .. }) => Some(*exit_code),
            _ => None,
        }
    }

    /// True when nothing (back-off of a crash or of a pull) holds a start back at `now`.
    pub fn may_start(&self, now: Timestamp) -> bool {
        self.restart_at.is_none_or(|(t, _)| t <= now) && self.pull_retry_at.is_none_or(|t| t <= now)
    }

    /// True while a crash back-off delays the restart at `now`.
    pub fn in_crash_backoff(&self, now: Timestamp) -> bool {
        self.exit_code().is_some() && self.restart_at.is_some_and(|(t, _)| t > now)
    }
}

/// The pod's restart policy.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether a container that exited with `exit_code` is started again.
pub fn should_restart(policy: &str, exit_code: i32, init: bool) -> bool {
    match policy {
        "Never" => false,
        // Init containers that succeeded never run again; failed ones retry unless Never.
        _ if init => exit_code != 0,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// Accounts for an exit seen for the first time: schedules the restart with back-off.
pub fn on_exit(rec: &mut ContainerRecord, policy: &str, init: bool, cfg: &BackoffConfig) {
    let Some(inst) = rec.current.as_mut() else {
        return;
    };
    if inst.exit_handled {
        return;
    }
    let ContainerState::Exited {
        exit_code,
        started_at,
        finished_at,
        ..
    } = &inst.state
    else {
        return;
    };
    inst.exit_handled = true;
    if !should_restart(policy, *exit_code, init) {
        return;
    }
    let ran_for = started_at
        .and_then(|s| finished_at.duration_since(s).try_into().ok())
        .unwrap_or(Duration::ZERO);
    let (wait, next) = next_backoff(rec.backoff, ran_for, cfg);
    rec.backoff = Some(next);
    let at = finished_at.checked_add(wait).unwrap_or(*finished_at);
    rec.restart_at = Some((at, wait));
}

/// The containers to start now, as `(name, is_init)`: the first unfinished init container,
/// or once all init containers succeeded, every app container that should run and may.
pub fn plan(
    pod: &Pod,
    records: &BTreeMap<String, ContainerRecord>,
    now: Timestamp,
) -> Vec<(String, bool)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let policy = restart_policy(pod);
    let empty = ContainerRecord::default();
    for c in spec.init_containers.iter().flatten() {
        let rec = records.get(&c.name).unwrap_or(&empty);
        match &rec.current {
            None => {
                return start_if(rec, now, &c.name, true);
            }
            Some(inst) => match &inst.state {
                ContainerState::Exited { exit_code: 0, .. } => continue,
                ContainerState::Exited { exit_code, .. } => {
                    if should_restart(policy, *exit_code, true) {
                        return start_if(rec, now, &c.name, true);
                    }
                    return Vec::new();
                }
                _ => return Vec::new(),
            },
        }
    }
    let mut out = Vec::new();
    for c in &spec.containers {
        let rec = records.get(&c.name).unwrap_or(&empty);
        let wanted = match rec.exit_code() {
            _ if rec.current.is_none() => true,
            Some(code) => should_restart(policy, code, false),
            None => false,
        };
        if wanted {
            out.extend(start_if(rec, now, &c.name, false));
        }
    }
    out
}

fn start_if(rec: &ContainerRecord, now: Timestamp, name: &str, init: bool) -> Vec<(String, bool)> {
    if rec.may_start(now) {
        vec![(name.to_string(), init)]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("time")
    }

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(json!({"spec": {"restartPolicy": policy,
            "initContainers": [{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}],
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}}))
        .expect("pod")
    }

    fn exited(code: i32, start: i64, end: i64) -> Instance {
        Instance {
            id: ContainerId(format!("c{start}")),
            state: ContainerState::Exited {
                exit_code: code,
                reason: None,
                message: None,
                started_at: Some(at(start)),
                finished_at: at(end),
            },
            exit_handled: false,
        }
    }

    fn running(start: i64) -> Instance {
        Instance {
            id: ContainerId(format!("r{start}")),
            state: ContainerState::Running {
                started_at: at(start),
            },
            exit_handled: false,
        }
    }

    #[test]
    fn init_containers_run_one_at_a_time_before_apps() {
        let p = pod("Always");
        let mut recs = BTreeMap::new();
        assert_eq!(plan(&p, &recs, at(0)), vec![("i1".to_string(), true)]);
        recs.insert(
            "i1".to_string(),
            ContainerRecord {
                current: Some(running(0)),
                ..Default::default()
            },
        );
        assert!(plan(&p, &recs, at(1)).is_empty(), "wait for i1");
        recs.insert(
            "i1".to_string(),
            ContainerRecord {
                current: Some(exited(0, 0, 1)),
                ..Default::default()
            },
        );
        assert_eq!(plan(&p, &recs, at(2)), vec![("i2".to_string(), true)]);
        recs.insert(
            "i2".to_string(),
            ContainerRecord {
                current: Some(exited(0, 2, 3)),
                ..Default::default()
            },
        );
        assert_eq!(
            plan(&p, &recs, at(4)),
            vec![("a".to_string(), false), ("b".to_string(), false)]
        );
    }

    #[test]
    fn failed_init_blocks_apps_and_never_policy_gives_up() {
        let mut recs = BTreeMap::new();
        recs.insert(
            "i1".to_string(),
            ContainerRecord {
                current: Some(exited(1, 0, 1)),
                ..Default::default()
            },
        );
        assert!(plan(&pod("Never"), &recs, at(2)).is_empty());
        assert_eq!(
            plan(&pod("OnFailure"), &recs, at(2)),
            vec![("i1".to_string(), true)]
        );
    }

    #[test]
    fn crashes_restart_with_backoff_per_policy() {
        let cfg = BackoffConfig::default();
        let p: Pod =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}))
                .expect("pod");
        let mut rec = ContainerRecord {
            current: Some(exited(1, 0, 1)),
            ..Default::default()
        };
        on_exit(&mut rec, "Always", false, &cfg);
        assert_eq!(
            rec.restart_at,
            Some((at(1), Duration::ZERO)),
            "first restart is immediate"
        );
        rec.current = Some(exited(1, 2, 3));
        on_exit(&mut rec, "Always", false, &cfg);
        assert_eq!(rec.restart_at, Some((at(13), Duration::from_secs(10))));
        let recs = BTreeMap::from([("a".to_string(), rec.clone())]);
        assert!(plan(&p, &recs, at(5)).is_empty(), "backing off");
        assert!(rec.in_crash_backoff(at(5)));
        assert_eq!(plan(&p, &recs, at(13)), vec![("a".to_string(), false)]);
        on_exit(&mut rec, "Always", false, &cfg);
        assert_eq!(
            rec.restart_at,
            Some((at(13), Duration::from_secs(10))),
            "handled once"
        );

        assert!(!should_restart("OnFailure", 0, false));
        assert!(should_restart("OnFailure", 2, false));
        assert!(should_restart("Always", 0, false));
        assert!(!should_restart("Never", 1, false));
        assert!(!should_restart("Always", 0, true));
    }
}
