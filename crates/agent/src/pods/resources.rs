//! Container resources: quantity parsing, the values `resourceFieldRef` exposes, the
//! runtime's [`ContainerResources`] and the pod's QoS class.
//! One thing to know: quantities are handled in thousandths (millicores, milli-bytes) so
//! `250m` CPU and `64Mi` memory share one exact integer path.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::ContainerResources;

/// A Kubernetes quantity times 1000, rounded up; `None` when malformed or negative.
pub fn parse_quantity_millis(q: &str) -> Option<u64> {
    gantry_api::quantity::parse_milli(q).and_then(|v| u64::try_from(v).ok())
}

fn quantity(c: &Container, kind: &str, resource: &str) -> Option<u64> {
    let r = c.resources.as_ref()?;
    let map = if kind == "limits" {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    }?;
    parse_quantity_millis(&map.get(resource)?.0)
}

/// The value of `resourceFieldRef.resource` (e.g. `limits.memory`) divided by `divisor`
/// (thousandths), rounded up. Unset limits are the node's allocatable `(cpu millis, bytes)`.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor_millis: u64,
    node: (u64, u64),
) -> Option<String> {
    let (kind, name) = resource.split_once('.')?;
    let value = match (kind, name) {
        ("limits", "cpu") => quantity(c, "limits", "cpu").unwrap_or(node.0),
        ("limits", "memory") => quantity(c, "limits", "memory").unwrap_or(node.1 * 1000),
        ("requests", "cpu") => quantity(c, "requests", "cpu")
            .or_else(|| quantity(c, "limits", "cpu"))
            .unwrap_or(0),
        ("requests", "memory") => quantity(c, "requests", "memory")
            .or_else(|| quantity(c, "limits", "memory"))
            .unwrap_or(0),
        ("limits" | "requests", "ephemeral-storage") => quantity(c, kind, name).unwrap_or(0),
        _ => return None,
    };
    Some(value.div_ceil(divisor_millis.max(1)).to_string())
}

/// The runtime's view of a container's resources (requests default to limits).
pub fn container_resources(c: &Container) -> ContainerResources {
    let cpu_limit = quantity(c, "limits", "cpu");
    let mem_limit = quantity(c, "limits", "memory").map(|m| m.div_ceil(1000));
    ContainerResources {
        cpu_request_millis: quantity(c, "requests", "cpu").or(cpu_limit),
        cpu_limit_millis: cpu_limit,
        memory_request_bytes: quantity(c, "requests", "memory")
            .map(|m| m.div_ceil(1000))
            .or(mem_limit),
        memory_limit_bytes: mem_limit,
    }
}

/// `Guaranteed`, `Burstable` or `BestEffort`, by upstream's rules over all containers.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let containers: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        for res in ["cpu", "memory"] {
            let limit = quantity(c, "limits", res);
            let request = quantity(c, "requests", res).or(limit);
            any |= limit.is_some() || request.is_some();
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity_millis("250m"), Some(250));
        assert_eq!(parse_quantity_millis("2"), Some(2000));
        assert_eq!(parse_quantity_millis("0.5"), Some(500));
        assert_eq!(parse_quantity_millis("64Mi"), Some(64 * 1024 * 1024 * 1000));
        assert_eq!(parse_quantity_millis("1k"), Some(1_000_000));
        assert_eq!(parse_quantity_millis("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity_millis("x"), None);
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"spec": {"containers": [
            {"name": "c", "image": "i", "resources": resources}
        ]}}))
        .expect("pod")
    }

    #[test]
    fn classifies_qos() {
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"},
                                  "requests": {"cpu": "500m"}}))),
            "Burstable"
        );
    }

    #[test]
    fn runtime_resources_default_requests_to_limits() {
        let p = pod(json!({"limits": {"cpu": "500m", "memory": "128Mi"}}));
        let r = container_resources(&p.spec.as_ref().expect("spec").containers[0]);
        assert_eq!(r.cpu_request_millis, Some(500));
        assert_eq!(r.memory_limit_bytes, Some(128 << 20));
        assert_eq!(r.memory_request_bytes, Some(128 << 20));
    }
}
