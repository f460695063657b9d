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

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const SELECTOR_DESC: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, "Number of the pod with ready state"),
    col("Up-to-date", "string", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    col("Available", "string", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, SELECTOR_DESC),
];

pub(super) const REPLICASET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
    col("Current", "integer", 0, "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
    col("Ready", "integer", 0, "The number of ready replicas for this replica set."),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];

pub(super) const DAEMONSET_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    col("Current", "integer", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    col("Ready", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
    col("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
    col("Available", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    col("Node Selector", "string", 0, "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];

pub(super) const STATEFULSET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, "Number of the pod with ready state"),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
];

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", 0, "Status of the job."),
    col("Completions", "string", 0, "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
    col("Duration", "string", 0, "Time required to complete the job."),
    AGE,
    col("Containers", "string", 1, CONTAINERS_DESC),
    col("Images", "string", 1, IMAGES_DESC),
    col("Selector", "string", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
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
