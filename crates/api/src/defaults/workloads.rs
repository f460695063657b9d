//! Workload defaults (apps/v1 and batch/v1 `SetDefaults_*`), each followed by the pod
//! template defaults.
//!
//! Know before editing: Job's generated selector and its `controller-uid` labels need the
//! object's uid and belong to the API server's create path, not here.

use serde_json::{json, Map, Value};

use super::{default_str, default_value, ensure_obj, objects_mut, pod};

pub(super) fn deployment(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_obj(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure_obj(strategy, "rollingUpdate") {
                default_value(ru, "maxUnavailable", json!("25%"));
                default_value(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_value(spec, "progressDeadlineSeconds", json!(600));
    pod::template(spec);
}

pub(super) fn replica_set(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    pod::template(spec);
}

pub(super) fn daemon_set(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    if let Some(strategy) = ensure_obj(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure_obj(strategy, "rollingUpdate") {
                default_value(ru, "maxUnavailable", json!(1));
                default_value(ru, "maxSurge", json!(0));
            }
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    pod::template(spec);
}

pub(super) fn stateful_set(root: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = ensure_obj(spec, "updateStrategy") {
        // Upstream creates rollingUpdate only when it also picks the type; an explicit
        // `type: RollingUpdate` without rollingUpdate stays without it.
        let unset_type = strategy
            .get("type")
            .is_none_or(|t| t.is_null() || t.as_str() == Some(""));
        if unset_type {
            strategy.insert("type".into(), json!("RollingUpdate"));
            default_value(strategy, "rollingUpdate", json!({}));
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = strategy
                .get_mut("rollingUpdate")
                .and_then(Value::as_object_mut)
            {
                default_value(ru, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(policy, "whenDeleted", "Retain");
        default_str(policy, "whenScaled", "Retain");
    }
    default_value(spec, "replicas", json!(1));
    default_value(spec, "revisionHistoryLimit", json!(10));
    for claim in objects_mut(spec, "volumeClaimTemplates") {
        // Each claim template is a whole PersistentVolumeClaim and gets its defaults.
        if let Some(claim_spec) = ensure_obj(claim, "spec") {
            default_str(claim_spec, "volumeMode", "Filesystem");
        }
        if let Some(status) = ensure_obj(claim, "status") {
            default_str(status, "phase", "Pending");
        }
    }
    pod::template(spec);
}

pub(super) fn job(root: &mut Map<String, Value>) {
    let template_labels = root
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = ensure_obj(root, "spec") else {
        return;
    };
    let unset = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default_value(spec, "parallelism", json!(1));
    if unset(spec, "backoffLimit") {
        let limit = if unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i32::MAX
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    default_str(spec, "completionMode", "NonIndexed");
    default_value(spec, "suspend", json!(false));
    let has_failure_policy = !unset(spec, "podFailurePolicy");
    if let Some(policy) = spec
        .get_mut("podFailurePolicy")
        .and_then(Value::as_object_mut)
    {
        for rule in objects_mut(policy, "rules") {
            for pattern in objects_mut(rule, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_str(spec, "podReplacementPolicy", replacement);
    pod::template(spec);
    // A job without labels of its own takes its template's.
    if let (Some(labels), Some(meta)) = (template_labels, ensure_obj(root, "metadata")) {
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            meta.insert("labels".into(), labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{apply_defaults, rt};
    use super::*;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(rt(group, kind), &mut obj);
        obj
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn deployment_defaults_and_template() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"template": template()}}),
        );
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        let t = &s["template"]["spec"];
        assert_eq!(t["restartPolicy"], "Always");
        assert_eq!(t["containers"][0]["imagePullPolicy"], "Always");
        // Pod-only defaults stay off templates.
        assert!(t.get("enableServiceLinks").is_none());
        assert!(t.get("priority").is_none());
    }

    #[test]
    fn recreate_deployment_gets_no_rolling_update() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["replicas"], 0);
    }

    #[test]
    fn template_requests_are_not_copied_from_limits() {
        let d = defaulted(
            "apps",
            "ReplicaSet",
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 1);
        assert!(d["spec"]["template"]["spec"]["containers"][0]["resources"]
            .get("requests")
            .is_none());
    }

    #[test]
    fn daemon_set_defaults() {
        let d = defaulted(
            "apps",
            "DaemonSet",
            json!({"spec": {"template": template()}}),
        );
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn stateful_set_defaults() {
        let d = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"template": template(),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(
            s["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(s["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    }

    #[test]
    fn stateful_set_on_delete_keeps_its_strategy() {
        let d = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(d["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn job_defaults() {
        let j = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"template": {
            "metadata": {"labels": {"app": "batch"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}}}),
        );
        let s = &j["spec"];
        assert_eq!(s["completions"], 1);
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(j["metadata"]["labels"], json!({"app": "batch"}));
    }

    #[test]
    fn job_parallelism_alone_leaves_completions_unset() {
        let j = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {"parallelism": 3,
            "backoffLimitPerIndex": 1, "podFailurePolicy": {"rules": [{"action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget"}]}]}, "template": template()}}),
        );
        let s = &j["spec"];
        assert!(s.get("completions").is_none());
        assert_eq!(s["parallelism"], 3);
        assert_eq!(s["backoffLimit"], 2147483647);
        assert_eq!(s["podReplacementPolicy"], "Failed");
        assert_eq!(
            s["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
        assert_eq!(j["metadata"]["labels"], json!({"own": "x"}));
    }
}
