//! Container resource requirements: quantities non-negative, requests not above limits, and
//! requests equal to limits for resources that cannot be overcommitted (hugepages, extended
//! resources such as `nvidia.com/gpu`).
//!
//! Know before editing: quantities are compared as f64, which is exact for every quantity a
//! person writes; a malformed quantity is the decoder's error and is skipped here. Messages
//! print the quantity as written, where upstream prints its canonical form (`1000m` → `1`).

use serde_json::Value;

use super::{field_of, FieldError, Path};

/// `ValidateResourceRequirements` for one container's `resources` at `path`.
pub(super) fn requirements(resources: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let limits = field_of(resources, "limits").as_object();
    let requests = field_of(resources, "requests").as_object();
    let lp = path.child("limits");
    for (name, q) in limits.into_iter().flatten() {
        non_negative(name, q, &lp, errs);
    }
    let rp = path.child("requests");
    for (name, q) in requests.into_iter().flatten() {
        non_negative(name, q, &rp, errs);
        let (Some(request), Some(limit)) = (
            quantity(q),
            limits.and_then(|l| l.get(name)).and_then(quantity),
        ) else {
            continue;
        };
        let written = q.as_str().unwrap_or_default();
        let limit_written = limits
            .and_then(|l| l.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if request != limit && !overcommit_allowed(name) {
            errs.push(rp.invalid(
                written,
                &format!("must be equal to {name} limit of {limit_written}"),
            ));
        } else if request > limit {
            errs.push(rp.invalid(
                written,
                &format!("must be less than or equal to {name} limit of {limit_written}"),
            ));
        }
    }
}

fn non_negative(name: &str, q: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    if quantity(q).is_some_and(|v| v < 0.0) {
        errs.push(path.key(name).invalid(
            q.as_str().unwrap_or_default(),
            "must be greater than or equal to 0",
        ));
    }
}

/// Native resources (no domain, or a `kubernetes.io/` one) other than hugepages.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

/// The value of a `resource.Quantity` (`500m`, `1Gi`, `1e3`, or a bare JSON number).
pub(super) fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    crate::quantity::to_f64(v.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create};
    use super::*;
    use crate::defaults::apply_defaults;
    use serde_json::json;

    fn check(resources: Value) -> Vec<String> {
        let mut p = json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "image": "i:1", "resources": resources}]}});
        apply_defaults(rt("", "Pod"), &mut p);
        messages(&validate_create(rt("", "Pod"), &p))
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(quantity(&json!("500m")), Some(0.5));
        assert_eq!(quantity(&json!("1Gi")), Some(1073741824.0));
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!(2)), Some(2.0));
        assert_eq!(quantity(&json!("lots")), None);
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        assert!(check(json!({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}})).is_empty());
        assert_eq!(
            check(json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
            vec!["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]
        );
    }

    #[test]
    fn extended_resources_must_request_their_limit() {
        assert_eq!(
            check(json!({"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}})),
            vec!["spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"]
        );
    }

    #[test]
    fn negative_quantities_are_invalid() {
        assert_eq!(
            check(json!({"limits": {"memory": "-1Gi"}})),
            vec![
                "spec.containers[0].resources.limits[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
            ]
        );
    }
}
