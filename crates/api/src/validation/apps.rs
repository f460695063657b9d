//! apps/v1 validation: Deployment, ReplicaSet, DaemonSet, StatefulSet.
//!
//! Know before editing: all four share `selector_and_template` (selector required, non-empty,
//! matching the template labels, template restart policy Always); their selectors are
//! immutable on update.

use serde_json::Value;

use super::pod::{one_of, template};
use super::{field_of, list_of, non_negative, semantic_eq, str_of, FieldError, Path};

pub(super) fn deployment(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    non_negative(spec, "replicas", &path, errs);
    selector_and_template(spec, &path, "deployment", "ReplicaSet", errs);
    let strategy = field_of(spec, "strategy");
    let sp = path.child("strategy");
    match str_of(strategy, "type") {
        "Recreate" => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                errs.push(
                    sp.child("rollingUpdate")
                        .forbidden("may not be specified when strategy `type` is 'Recreate'"),
                );
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(
                sp.child("rollingUpdate")
                    .required("this should be defaulted and never be nil"),
            ),
            Some(ru) => {
                let rp = sp.child("rollingUpdate");
                let unavailable = field_of(ru, "maxUnavailable");
                let surge = field_of(ru, "maxSurge");
                int_or_percent(unavailable, &rp.child("maxUnavailable"), errs);
                int_or_percent(surge, &rp.child("maxSurge"), errs);
                if amount(unavailable) == 0 && amount(surge) == 0 {
                    errs.push(
                        rp.child("maxUnavailable")
                            .invalid(unavailable.clone(), "may not be 0 when `maxSurge` is 0"),
                    );
                }
                not_over_100_percent(unavailable, &rp.child("maxUnavailable"), errs);
            }
        },
        _ => errs.push(sp.not_supported(strategy.clone(), &["Recreate", "RollingUpdate"])),
    }
    non_negative(spec, "minReadySeconds", &path, errs);
    non_negative(spec, "revisionHistoryLimit", &path, errs);
    if let Some(p) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        let pp = path.child("progressDeadlineSeconds");
        if p <= 0 {
            errs.push(pp.invalid(p, "must be greater than zero"));
        }
        let min_ready = spec
            .get("minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if p <= min_ready {
            errs.push(pp.invalid(p, "must be greater than minReadySeconds"));
        }
    }
}

pub(super) fn replica_set(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    non_negative(spec, "replicas", &path, errs);
    non_negative(spec, "minReadySeconds", &path, errs);
    // Upstream's ReplicaSet check reuses the Deployment wording.
    selector_and_template(spec, &path, "deployment", "ReplicaSet", errs);
}

pub(super) fn daemon_set(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    selector_and_template(spec, &path, "daemonset", "", errs);
    let tspec = field_of(field_of(spec, "template"), "spec");
    if let Some(d) = tspec.get("activeDeadlineSeconds").filter(|d| !d.is_null()) {
        errs.push(
            path.child("template")
                .child("spec")
                .child("activeDeadlineSeconds")
                .invalid(d.clone(), "activeDeadlineSeconds must be nil for daemons"),
        );
    }
    let strategy = field_of(spec, "updateStrategy");
    let sp = path.child("updateStrategy");
    match str_of(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = field_of(strategy, "rollingUpdate");
            let rp = sp.child("rollingUpdate");
            let unavailable = field_of(ru, "maxUnavailable");
            let surge = field_of(ru, "maxSurge");
            int_or_percent(unavailable, &rp.child("maxUnavailable"), errs);
            int_or_percent(surge, &rp.child("maxSurge"), errs);
            not_over_100_percent(unavailable, &rp.child("maxUnavailable"), errs);
            not_over_100_percent(surge, &rp.child("maxSurge"), errs);
            match (amount(unavailable) != 0, amount(surge) != 0) {
                (true, true) => errs.push(rp.child("maxSurge").invalid(
                    surge.clone(),
                    "may not be set when maxUnavailable is non-zero",
                )),
                (false, false) => errs.push(
                    rp.child("maxUnavailable")
                        .required("cannot be 0 when maxSurge is 0"),
                ),
                _ => {}
            }
        }
        "" => errs.push(sp.child("type").required("")),
        other => errs.push(
            sp.child("type")
                .not_supported(other, &["OnDelete", "RollingUpdate"]),
        ),
    }
    non_negative(spec, "minReadySeconds", &path, errs);
    non_negative(spec, "revisionHistoryLimit", &path, errs);
}

