//! NodeReady: skips nodes whose `Ready` condition is not `True`.
//!
//! Upstream has no such plugin: its node lifecycle controller taints such nodes with
//! `node.kubernetes.io/not-ready` and TaintToleration rejects them. Until Gantry runs that
//! controller this plugin stands in; pods that tolerate the not-ready taint (as DaemonSet pods
//! do) are let through so both mechanisms agree.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection};
use crate::plugins::taint_toleration::tolerated_by;

pub const NAME: &str = "NodeReady";
/// Worded as the predicate upstream had before the taint-based design.
pub const REASON: &str = "node(s) were not ready";
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

#[derive(Debug, Default)]
pub struct NodeReady;

impl FilterPlugin for NodeReady {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        if is_ready(node) {
            return Ok(());
        }
        let taint = Taint {
            key: NOT_READY_TAINT.to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        };
        if tolerated_by(&taint, pod.pod) {
            Ok(())
        } else {
            Err(Rejection::unresolvable(REASON))
        }
    }
}

fn is_ready(node: &NodeInfo) -> bool {
    node.node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Toleration;

    use super::*;
    use crate::testing::{node, pod, tolerating};

    fn with_ready(status: Option<&str>) -> NodeInfo {
        let mut n = node("a", "1", "1Gi");
        let st = n.status.get_or_insert_with(Default::default);
        match status {
            Some(s) => {
                if let Some(c) = st.conditions.as_mut().and_then(|c| c.first_mut()) {
                    c.status = s.to_string();
                }
            }
            None => st.conditions = None,
        }
        NodeInfo::new(n)
    }

    #[test]
    fn only_ready_true_nodes_fit() {
        let p = pod("p", vec![]);
        let info = PodInfo::new(&p);
        assert!(NodeReady.filter(&info, &with_ready(Some("True"))).is_ok());
        for status in [Some("False"), Some("Unknown"), None] {
            assert_eq!(
                NodeReady.filter(&info, &with_ready(status)),
                Err(Rejection::unresolvable(REASON)),
                "{status:?}"
            );
        }
    }

    #[test]
    fn pods_tolerating_not_ready_fit_anyway() {
        let p = tolerating(
            pod("p", vec![]),
            Toleration {
                key: Some(NOT_READY_TAINT.into()),
                operator: Some("Exists".into()),
                ..Default::default()
            },
        );
        assert!(NodeReady
            .filter(&PodInfo::new(&p), &with_ready(Some("False")))
            .is_ok());
    }
}
