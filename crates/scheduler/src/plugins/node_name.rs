//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection};

pub const NAME: &str = "NodeName";
pub const REASON: &str = "node(s) didn't match the requested node name";

#[derive(Debug, Default)]
pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(wanted) if !wanted.is_empty() && wanted != node.name() => {
                Err(Rejection::unresolvable(REASON))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bound, node, pod};

    #[test]
    fn only_the_named_node_fits() {
        let p = bound(pod("p", vec![]), "b");
        let info = PodInfo::new(&p);
        assert!(NodeName
            .filter(&info, &NodeInfo::new(node("b", "1", "1Gi")))
            .is_ok());
        let err = NodeName
            .filter(&info, &NodeInfo::new(node("a", "1", "1Gi")))
            .expect_err("other node");
        assert_eq!(err, Rejection::unresolvable(REASON));
    }

    #[test]
    fn pods_without_node_name_fit_anywhere() {
        let p = pod("p", vec![]);
        assert!(NodeName
            .filter(&PodInfo::new(&p), &NodeInfo::new(node("a", "1", "1Gi")))
            .is_ok());
    }
}
