//! Table printers for workload controllers: Deployments, ReplicaSets, DaemonSets,
//! StatefulSets and Jobs.
//! The one thing to know: desired replicas read `spec.replicas` with the defaulted value 1,
//! while status counters read absent fields as 0, as the typed upstream structs would.

use serde_json::Value;

use super::{
    age, array_at, col, container_cells, format_label_selector, format_labels, int_at, name,
    str_at, Column, Printed, AGE, NAME,
};
use crate::selector::LabelSelector;
use crate::time::{human_duration, parse_rfc3339};

const CONTAINERS_DESC: &str = "Names of the containers in the pod template.";
const IMAGES_DESC: &str = "Images of the containers in the pod template.";
const SELECTOR_DESC: &str = "Label selector of the pods this object manages.";
pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, ""),
    col("Up-to-date", "string", 0, ""),
    col("Available", "string", 0, ""),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, SELECTOR_DESC),
];

pub(super) const REPLICASET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, ""),
    col("Current", "integer", 0, ""),
    col("Ready", "integer", 0, ""),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, ""),
];

pub(super) const DAEMONSET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, ""),
    col("Current", "integer", 0, ""),
    col("Ready", "integer", 0, ""),
    col("Up-to-date", "integer", 0, ""),
    col("Available", "integer", 0, ""),
    col("Node Selector", "string", 0, ""),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, ""),
];

pub(super) const STATEFULSET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, ""),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
];

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", 0, ""),
    col("Completions", "string", 0, ""),
    col("Duration", "string", 0, ""),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, ""),
];

pub(super) fn deployment(obj: &Value, now: i64) -> Printed {
    let (containers, images) = container_cells(template_spec(obj));
    let selector = match obj.pointer("/spec/selector") {
        None | Some(Value::Null) => String::new(),
        Some(sel) => match LabelSelector::from_json(sel) {
            Ok(s) => s.to_string(),
            Err(_) => "<invalid>".to_string(),
        },
    };
    Printed::cells(vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            desired_replicas(obj)
        )
        .into(),
        int_at(obj, "/status/updatedReplicas").into(),
        int_at(obj, "/status/availableReplicas").into(),
        age(obj, now).into(),
        containers.into(),
        images.into(),
        selector.into(),
    ])
}

pub(super) fn replicaset(obj: &Value, now: i64) -> Printed {
    let (containers, images) = container_cells(template_spec(obj));
    Printed::cells(vec![
        name(obj).into(),
        desired_replicas(obj).into(),
        int_at(obj, "/status/replicas").into(),
        int_at(obj, "/status/readyReplicas").into(),
        age(obj, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(obj.pointer("/spec/selector")).into(),
    ])
}

pub(super) fn daemonset(obj: &Value, now: i64) -> Printed {
    let (containers, images) = container_cells(template_spec(obj));
    Printed::cells(vec![
        name(obj).into(),
        int_at(obj, "/status/desiredNumberScheduled").into(),
        int_at(obj, "/status/currentNumberScheduled").into(),
        int_at(obj, "/status/numberReady").into(),
        int_at(obj, "/status/updatedNumberScheduled").into(),
        int_at(obj, "/status/numberAvailable").into(),
        format_labels(obj.pointer("/spec/template/spec/nodeSelector")).into(),
        age(obj, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(obj.pointer("/spec/selector")).into(),
    ])
}

pub(super) fn statefulset(obj: &Value, now: i64) -> Printed {
    let (containers, images) = container_cells(template_spec(obj));
    Printed::cells(vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            desired_replicas(obj)
        )
        .into(),
        age(obj, now).into(),
        containers.into(),
        images.into(),
    ])
}

pub(super) fn job(obj: &Value, now: i64) -> Printed {
    let succeeded = int_at(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = obj
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    let end = obj
        .pointer("/status/completionTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now - s),
        (Some(s), Some(e)) => human_duration(e - s),
    };
    let conditions = array_at(obj, "/status/conditions");
    // The first condition of a type decides, as upstream's `hasJobCondition`.
    let has = |ty: &str| {
        conditions
            .iter()
            .find(|c| str_at(c, "/type") == ty)
            .is_some_and(|c| str_at(c, "/status") == "True")
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = container_cells(template_spec(obj));
    Printed::cells(vec![
        name(obj).into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(obj, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(obj.pointer("/spec/selector")).into(),
    ])
}

fn template_spec(obj: &Value) -> &Value {
    obj.pointer("/spec/template/spec").unwrap_or(&Value::Null)
}

/// `spec.replicas`, which defaulting sets to 1 when omitted.
fn desired_replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}
