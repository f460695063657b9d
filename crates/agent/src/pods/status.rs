//! The PodStatus a worker reports, computed from its container records (pure).
//! One thing to know: phase follows the kubelet's rules, where a container waiting to restart
//! after a crash counts as stopped, not waiting, so a crash-looping pod stays `Running`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::backoff::go_duration;
use super::resources::qos_class;
use super::state::{restart_policy, ContainerRecord};
use crate::runtime::ContainerState;

/// Inputs of the status besides the container records.
#[derive(Debug, Clone, Default)]
pub struct StatusContext {
    pub host_ip: Option<String>,
    /// Set once the sandbox runs (the pod's IP, or the host's under hostNetwork).
    pub pod_ip: Option<String>,
    pub sandbox_ready: bool,
    /// The pod is being deleted and its containers were stopped: the final status.
    pub terminating: bool,
    pub now: Option<Timestamp>,
}

/// The pod's full status.
pub fn pod_status(
    pod: &Pod,
    records: &BTreeMap<String, ContainerRecord>,
    ctx: &StatusContext,
) -> PodStatus {
    let now = ctx.now.unwrap_or_else(Timestamp::now);
    let previous = pod.status.as_ref();
    let empty = ContainerRecord::default();
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_key = format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    );
    let inits: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            container_status(
                c,
                records.get(&c.name).unwrap_or(&empty),
                true,
                None,
                &pod_key,
                now,
            )
        })
        .collect();
    let initialized = inits.iter().all(
        |s| matches!(&s.state, Some(K8sState { terminated: Some(t), .. }) if t.exit_code == 0),
    );
    let app_waiting = (!initialized).then_some("PodInitializing");
    let apps: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            container_status(
                c,
                records.get(&c.name).unwrap_or(&empty),
                false,
                app_waiting,
                &pod_key,
                now,
            )
        })
        .collect();
    let phase = phase(
        restart_policy(pod),
        &inits,
        &apps,
        initialized,
        ctx.terminating,
    );
    let unready: Vec<&str> = apps
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = inits
        .iter()
        .filter(
            |s| !matches!(&s.state, Some(K8sState { terminated: Some(t), .. }) if t.exit_code == 0),
        )
        .map(|s| s.name.as_str())
        .collect();
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let cond = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let transition = previous
            .and_then(|p| p.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            message,
            last_transition_time: Some(transition),
            ..PodCondition::default()
        }
    };
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let conditions = vec![
        cond(
            "PodReadyToStartContainers",
            ctx.sandbox_ready && !terminal,
            None,
            None,
        ),
        cond(
            "Initialized",
            incomplete.is_empty() || terminal && initialized,
            (!incomplete.is_empty()).then_some("ContainersNotInitialized"),
            (!incomplete.is_empty()).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )
            }),
        ),
        cond(
            "Ready",
            unready.is_empty() && !terminal,
            ready_reason,
            ready_message.clone(),
        ),
        cond(
            "ContainersReady",
            unready.is_empty() && !terminal,
            ready_reason,
            ready_message,
        ),
        cond("PodScheduled", true, None, None),
    ];
    let start_time = previous
        .and_then(|p| p.start_time.clone())
        .unwrap_or(Time(now));
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: ctx.host_ip.clone(),
        host_ips: ctx.host_ip.clone().map(|ip| vec![HostIP { ip }]),
        pod_ip: ctx.pod_ip.clone(),
        pod_ips: ctx.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: Some(start_time),
        qos_class: Some(qos_class(pod).into()),
        init_container_statuses: (!inits.is_empty()).then_some(inits),
        container_statuses: Some(apps),
        ..PodStatus::default()
    }
}

/// One container's status.
fn container_status(
    c: &Container,
    rec: &ContainerRecord,
    init: bool,
    blocked: Option<&str>,
    pod_key: &str,
    now: Timestamp,
) -> ContainerStatus {
    let waiting = |reason: &str, message: Option<String>| K8sState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..K8sState::default()
    };
    let current = rec.current.as_ref();
    let mut last = rec
        .last_terminated
        .as_ref()
        .and_then(|s| terminated(s, None));
    let state = match current.map(|i| &i.state) {
        Some(ContainerState::Running { started_at }) => K8sState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..K8sState::default()
        },
        Some(s @ ContainerState::Exited { .. }) => {
            let id = current.map(|i| format!("gantry://{}", i.id.0));
            if rec.in_crash_backoff(now) {
                last = terminated(s, id);
                let wait = rec.restart_at.map(|(_, w)| w).unwrap_or_default();
                waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {} restarting failed container={} pod={}",
                        go_duration(wait),
                        c.name,
                        pod_key
                    )),
                )
            } else if let Some(w) = &rec.waiting {
                last = terminated(s, id);
                waiting(&w.reason, Some(w.message.clone()))
            } else {
                K8sState {
                    terminated: terminated(s, id),
                    ..K8sState::default()
                }
            }
        }
        Some(ContainerState::Created) => waiting("ContainerCreating", None),
        Some(ContainerState::Unknown) => K8sState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                reason: Some("ContainerStatusUnknown".into()),
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                ..ContainerStateTerminated::default()
            }),
            ..K8sState::default()
        },
        None => match (&rec.waiting, blocked) {
            (Some(w), _) => waiting(&w.reason, Some(w.message.clone())),
            (None, Some(reason)) => waiting(reason, None),
            (None, None) => waiting("ContainerCreating", None),
        },
    };
    let running = state.running.is_some();
    let succeeded = matches!(&state.terminated, Some(t) if t.exit_code == 0);
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: rec.image_id.clone().unwrap_or_default(),
        container_id: current.map(|i| format!("gantry://{}", i.id.0)),
        ready: if init { succeeded } else { running },
        started: Some(running),
        restart_count: i32::try_from(rec.restart_count).unwrap_or(i32::MAX),
        last_state: Some(K8sState {
            terminated: last,
            ..K8sState::default()
        }),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

fn terminated(
    s: &ContainerState,
    container_id: Option<String>,
) -> Option<ContainerStateTerminated> {
    let ContainerState::Exited {
        exit_code,
        reason,
        message,
        started_at,
        finished_at,
    } = s
    else {
        return None;
    };
    let reason = reason.clone().unwrap_or_else(|| {
        if *exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
        .to_string()
    });
    Some(ContainerStateTerminated {
        exit_code: *exit_code,
        reason: Some(reason),
        message: message.clone(),
        started_at: started_at.map(Time),
        finished_at: Some(Time(*finished_at)),
        container_id,
        signal: None,
    })
}

/// The kubelet's phase rules (`getPhase`); `terminating` is its `podIsTerminal`.
fn phase(
    policy: &str,
    inits: &[ContainerStatus],
    apps: &[ContainerStatus],
    initialized: bool,
    terminating: bool,
) -> &'static str {
    if !initialized && !terminating {
        let failed = inits.iter().any(
            |s| matches!(&s.state, Some(K8sState { terminated: Some(t), .. }) if t.exit_code != 0),
        );
        return if failed && policy == "Never" {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in apps {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            let restarted = s
                .last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some());
            if restarted {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            // A stopped pod that will not run again ends in a terminal phase (KEP-3329).
            _ if terminating && stopped == succeeded => "Succeeded",
            _ if terminating => "Failed",
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        }
    } else {
        "Pending"
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
