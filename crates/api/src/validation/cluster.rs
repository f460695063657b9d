//! Namespace, Lease and Event validation (core/v1 and events.k8s.io/v1).
//!
//! Know before editing: core/v1 Events written by old-style recorders have no `eventTime`
//! and are checked only for namespace agreement, as upstream's legacy path does.

use serde_json::Value;

use super::meta::is_qualified_name;
use super::{field_of, str_of, FieldError, Path};

pub(super) fn namespace(obj: &Value, errs: &mut Vec<FieldError>) {
    let path = Path::root("spec").child("finalizers");
    for f in super::list_of(field_of(obj, "spec"), "finalizers") {
        let f = f.as_str().unwrap_or("");
        for m in is_qualified_name(f) {
            errs.push(path.invalid(f, &m));
        }
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(path.invalid(
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

pub(super) fn lease(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    if let Some(d) = spec.get("leaseDurationSeconds").and_then(Value::as_i64) {
        if d <= 0 {
            errs.push(
                path.child("leaseDurationSeconds")
                    .invalid(d, "must be greater than 0"),
            );
        }
    }
    if let Some(t) = spec.get("leaseTransitions").and_then(Value::as_i64) {
        if t < 0 {
            errs.push(
                path.child("leaseTransitions")
                    .invalid(t, "must be greater than or equal to 0"),
            );
        }
    }
}

pub(super) fn core_event(obj: &Value, errs: &mut Vec<FieldError>) {
    let ns = str_of(field_of(obj, "metadata"), "namespace");
    let involved = str_of(field_of(obj, "involvedObject"), "namespace");
    let agrees = if involved.is_empty() {
        ns.is_empty() || ns == "default"
    } else {
        ns == involved
    };
    if !agrees {
        errs.push(
            Path::root("involvedObject")
                .child("namespace")
                .invalid(involved, "does not match event.namespace"),
        );
    }
}

pub(super) fn events_event(obj: &Value, errs: &mut Vec<FieldError>) {
    if field_of(obj, "eventTime").is_null() {
        errs.push(Path::root("eventTime").required(""));
    }
    let ty = str_of(obj, "type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(Path::root("type").invalid("", &format!("has invalid value: {ty}")));
    }
    let controller = str_of(obj, "reportingController");
    if controller.is_empty() {
        errs.push(Path::root("reportingController").required(""));
    }
    for m in is_qualified_name(controller) {
        errs.push(Path::root("reportingController").invalid(controller, &m));
    }
    for (key, max) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let v = str_of(obj, key);
        if v.is_empty() {
            errs.push(Path::root(key).required(""));
        }
        if v.len() > max {
            errs.push(Path::root(key).invalid(v, &format!("can have at most {max} characters")));
        }
    }
    let note = str_of(obj, "note");
    if note.len() > 1024 {
        errs.push(Path::root("note").invalid(note, "can have at most 1024 characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create};
    use serde_json::json;

    #[test]
    fn lease_durations() {
        let l = json!({"metadata": {"name": "l", "namespace": "kube-node-lease"},
            "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}});
        assert_eq!(
            messages(&validate_create(rt("coordination.k8s.io", "Lease"), &l)),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn core_event_namespace_must_agree() {
        let e = json!({"metadata": {"name": "p.1", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "b"}});
        assert_eq!(
            messages(&validate_create(rt("", "Event"), &e)),
            vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
        );
    }

    #[test]
    fn events_v1_requires_reporting_fields() {
        let e = json!({"metadata": {"name": "p.1", "namespace": "a"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "type": "Normal", "reportingController": "gantry.dev/scheduler", "reportingInstance": "s-1", "action": "Binding"});
        assert_eq!(
            messages(&validate_create(rt("events.k8s.io", "Event"), &e)),
            vec!["reason: Required value"]
        );
    }

    #[test]
    fn namespace_finalizers() {
        let ns =
            json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes", "mine"]}});
        assert_eq!(
            messages(&validate_create(rt("", "Namespace"), &ns)),
            vec!["spec.finalizers: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }
}
