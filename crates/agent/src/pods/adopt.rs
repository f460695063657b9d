//! Re-adoption after an agent restart: rebuilds a worker's container records from the
//! runtime's inventory (pure).
//! One thing to know: per container name only the instance with the highest restart count is
//! kept; every other instance is returned as surplus for the worker to stop and remove, so a
//! restart never leaves duplicates behind.

use std::collections::BTreeMap;

use super::state::{ContainerRecord, Instance};
use crate::runtime::{
    ContainerId, ContainerInfo, ContainerState, SandboxInfo, LABEL_CONTAINER_NAME,
    LABEL_RESTART_COUNT,
};

/// What a worker starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    pub sandbox: Option<SandboxInfo>,
    pub records: BTreeMap<String, ContainerRecord>,
    /// Containers to stop and remove (duplicates, unlabelled leftovers).
    pub surplus_containers: Vec<ContainerId>,
    /// Extra sandboxes of the same pod.
    pub surplus_sandboxes: Vec<SandboxInfo>,
}

/// Builds records from one pod's sandboxes and containers.
pub fn adopt(mut sandboxes: Vec<SandboxInfo>, containers: Vec<ContainerInfo>) -> Adopted {
    sandboxes.sort_by(|a, b| a.id.cmp(&b.id));
    let sandbox = if sandboxes.is_empty() {
        None
    } else {
        Some(sandboxes.remove(0))
    };
    let mut by_name: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
    let mut surplus_containers = Vec::new();
    for c in containers {
        let in_sandbox = sandbox.as_ref().is_some_and(|s| s.id == c.sandbox);
        match c.labels.get(LABEL_CONTAINER_NAME) {
            Some(name) if in_sandbox => by_name.entry(name.clone()).or_default().push(c),
            _ => surplus_containers.push(c.id),
        }
    }
    let mut records = BTreeMap::new();
    for (name, mut list) in by_name {
        // Highest restart count last; among equals a running one wins.
        list.sort_by_key(|c| {
            (
                restart_count(c),
                matches!(
                    c.state,
                    ContainerState::Running { .. } | ContainerState::Created
                ),
            )
        });
        let Some(latest) = list.pop() else {
            continue;
        };
        let previous = list
            .iter()
            .rev()
            .find(|c| matches!(c.state, ContainerState::Exited { .. }))
            .map(|c| c.state.clone());
        surplus_containers.extend(list.into_iter().map(|c| c.id));
        records.insert(
            name,
            ContainerRecord {
                image_id: Some(latest.image_id.clone()).filter(|s| !s.is_empty()),
                restart_count: restart_count(&latest),
                last_terminated: previous,
                current: Some(Instance {
                    id: latest.id,
                    state: latest.state,
                    exit_handled: false,
                }),
                ..ContainerRecord::default()
            },
        );
    }
    Adopted {
        sandbox,
        records,
        surplus_containers,
        surplus_sandboxes: sandboxes,
    }
}

fn restart_count(c: &ContainerInfo) -> u32 {
    c.labels
        .get(LABEL_RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SandboxId;
    use k8s_openapi::jiff::Timestamp;

    fn info(id: &str, name: &str, restarts: u32, running: bool) -> ContainerInfo {
        let t = Timestamp::from_second(1_700_000_000).expect("time");
        ContainerInfo {
            id: ContainerId(id.into()),
            sandbox: SandboxId("s1".into()),
            labels: BTreeMap::from([
                (LABEL_CONTAINER_NAME.to_string(), name.to_string()),
                (LABEL_RESTART_COUNT.to_string(), restarts.to_string()),
            ]),
            image: "img".into(),
            image_id: "sha256:1".into(),
            state: if running {
                ContainerState::Running { started_at: t }
            } else {
                ContainerState::Exited {
                    exit_code: 1,
                    reason: None,
                    message: None,
                    started_at: Some(t),
                    finished_at: t,
                }
            },
        }
    }

    fn sandbox(id: &str) -> SandboxInfo {
        SandboxInfo {
            id: SandboxId(id.into()),
            pod_uid: "u1".into(),
            ip: None,
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn keeps_the_latest_instance_and_its_restart_count() {
        let a = adopt(
            vec![sandbox("s1"), sandbox("s2")],
            vec![
                info("old", "app", 2, false),
                info("new", "app", 3, true),
                info("dup", "app", 3, false),
                info("side", "sidecar", 0, true),
            ],
        );
        assert_eq!(a.sandbox.as_ref().map(|s| s.id.0.as_str()), Some("s1"));
        assert_eq!(a.surplus_sandboxes.len(), 1);
        let app = &a.records["app"];
        assert_eq!(app.restart_count, 3);
        assert_eq!(app.current.as_ref().map(|i| i.id.0.as_str()), Some("new"));
        assert!(app.last_terminated.is_some());
        let mut surplus: Vec<&str> = a.surplus_containers.iter().map(|c| c.0.as_str()).collect();
        surplus.sort();
        assert_eq!(surplus, vec!["dup", "old"]);
        assert!(a.records["sidecar"].running());
    }
}