pub(super) fn stateful_set(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = field_of(obj, "spec");
    let path = Path::root("spec");
    one_of(
        str_of(spec, "podManagementPolicy"),
        &["OrderedReady", "Parallel"],
        &path.child("podManagementPolicy"),
        errs,
    );
    let strategy = field_of(spec, "updateStrategy");
    let sp = path.child("updateStrategy");
    match str_of(strategy, "type") {
        "OnDelete" => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                errs.push(sp.child("rollingUpdate").invalid(
                    field_of(strategy, "rollingUpdate").clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            non_negative(
                field_of(strategy, "rollingUpdate"),
                "partition",
                &sp.child("rollingUpdate"),
                errs,
            );
        }
        "" => errs.push(sp.required("")),
        other => errs.push(sp.not_supported(other, &["RollingUpdate", "OnDelete"])),
    }
    non_negative(spec, "replicas", &path, errs);
    non_negative(spec, "minReadySeconds", &path, errs);
    selector_and_template(spec, &path, "statefulset", "StatefulSet", errs);
    for (i, claim) in list_of(spec, "volumeClaimTemplates").iter().enumerate() {
        let name = str_of(field_of(claim, "metadata"), "name");
        if name.is_empty() {
            errs.push(
                path.child("volumeClaimTemplates")
                    .index(i)
                    .child("metadata")
                    .child("name")
                    .required("name or generateName is required"),
            );
        }
    }
}

/// Selectors of Deployments, ReplicaSets and DaemonSets may not change.
pub(super) fn selector_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (field_of(new, "spec"), field_of(old, "spec"));
    let (nsel, osel) = (field_of(ns, "selector"), field_of(os, "selector"));
    if !semantic_eq(nsel, osel) {
        errs.push(
            Path::root("spec")
                .child("selector")
                .invalid(nsel.clone(), "field is immutable"),
        );
    }
}

