//! Table printer for Pods: READY, STATUS, RESTARTS, AGE and the wide columns.
//! The one thing to know: STATUS is a precedence cascade (phase, then init containers,
//! then containers last-to-first, then deletion), ported from upstream's `printPod`;
//! reorder nothing without checking it there.

use serde_json::{json, Value};

use super::{age, array_at, col, int_at, name, str_at, Column, Printed, AGE, NAME};
use crate::time::{human_duration, parse_rfc3339};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, ""),
    col("Status", "string", 0, ""),
    col("Restarts", "string", 0, ""),
    AGE,
    col("IP", "string", 1, ""),
    col("Node", "string", 1, ""),
    col("Nominated Node", "string", 1, ""),
    col("Readiness Gates", "string", 1, ""),
];

pub(super) fn pod(obj: &Value, now: i64) -> Printed {
    let summary = PodSummary::of(obj);
    let restarts = match summary.last_restart {
        Some(at) if summary.restarts != 0 => {
            format!("{} ({} ago)", summary.restarts, human_duration(now - at))
        }
        _ => summary.restarts.to_string(),
    };
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = match obj.pointer("/status/podIPs/0/ip").and_then(Value::as_str) {
        Some(ip) => ip,
        None => str_at(obj, "/status/podIP"),
    };
    let gates = array_at(obj, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = array_at(obj, "/status/conditions");
        let passed = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "/type") == ty)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };
    let conditions = match str_at(obj, "/status/phase") {
        "Succeeded" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}),
        ],
        "Failed" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}),
        ],
        _ => Vec::new(),
    };
    Printed {
        cells: vec![
            name(obj).into(),
            format!("{}/{}", summary.ready, summary.total).into(),
            summary.reason.into(),
            restarts.into(),
            age(obj, now).into(),
            or_none(pod_ip).into(),
            or_none(str_at(obj, "/spec/nodeName")).into(),
            or_none(str_at(obj, "/status/nominatedNodeName")).into(),
            readiness_gates.into(),
        ],
        conditions,
    }
}

/// What upstream's `printPod` derives from a pod's status.
struct PodSummary {
    reason: String,
    ready: usize,
    total: usize,
    restarts: i64,
    last_restart: Option<i64>,
}

impl PodSummary {
    fn of(pod: &Value) -> PodSummary {
        let init_specs = array_at(pod, "/spec/initContainers");
        let is_sidecar = |name: &str| {
            init_specs
                .iter()
                .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
        };
        let mut reason = match str_at(pod, "/status/reason") {
            "" => str_at(pod, "/status/phase").to_string(),
            r => r.to_string(),
        };
        let conditions = array_at(pod, "/status/conditions");
        if conditions.iter().any(|c| {
            str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated"
        }) {
            reason = "SchedulingGated".to_string();
        }
        let total = array_at(pod, "/spec/containers").len()
            + init_specs
                .iter()
                .filter(|c| str_at(c, "/restartPolicy") == "Always")
                .count();
        let mut ready = 0;
        let mut restarts = 0;
        let mut last_restart: Option<i64> = None;
        let mut sidecar_restarts = 0;
        let mut sidecar_last_restart: Option<i64> = None;
        let later = |a: Option<i64>, b: Option<i64>| a.max(b);

        let init_statuses = array_at(pod, "/status/initContainerStatuses");
        let mut initializing = false;
        for (i, c) in init_statuses.iter().enumerate() {
            let count = int_at(c, "/restartCount");
            let finished = terminated_at(c);
            restarts += count;
            last_restart = later(last_restart, finished);
            let sidecar = is_sidecar(str_at(c, "/name"));
            if sidecar {
                sidecar_restarts += count;
                sidecar_last_restart = later(sidecar_last_restart, finished);
            }
            let terminated = c.pointer("/state/terminated");
            let waiting_reason = str_at(c, "/state/waiting/reason");
            if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
                continue;
            }
            if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
                if c.get("ready").and_then(Value::as_bool) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            reason = if let Some(t) = terminated {
                match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => {
                        format!("Init:Signal:{}", int_at(t, "/signal"))
                    }
                    "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                    r => format!("Init:{r}"),
                }
            } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
                format!("Init:{waiting_reason}")
            } else {
                format!("Init:{i}/{}", init_specs.len())
            };
            initializing = true;
            break;
        }

        let initialized = conditions
            .iter()
            .any(|c| str_at(c, "/type") == "Initialized" && str_at(c, "/status") == "True");
        if !initializing || initialized {
            restarts = sidecar_restarts;
            last_restart = sidecar_last_restart;
            let mut has_running = false;
            for c in array_at(pod, "/status/containerStatuses").iter().rev() {
                restarts += int_at(c, "/restartCount");
                last_restart = later(last_restart, terminated_at(c));
                let waiting = str_at(c, "/state/waiting/reason");
                let terminated = c.pointer("/state/terminated");
                if !waiting.is_empty() {
                    reason = waiting.to_string();
                } else if let Some(t) = terminated {
                    reason = match str_at(t, "/reason") {
                        "" if int_at(t, "/signal") != 0 => {
                            format!("Signal:{}", int_at(t, "/signal"))
                        }
                        "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                        r => r.to_string(),
                    };
                } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                    && c.pointer("/state/running").is_some()
                {
                    has_running = true;
                    ready += 1;
                }
            }
            if reason == "Completed" && has_running {
                let pod_ready = conditions
                    .iter()
                    .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
                reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
            }
        }

        let deleting = pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let terminal = matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed");
        if deleting && str_at(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".to_string();
        } else if deleting && !terminal {
            reason = "Terminating".to_string();
        }
        PodSummary {
            reason,
            ready,
            total,
            restarts,
            last_restart,
        }
    }
}

/// When a container last terminated (`lastState.terminated.finishedAt`).
fn terminated_at(status: &Value) -> Option<i64> {
    status
        .pointer("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}
