//! TaintToleration: a node's `NoSchedule` and `NoExecute` taints must each be tolerated by the
//! pod. `PreferNoSchedule` is a scoring matter (issue 4). Matching follows upstream
//! (`Toleration.ToleratesTaint`): an empty toleration effect matches every effect, an empty key
//! with `Exists` matches every key, `Equal` (the default operator) compares values.

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection};

pub const NAME: &str = "TaintToleration";

#[derive(Debug, Default)]
pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        let taints = node.node.spec.as_ref().and_then(|s| s.taints.as_deref());
        // Upstream reports only the first untolerated taint.
        match taints.into_iter().flatten().find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tolerated_by(taint, pod.pod)
        }) {
            Some(taint) => Err(Rejection::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            ))),
            None => Ok(()),
        }
    }
}

/// Whether any of the pod's tolerations tolerates `taint`.
pub fn tolerated_by(taint: &Taint, pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .any(|t| tolerates(t, taint))
}

/// Whether one toleration tolerates one taint.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, tolerating, with_taint};

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Toleration {
            key: opt(key),
            operator: opt(op),
            value: opt(value),
            effect: opt(effect),
            ..Default::default()
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: effect.into(),
            ..Default::default()
        }
    }

    #[test]
    fn matching_rules() {
        let t = taint("k", "v", "NoSchedule");
        assert!(tolerates(&tol("k", "Equal", "v", "NoSchedule"), &t));
        assert!(
            tolerates(&tol("k", "", "v", "NoSchedule"), &t),
            "Equal is the default"
        );
        assert!(
            tolerates(&tol("k", "Equal", "v", ""), &t),
            "empty effect matches all"
        );
        assert!(tolerates(&tol("k", "Exists", "", "NoSchedule"), &t));
        assert!(
            tolerates(&tol("", "Exists", "", ""), &t),
            "tolerates everything"
        );
        assert!(
            !tolerates(&tol("k", "Equal", "w", "NoSchedule"), &t),
            "value differs"
        );
        assert!(
            !tolerates(&tol("k", "Equal", "v", "NoExecute"), &t),
            "effect differs"
        );
        assert!(!tolerates(&tol("j", "Exists", "", ""), &t), "key differs");
        assert!(
            !tolerates(&tol("k", "Bogus", "v", ""), &t),
            "unknown operator"
        );
        let empty_value = taint("k", "", "NoExecute");
        assert!(tolerates(&tol("k", "Equal", "", "NoExecute"), &empty_value));
        assert!(!tolerates(
            &tol("k", "Equal", "v", "NoExecute"),
            &empty_value
        ));
    }

    #[test]
    fn untolerated_hard_taints_reject_with_the_first_one() {
        let n = with_taint(
            with_taint(node("a", "1", "1Gi"), "soft", "", "PreferNoSchedule"),
            "dedicated",
            "gpu",
            "NoSchedule",
        );
        let n = NodeInfo::new(with_taint(n, "other", "", "NoExecute"));
        let p = pod("p", vec![]);
        assert_eq!(
            TaintToleration.filter(&PodInfo::new(&p), &n),
            Err(Rejection::unresolvable(
                "node(s) had untolerated taint {dedicated: gpu}"
            ))
        );
        let p = tolerating(p, tol("dedicated", "Equal", "gpu", "NoSchedule"));
        assert_eq!(
            TaintToleration.filter(&PodInfo::new(&p), &n),
            Err(Rejection::unresolvable(
                "node(s) had untolerated taint {other: }"
            ))
        );
        let p = tolerating(p, tol("other", "Exists", "", ""));
        assert!(TaintToleration.filter(&PodInfo::new(&p), &n).is_ok());
    }

    #[test]
    fn prefer_no_schedule_does_not_filter() {
        let n = NodeInfo::new(with_taint(
            node("a", "1", "1Gi"),
            "soft",
            "",
            "PreferNoSchedule",
        ));
        let p = pod("p", vec![]);
        assert!(TaintToleration.filter(&PodInfo::new(&p), &n).is_ok());
    }
}
