//! Writes the outcome of a scheduling attempt: core/v1 Events (`Scheduled`,
//! `FailedScheduling`) and the pod's `PodScheduled` condition. Failures here are logged and
//! never stop scheduling: the binding, not its report, is what matters.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::warn;

use crate::framework::FitError;
use crate::scheduler::{pod_key, SchedulerError};

/// Reports as `component` (the scheduler's name, upstream's event source).
pub(crate) struct Effects {
    pub client: kube::Client,
    pub component: String,
}

impl Effects {
    /// Records a core/v1 Event about `pod`; failures are logged, never fatal.
    pub async fn record(&self, pod: &Pod, type_: &str, reason: &'static str, message: &str) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // Upstream's naming: <object>.<unix nanoseconds in hex>.
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("Pod".to_string()),
                name: Some(name),
                namespace: Some(namespace.clone()),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(source) = api.create(&PostParams::default(), &event).await {
            let err = SchedulerError::Event {
                pod: pod_key(pod),
                reason,
                source,
            };
            warn!(error = %error_chain(&err), "event not recorded");
        }
    }

    /// Sets `PodScheduled=False, reason Unschedulable` unless it already says the same.
    pub async fn mark_unschedulable(&self, pod: &Pod, fit: &FitError) {
        let message = fit.to_string();
        if has_condition(pod, "False", Some("Unschedulable"), Some(&message)) {
            return;
        }
        self.patch_condition(
            pod,
            json!({
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": Timestamp::now().to_string(),
            }),
        )
        .await;
    }

    /// After binding, flips an earlier `PodScheduled=False` to `True`. (Upstream's API server
    /// sets the condition when it accepts the Binding; Gantry's does not yet.)
    pub async fn mark_scheduled(&self, pod: &Pod) {
        let has_false = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status != "True")
            });
        if has_false {
            self.patch_condition(
                pod,
                json!({
                    "type": "PodScheduled",
                    "status": "True",
                    "reason": null,
                    "message": null,
                    "lastProbeTime": null,
                    "lastTransitionTime": Timestamp::now().to_string(),
                }),
            )
            .await;
        }
    }

    async fn patch_condition(&self, pod: &Pod, condition: serde_json::Value) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let patch = json!({"status": {"conditions": [condition]}});
        if let Err(source) = api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            let err = SchedulerError::Status {
                pod: pod_key(pod),
                source,
            };
            warn!(error = %error_chain(&err), "pod condition not updated");
        }
    }
}

fn has_condition(pod: &Pod, status: &str, reason: Option<&str>, message: Option<&str>) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == status
                    && c.reason.as_deref() == reason
                    && c.message.as_deref() == message
            })
        })
}

/// `error: cause: cause`, printed once at the edge.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
