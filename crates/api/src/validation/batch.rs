//! batch/v1 Job validation.
//!
//! Know before editing: upstream generates the selector and the `controller-uid` template
//! labels before validating (unless `manualSelector`); the API server must do the same, or
//! every job fails with `spec.selector: Required value`.

use serde_json::Value;

use super::apps::{label_selector, selector_matches};
use super::pod::template;
use super::{field_of, non_negative, semantic_eq, str_of, FieldError, Path};

const MAX_PARALLELISM_INDEXED: i64 = 100_000;

pub(super) fn job(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        non_negative(spec, key, &path, errs);
    }
    match str_of(spec, "completionMode") {
        "" | "NonIndexed" => {}
        "Indexed" => {
            if spec.get("completions").is_none_or(Value::is_null) {
                errs.push(
                    path.child("completions")
                        .required("when completion mode is Indexed"),
                );
            }
            if let Some(p) = spec.get("parallelism").and_then(Value::as_i64) {
                if p > MAX_PARALLELISM_INDEXED {
                    errs.push(path.child("parallelism").invalid(
                        p,
                        "must be less than or equal to 100000 when completion mode is Indexed",
                    ));
                }
            }
        }
        other => errs.push(
            path.child("completionMode")
                .not_supported(other, &["NonIndexed", "Indexed"]),
        ),
    }
    let selector = field_of(spec, "selector");
    let tpl = field_of(spec, "template");
    if selector.is_null() {
        errs.push(path.child("selector").required(""));
    } else {
        label_selector(selector, &path.child("selector"), errs);
        let tlabels = field_of(field_of(tpl, "metadata"), "labels");
        if !selector_matches(selector, tlabels) {
            let shown = if tlabels.is_object() {
                tlabels.clone()
            } else {
                Value::Object(Default::default())
            };
            errs.push(
                path.child("template")
                    .child("metadata")
                    .child("labels")
                    .invalid(shown, "`selector` does not match template `labels`"),
            );
        }
    }
    template(tpl, &path.child("template"), errs);
    let rp = path.child("template").child("spec").child("restartPolicy");
    match str_of(field_of(tpl, "spec"), "restartPolicy") {
        "" | "Always" => errs.push(rp.required("valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" | "Never" => {}
        other => errs.push(rp.not_supported(other, &["OnFailure", "Never"])),
    }
}

/// Selector, template (except scheduling directives of a suspended, never-started job),
/// completions (except elastic indexed jobs) and completion mode may not change.
pub(super) fn job_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (field_of(new, "spec"), field_of(old, "spec"));
    let path = Path::root("spec");
    let indexed = str_of(ns, "completionMode") == "Indexed";
    let (nc, oc) = (field_of(ns, "completions"), field_of(os, "completions"));
    if !semantic_eq(nc, oc) {
        if !indexed {
            errs.push(
                path.child("completions")
                    .invalid(nc.clone(), "field is immutable"),
            );
        } else if !nc.is_null() && nc != field_of(ns, "parallelism") {
            errs.push(path.child("completions").invalid(
                nc.clone(),
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    let (nsel, osel) = (field_of(ns, "selector"), field_of(os, "selector"));
    if !semantic_eq(nsel, osel) {
        errs.push(
            path.child("selector")
                .invalid(nsel.clone(), "field is immutable"),
        );
    }
    let new_tpl = field_of(ns, "template");
    let mut old_tpl = field_of(os, "template").clone();
    let suspended = ns.get("suspend").and_then(Value::as_bool) == Some(true);
    let never_started = field_of(field_of(old, "status"), "startTime").is_null();
    if suspended && never_started {
        // Scheduling directives of a job that never ran may still be adjusted (KEP-2926).
        if let Some(t) = old_tpl.as_object_mut() {
            let meta = t
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            for key in ["labels", "annotations"] {
                set(meta, key, field_of(field_of(new_tpl, "metadata"), key));
            }
            let spec = t
                .entry("spec")
                .or_insert_with(|| Value::Object(Default::default()));
            for key in ["nodeSelector", "tolerations", "schedulingGates"] {
                set(spec, key, field_of(field_of(new_tpl, "spec"), key));
            }
            let node_affinity = field_of(
                field_of(field_of(new_tpl, "spec"), "affinity"),
                "nodeAffinity",
            )
            .clone();
            if let Some(aff) = spec.get_mut("affinity").and_then(Value::as_object_mut) {
                aff.insert("nodeAffinity".into(), node_affinity);
            } else if !node_affinity.is_null() {
                set(
                    spec,
                    "affinity",
                    &serde_json::json!({"nodeAffinity": node_affinity}),
                );
            }
        }
    }
    if !semantic_eq(new_tpl, &old_tpl) {
        errs.push(
            path.child("template")
                .invalid(new_tpl.clone(), "field is immutable"),
        );
    }
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        let (n, o) = (field_of(ns, key), field_of(os, key));
        if !semantic_eq(n, o) {
            errs.push(path.child(key).invalid(n.clone(), "field is immutable"));
        }
    }
}

fn set(target: &mut Value, key: &str, v: &Value) {
    if let Some(m) = target.as_object_mut() {
        m.insert(key.to_string(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create, validate_update};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn job(spec: Value) -> Value {
        let mut o = json!({"metadata": {"name": "pi", "namespace": "default"}, "spec": spec});
        apply_defaults(rt("batch", "Job"), &mut o);
        o
    }

    fn base(restart: &str) -> Value {
        json!({"selector": {"matchLabels": {"job-name": "pi"}}, "template": {"metadata": {"labels": {"job-name": "pi"}},
            "spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl"}]}}})
    }

    fn check(spec: Value) -> Vec<String> {
        messages(&validate_create(rt("batch", "Job"), &job(spec)))
    }

    #[test]
    fn valid_job_passes() {
        assert!(check(base("Never")).is_empty());
        assert!(check(base("OnFailure")).is_empty());
    }

    #[test]
    fn restart_policy_must_be_on_failure_or_never() {
        let mut spec = base("Never");
        spec["template"]["spec"]
            .as_object_mut()
            .map(|m| m.remove("restartPolicy"));
        assert_eq!(
            check(spec),
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
        );
    }

    #[test]
    fn counts_mode_and_selector() {
        let mut spec = base("Never");
        spec["backoffLimit"] = json!(-1);
        spec["completionMode"] = json!("Indexed");
        spec["parallelism"] = json!(2);
        spec["selector"] = json!({"matchLabels": {"job-name": "other"}});
        assert_eq!(
            check(spec),
            vec![
                "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
                "spec.completions: Required value: when completion mode is Indexed",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"job-name\":\"pi\"}: `selector` does not match template `labels`",
            ]
        );
        let mut spec = base("Never");
        spec.as_object_mut().map(|m| m.remove("selector"));
        assert_eq!(check(spec), vec!["spec.selector: Required value"]);
    }

    #[test]
    fn template_and_completions_are_immutable() {
        let old = job(base("Never"));
        let mut spec = base("Never");
        spec["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
        spec["completions"] = json!(3);
        let m = messages(&validate_update(rt("batch", "Job"), &job(spec), &old));
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            "spec.completions: Invalid value: 3: field is immutable"
        );
        assert!(
            m[1].starts_with("spec.template: Invalid value: {")
                && m[1].ends_with("}: field is immutable")
        );
        let mut suspended = base("Never");
        suspended["suspend"] = json!(true);
        suspended["backoffLimit"] = json!(2);
        assert_eq!(
            messages(&validate_update(rt("batch", "Job"), &job(suspended), &old)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn suspended_job_may_change_node_selector() {
        let mut spec = base("Never");
        spec["suspend"] = json!(true);
        let old = job(spec.clone());
        spec["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(validate_update(rt("batch", "Job"), &job(spec), &old).is_empty());
    }
}
