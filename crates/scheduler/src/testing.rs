//! Builders for unit tests: nodes with allocatable and a Ready condition, pods with requests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

/// A Ready node with the given CPU and memory allocatable and room for 110 pods.
pub fn node(name: &str, cpu: &str, memory: &str) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some(name.to_string());
    n.spec = Some(NodeSpec::default());
    n.status = Some(NodeStatus {
        allocatable: Some(quantities(&[
            ("cpu", cpu),
            ("memory", memory),
            ("pods", "110"),
        ])),
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    n
}

pub fn with_labels(mut n: Node, labels: &[(&str, &str)]) -> Node {
    n.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    n
}

pub fn with_taint(mut n: Node, key: &str, value: &str, effect: &str) -> Node {
    let spec = n.spec.get_or_insert_with(Default::default);
    spec.taints.get_or_insert_with(Vec::new).push(Taint {
        key: key.into(),
        value: (!value.is_empty()).then(|| value.to_string()),
        effect: effect.into(),
        ..Default::default()
    });
    n
}

pub fn container(requests: &[(&str, &str)]) -> Container {
    Container {
        name: "c".into(),
        resources: Some(ResourceRequirements {
            requests: (!requests.is_empty()).then(|| quantities(requests)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn pod(name: &str, containers: Vec<Container>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.to_string());
    p.metadata.namespace = Some("default".to_string());
    p.spec = Some(PodSpec {
        containers,
        ..Default::default()
    });
    p
}

pub fn bound(mut p: Pod, node: &str) -> Pod {
    if let Some(spec) = p.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    p
}

pub fn tolerating(mut p: Pod, toleration: Toleration) -> Pod {
    if let Some(spec) = p.spec.as_mut() {
        spec.tolerations
            .get_or_insert_with(Vec::new)
            .push(toleration);
    }
    p
}
