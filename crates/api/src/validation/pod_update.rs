//! Pod updates: only container images, activeDeadlineSeconds (downwards), added tolerations
//! and a negative grace period set to 1 may change in a pod's spec.
//!
//! Know before editing: like upstream, the new spec is "munged" (mutable fields reset to the
//! old values) and then compared with the old spec under Go's semantic equality.

use serde_json::Value;

use super::{field_of, list_of, semantic_eq, FieldError, Path};

const MAX_INT32: i64 = 2147483647;

/// Pod updates: only images, activeDeadlineSeconds, added tolerations and a few more may
/// change.
pub(super) fn pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (field_of(new, "spec"), field_of(old, "spec"));
    let spec = Path::root("spec");
    for key in ["containers", "initContainers"] {
        if list_of(ns, key).len() != list_of(os, key).len() {
            errs.push(
                spec.child(key)
                    .forbidden("pod updates may not add or remove containers"),
            );
            return;
        }
    }
    let new_deadline = ns.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let old_deadline = os.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let deadline = spec.child("activeDeadlineSeconds");
    match (new_deadline, old_deadline) {
        (Some(n), Some(o)) if (0..=MAX_INT32).contains(&n) && o < n => {
            errs.push(deadline.invalid(n, "must be less than or equal to previous value"));
            return;
        }
        (None, Some(_)) => {
            errs.push(deadline.invalid(
                Value::Null,
                "must not update from a positive integer to nil value",
            ));
        }
        _ => {}
    }
    let (new_tols, old_tols) = (list_of(ns, "tolerations"), list_of(os, "tolerations"));
    let kept = old_tols
        .iter()
        .all(|o| new_tols.iter().any(|n| same_toleration(o, n)));
    if !kept {
        errs.push(
            spec.child("tolerations")
                .forbidden("existing toleration can not be modified except its tolerationSeconds"),
        );
    }
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in ["containers", "initContainers"] {
            if let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) {
                for (i, c) in list.iter_mut().enumerate() {
                    if let Some(c) = c.as_object_mut() {
                        c.insert(
                            "image".into(),
                            list_of(os, key)[i]
                                .get("image")
                                .cloned()
                                .unwrap_or(Value::Null),
                        );
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            copy_field(m, os, key);
        }
        let old_grace = os
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            copy_field(m, os, "terminationGracePeriodSeconds");
        }
        if !list_of(os, "schedulingGates").is_empty() {
            // Gated pods may still get scheduling constraints before they are released.
            copy_field(m, os, "nodeSelector");
            copy_field(m, os, "affinity");
        }
    }
    if !semantic_eq(&munged, os) {
        let diff = changed_keys(os, &munged)
            .iter()
            .map(|k| format!("  {k}: {} -> {}", field_of(os, k), field_of(&munged, k)))
            .collect::<Vec<_>>()
            .join("\n");
        errs.push(spec.forbidden(&format!(
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n{diff}"
        )));
    }
}

fn same_toleration(old: &Value, new: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    semantic_eq(&strip(old), &strip(new))
}

fn copy_field(m: &mut serde_json::Map<String, Value>, from: &Value, key: &str) {
    match from.get(key) {
        Some(v) => {
            m.insert(key.to_string(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for obj in [old, new] {
        for k in obj.as_object().into_iter().flat_map(|m| m.keys()) {
            if !keys.contains(k) && !semantic_eq(field_of(old, k), field_of(new, k)) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_update};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn pod(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        apply_defaults(rt("", "Pod"), &mut p);
        p
    }

    fn update(old: Value, new: Value) -> Vec<String> {
        messages(&validate_update(rt("", "Pod"), &pod(new), &pod(old)))
    }

    #[test]
    fn pod_image_and_deadline_may_change() {
        let old = json!({"containers": [{"name": "c", "image": "nginx:1"}]});
        let new = json!({"containers": [{"name": "c", "image": "nginx:2", "imagePullPolicy": "IfNotPresent"}],
            "activeDeadlineSeconds": 30, "tolerations": [{"key": "k", "operator": "Exists"}]});
        assert!(update(old, new).is_empty());
    }

    #[test]
    fn other_pod_spec_changes_are_forbidden() {
        let old = json!({"containers": [{"name": "c", "image": "nginx:1"}]});
        let new = json!({"nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1"}]});
        let m = update(old, new);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"));
        assert!(m[0].contains("nodeName"));
    }

    #[test]
    fn containers_may_not_be_added_and_tolerations_not_removed() {
        let old = json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k", "operator": "Exists"}]});
        let new = json!({"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "i"}]});
        assert_eq!(
            update(old.clone(), new),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let new = json!({"containers": [{"name": "c", "image": "i"}]});
        assert_eq!(update(old, new)[0], "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds");
    }
}
