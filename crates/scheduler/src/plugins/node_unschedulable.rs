//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take no new pods, except pods that
//! tolerate the `node.kubernetes.io/unschedulable:NoSchedule` taint (as DaemonSet pods do).

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection};
use crate::plugins::taint_toleration::tolerated_by;

pub const NAME: &str = "NodeUnschedulable";
pub const REASON: &str = "node(s) were unschedulable";
pub const TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

#[derive(Debug, Default)]
pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Ok(());
        }
        let taint = Taint {
            key: TAINT_KEY.to_string(),
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Toleration;

    use super::*;
    use crate::testing::{node, pod, tolerating};

    fn cordoned() -> NodeInfo {
        let mut n = node("a", "1", "1Gi");
        n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
        NodeInfo::new(n)
    }

    #[test]
    fn cordoned_nodes_reject_pods() {
        let p = pod("p", vec![]);
        let err = NodeUnschedulable
            .filter(&PodInfo::new(&p), &cordoned())
            .expect_err("cordoned");
        assert_eq!(err, Rejection::unresolvable(REASON));
        assert!(NodeUnschedulable
            .filter(&PodInfo::new(&p), &NodeInfo::new(node("a", "1", "1Gi")))
            .is_ok());
    }

    #[test]
    fn the_unschedulable_toleration_lets_pods_in() {
        let p = tolerating(
            pod("p", vec![]),
            Toleration {
                key: Some(TAINT_KEY.into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            },
        );
        assert!(NodeUnschedulable
            .filter(&PodInfo::new(&p), &cordoned())
            .is_ok());
    }
}