/// StatefulSets may change only replicas, ordinals, template, updateStrategy,
/// revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and minReadySeconds.
pub(super) fn stateful_set_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (field_of(new, "spec"), field_of(old, "spec"));
    let mutable = [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let changed = ns
        .as_object()
        .into_iter()
        .chain(os.as_object())
        .flat_map(|m| m.keys())
        .filter(|k| !mutable.contains(&k.as_str()))
        .any(|k| !semantic_eq(field_of(ns, k), field_of(os, k)));
    if changed {
        errs.push(Path::root("spec").forbidden("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
    }
}

/// Selector present, valid, non-empty and matching the template; then the template itself
/// with restart policy Always. `owner` names the kind in the activeDeadlineSeconds error
/// (empty: no such check).
fn selector_and_template(
    spec: &Value,
    path: &Path,
    kind: &str,
    owner: &str,
    errs: &mut Vec<FieldError>,
) {
    let sp = path.child("selector");
    let selector = field_of(spec, "selector");
    let tpl = field_of(spec, "template");
    let tp = path.child("template");
    if selector.is_null() {
        errs.push(sp.required(""));
    } else {
        label_selector(selector, &sp, errs);
        let empty = list_of(selector, "matchExpressions").is_empty()
            && field_of(selector, "matchLabels")
                .as_object()
                .is_none_or(|m| m.is_empty());
        if empty {
            // Printed as upstream prints the Go struct: `v1.LabelSelector{MatchLabels:…(nil), …}`.
            let shown = if selector.as_object().is_some_and(|m| m.is_empty()) {
                serde_json::json!({"matchLabels": null})
            } else {
                selector.clone()
            };
            errs.push(sp.invalid(shown, &format!("empty selector is invalid for {kind}")));
        } else {
            let tlabels = field_of(field_of(tpl, "metadata"), "labels");
            if !selector_matches(selector, tlabels) {
                let shown = if tlabels.is_object() {
                    tlabels.clone()
                } else {
                    Value::Object(Default::default())
                };
                errs.push(
                    tp.child("metadata")
                        .child("labels")
                        .invalid(shown, "`selector` does not match template `labels`"),
                );
            }
        }
    }
    template(tpl, &tp, errs);
    let tspec = field_of(tpl, "spec");
    let restart = str_of(tspec, "restartPolicy");
    if restart != "Always" {
        errs.push(
            tp.child("spec")
                .child("restartPolicy")
                .not_supported(restart, &["Always"]),
        );
    }
    if !owner.is_empty()
        && tspec
            .get("activeDeadlineSeconds")
            .is_some_and(|d| !d.is_null())
    {
        errs.push(
            tp.child("spec")
                .child("activeDeadlineSeconds")
                .forbidden(&format!(
                    "activeDeadlineSeconds in {owner} is not Supported"
                )),
        );
    }
}

/// `ValidateLabelSelector`.
pub(super) fn label_selector(selector: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    for (i, req) in list_of(selector, "matchExpressions").iter().enumerate() {
        let rp = path.child("matchExpressions").index(i);
        let has_values = !list_of(req, "values").is_empty();
        match str_of(req, "operator") {
            "In" | "NotIn" if !has_values => errs.push(
                rp.child("values")
                    .required("must be specified when `operator` is 'In' or 'NotIn'"),
            ),
            "Exists" | "DoesNotExist" if has_values => {
                errs.push(rp.child("values").forbidden(
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(
                rp.child("operator")
                    .invalid(op, "not a valid selector operator"),
            ),
        }
        let key = str_of(req, "key");
        for m in super::meta::is_qualified_name(key) {
            errs.push(rp.child("key").invalid(key, &m));
        }
    }
    super::meta::labels(
        field_of(selector, "matchLabels"),
        &path.child("matchLabels"),
        errs,
    );
}

/// Whether a label selector selects an object with `labels`.
pub(super) fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = field_of(selector, "matchLabels")
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    match_labels
        && list_of(selector, "matchExpressions").iter().all(|req| {
            let key = str_of(req, "key");
            let values: Vec<&str> = list_of(req, "values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match str_of(req, "operator") {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        })
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent(v: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    match v {
        Value::String(s) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                errs.push(path.invalid(v.clone(), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
            }
        }
        Value::Number(n) => {
            if n.as_i64().is_some_and(|n| n < 0) {
                errs.push(path.invalid(v.clone(), "must be greater than or equal to 0"));
            }
        }
        Value::Null => {}
        _ => errs.push(path.invalid(v.clone(), "must be an integer or percentage (e.g '5%')")),
    }
}

fn not_over_100_percent(v: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    if percent(v).is_some_and(|p| p > 100) {
        errs.push(path.invalid(v.clone(), "must not be greater than 100%"));
    }
}

fn percent(v: &Value) -> Option<i64> {
    v.as_str()?.strip_suffix('%')?.parse().ok()
}

/// The number in an int-or-percent, for "is it zero" checks.
fn amount(v: &Value) -> i64 {
    v.as_i64().or_else(|| percent(v)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create, validate_update};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn obj(kind: &str, spec: Value) -> Value {
        let mut o = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        apply_defaults(rt("apps", kind), &mut o);
        o
    }

    fn tpl(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    fn check(kind: &str, spec: Value) -> Vec<String> {
        messages(&validate_create(rt("apps", kind), &obj(kind, spec)))
    }

    #[test]
    fn valid_workloads_pass() {
        for kind in ["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"] {
            let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web", "x": "y"}))});
            assert!(check(kind, spec).is_empty(), "{kind}");
        }
    }

    #[test]
    fn selector_must_match_template() {
        let m = check(
            "Deployment",
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "api"}))}),
        );
        assert_eq!(
            m,
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`"]
        );
    }

    #[test]
    fn selector_required_and_non_empty() {
        let m = check(
            "Deployment",
            json!({"template": tpl(json!({"app": "web"}))}),
        );
        assert_eq!(m, vec!["spec.selector: Required value"]);
        let m = check(
            "DaemonSet",
            json!({"selector": {}, "template": tpl(json!({"app": "web"}))}),
        );
        assert_eq!(m, vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"]);
        let m = check(
            "ReplicaSet",
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}, "template": tpl(json!({"app": "web"}))}),
        );
        assert_eq!(m[0], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }

    #[test]
    fn replicas_strategy_and_restart_policy() {
        let mut spec = json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"})),
            "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}});
        spec["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            check("Deployment", spec),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
            ]
        );
        let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"})),
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "120%"}}});
        assert_eq!(
            check("Deployment", spec),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%"]
        );
        let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"})),
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}});
        assert_eq!(
            check("Deployment", spec),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"]
        );
    }

    #[test]
    fn template_errors_carry_the_template_path() {
        let spec = json!({"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}});
        assert_eq!(
            check("ReplicaSet", spec),
            vec!["spec.template.spec.containers[0].image: Required value"]
        );
    }

    #[test]
    fn statefulset_names_are_labels() {
        let mut o = obj(
            "StatefulSet",
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"}))}),
        );
        o["metadata"]["name"] = json!("db.primary");
        let m = messages(&validate_create(rt("apps", "StatefulSet"), &o));
        assert_eq!(
            m,
            vec!["metadata.name: Invalid value: \"db.primary\": must not contain dots"]
        );
    }

    #[test]
    fn selector_is_immutable() {
        let old = obj(
            "Deployment",
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"}))}),
        );
        let new = obj(
            "Deployment",
            json!({"selector": {"matchLabels": {"app": "web2"}}, "template": tpl(json!({"app": "web2"}))}),
        );
        assert_eq!(
            messages(&validate_update(rt("apps", "Deployment"), &new, &old)),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
        );
        let scaled = obj(
            "Deployment",
            json!({"replicas": 5, "selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"}))}),
        );
        assert!(validate_update(rt("apps", "Deployment"), &scaled, &old).is_empty());
    }

    #[test]
    fn statefulset_spec_is_mostly_immutable() {
        let base = json!({"serviceName": "db", "selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"}))});
        let old = obj("StatefulSet", base.clone());
        let mut scaled = base.clone();
        scaled["replicas"] = json!(3);
        assert!(
            validate_update(rt("apps", "StatefulSet"), &obj("StatefulSet", scaled), &old)
                .is_empty()
        );
        let mut renamed = base;
        renamed["serviceName"] = json!("other");
        assert_eq!(
            messages(&validate_update(rt("apps", "StatefulSet"), &obj("StatefulSet", renamed), &old)),
            vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]
        );
    }

    #[test]
    fn daemonset_surge_and_unavailable_exclusive() {
        let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl(json!({"app": "web"})),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}});
        assert_eq!(
            check("DaemonSet", spec),
            vec!["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"]
        );
    }
}
