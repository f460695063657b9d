//! Posts core/v1 Events about pods, as the kubelet does (`source.component=kubelet`).
//! One thing to know: events are best effort: a failed post is logged and dropped, never
//! retried, so an unreachable API server cannot stall a pod worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use tracing::debug;

/// The component name events are reported under.
pub const COMPONENT: &str = "kubelet";

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Writes events for one node.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    node: String,
    /// Makes event names unique even when two share a timestamp.
    seq: Arc<AtomicU64>,
}

impl Recorder {
    pub fn new(client: Client, node: impl Into<String>) -> Self {
        Recorder {
            client,
            node: node.into(),
            seq: Arc::default(),
        }
    }

    /// Posts one event about `pod` (and a container of it when `container` is set).
    pub async fn pod_event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        let mut ev = pod_event(
            pod,
            container,
            type_,
            reason,
            message,
            &self.node,
            Timestamp::now(),
        );
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = ev.metadata.name.as_mut() {
            name.push_str(&format!("{seq:x}"));
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            debug!(reason, error = %e, "event dropped");
        }
    }
}

/// The Event object (pure).
pub fn pod_event(
    pod: &Pod,
    container: Option<&str>,
    type_: EventType,
    reason: &str,
    message: String,
    node: &str,
    now: Timestamp,
) -> Event {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: ns.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: ns,
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: container.map(|c| field_path(pod, c)),
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(node.into()),
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(node.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}

/// `spec.containers{name}` or `spec.initContainers{name}`.
fn field_path(pod: &Pod, container: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_name_the_pod_container_and_kubelet() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]}
        }))
        .expect("pod");
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let ev = pod_event(
            &pod,
            Some("init"),
            EventType::Normal,
            "Started",
            "Started container init".into(),
            "n1",
            now,
        );
        assert_eq!(
            ev.involved_object.field_path.as_deref(),
            Some("spec.initContainers{init}")
        );
        assert_eq!(ev.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(
            ev.source.and_then(|s| s.component).as_deref(),
            Some("kubelet")
        );
        assert_eq!(ev.reporting_component.as_deref(), Some("kubelet"));
        assert_eq!(ev.type_.as_deref(), Some("Normal"));
        assert!(ev.metadata.name.expect("name").starts_with("web."));
    }
}
