//! NodeResourcesFit: the pod's requests must fit in the node's allocatable minus what the pods
//! already there request (CPU, memory, ephemeral storage, pod count, extended resources), and
//! feasible nodes are scored by the configured strategy over CPU and memory.

use crate::config::ScoringStrategy;
use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection, ScorePlugin, MAX_NODE_SCORE};

pub const NAME: &str = "NodeResourcesFit";

#[derive(Debug, Default)]
pub struct NodeResourcesFit {
    pub strategy: ScoringStrategy,
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Rejection::resolvable(reasons))
        }
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Equal-weight average of the CPU and memory scores.
    fn score(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
        let want = &pod.non_zero_requests;
        let have = &node.non_zero_requested;
        let per_resource = [
            (want.milli_cpu + have.milli_cpu, node.allocatable.milli_cpu),
            (want.memory + have.memory, node.allocatable.memory),
        ];
        let total: i64 = per_resource
            .iter()
            .map(|&(requested, capacity)| self.strategy.score(requested, capacity))
            .sum();
        total / per_resource.len() as i64
    }
}

impl ScoringStrategy {
    /// One resource's score from what would be requested after placing the pod.
    fn score(self, requested: i64, capacity: i64) -> i64 {
        if capacity <= 0 {
            return 0;
        }
        match self {
            // Spreads: the more left free, the better.
            ScoringStrategy::LeastAllocated => {
                if requested > capacity {
                    0
                } else {
                    (capacity - requested) * MAX_NODE_SCORE / capacity
                }
            }
            // Packs: the fuller, the better.
            ScoringStrategy::MostAllocated => requested.min(capacity) * MAX_NODE_SCORE / capacity,
        }
    }
}

/// Upstream-worded reasons the pod does not fit, in upstream's order.
fn insufficient(pod: &PodInfo<'_>, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pod_count + 1 > node.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    let want = &pod.requests;
    if want.is_zero() {
        return reasons;
    }
    let free = |allocatable: i64, requested: i64| allocatable - requested;
    let alloc = &node.allocatable;
    let used = &node.requested;
    if want.milli_cpu > 0 && want.milli_cpu > free(alloc.milli_cpu, used.milli_cpu) {
        reasons.push("Insufficient cpu".to_string());
    }
    if want.memory > 0 && want.memory > free(alloc.memory, used.memory) {
        reasons.push("Insufficient memory".to_string());
    }
    if want.ephemeral_storage > 0
        && want.ephemeral_storage > free(alloc.ephemeral_storage, used.ephemeral_storage)
    {
        reasons.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, &amount) in &want.scalar {
        let allocatable = alloc.scalar.get(name).copied().unwrap_or(0);
        let requested = used.scalar.get(name).copied().unwrap_or(0);
        if amount > 0 && amount > free(allocatable, requested) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;
    use crate::testing::{bound, container, node, pod, quantities};

    fn node_with(pods: &[Pod], allocatable: &[(&str, &str)]) -> NodeInfo {
        let mut n = node("a", "0", "0");
        n.status.as_mut().expect("status").allocatable = Some(quantities(allocatable));
        let mut info = NodeInfo::new(n);
        for p in pods {
            info.add_pod(p);
        }
        info
    }

    fn check(p: &Pod, n: &NodeInfo) -> Result<(), Rejection> {
        NodeResourcesFit::default().filter(&PodInfo::new(p), n)
    }

    #[test]
    fn fits_into_what_is_left() {
        let busy = bound(
            pod(
                "busy",
                vec![container(&[("cpu", "1500m"), ("memory", "1Gi")])],
            ),
            "a",
        );
        let n = node_with(&[busy], &[("cpu", "2"), ("memory", "2Gi"), ("pods", "10")]);
        assert!(check(
            &pod("p", vec![container(&[("cpu", "500m"), ("memory", "1Gi")])]),
            &n
        )
        .is_ok());
        assert_eq!(
            check(
                &pod(
                    "p",
                    vec![container(&[("cpu", "501m"), ("memory", "1025Mi")])]
                ),
                &n
            ),
            Err(Rejection::resolvable(vec![
                "Insufficient cpu".into(),
                "Insufficient memory".into()
            ]))
        );
    }

    #[test]
    fn pod_count_is_checked_even_without_requests() {
        let n = node_with(&[pod("x", vec![])], &[("cpu", "2"), ("pods", "1")]);
        assert_eq!(
            check(&pod("p", vec![]), &n),
            Err(Rejection::resolvable(vec!["Too many pods".into()]))
        );
        let n = node_with(&[], &[("cpu", "2")]);
        assert_eq!(
            check(&pod("p", vec![]), &n),
            Err(Rejection::resolvable(vec!["Too many pods".into()])),
            "no pods allocatable means no pods"
        );
    }

    #[test]
    fn extended_resources_and_ephemeral_storage() {
        let n = node_with(
            &[bound(
                pod("x", vec![container(&[("nvidia.com/gpu", "1")])]),
                "a",
            )],
            &[
                ("nvidia.com/gpu", "2"),
                ("ephemeral-storage", "10Gi"),
                ("pods", "10"),
            ],
        );
        assert!(check(&pod("p", vec![container(&[("nvidia.com/gpu", "1")])]), &n).is_ok());
        assert_eq!(
            check(
                &pod(
                    "p",
                    vec![container(&[
                        ("nvidia.com/gpu", "2"),
                        ("example.com/fpga", "1")
                    ])]
                ),
                &n
            ),
            Err(Rejection::resolvable(vec![
                "Insufficient example.com/fpga".into(),
                "Insufficient nvidia.com/gpu".into()
            ]))
        );
        assert_eq!(
            check(
                &pod("p", vec![container(&[("ephemeral-storage", "11Gi")])]),
                &n
            ),
            Err(Rejection::resolvable(vec![
                "Insufficient ephemeral-storage".into()
            ]))
        );
    }

    #[test]
    fn init_containers_and_overhead_count() {
        let n = node_with(&[], &[("cpu", "1"), ("pods", "10")]);
        let mut p = pod("p", vec![container(&[("cpu", "100m")])]);
        p.spec.as_mut().expect("spec").init_containers = Some(vec![container(&[("cpu", "1")])]);
        assert!(check(&p, &n).is_ok());
        p.spec.as_mut().expect("spec").overhead = Some(quantities(&[("cpu", "1m")]));
        assert_eq!(
            check(&p, &n),
            Err(Rejection::resolvable(vec!["Insufficient cpu".into()]))
        );
    }

    #[test]
    fn least_allocated_prefers_free_nodes_and_most_allocated_full_ones() {
        let p = pod("p", vec![container(&[("cpu", "1"), ("memory", "1Gi")])]);
        let info = PodInfo::new(&p);
        let empty = node_with(&[], &[("cpu", "4"), ("memory", "4Gi"), ("pods", "10")]);
        let busy = node_with(
            &[bound(
                pod("x", vec![container(&[("cpu", "2"), ("memory", "2Gi")])]),
                "a",
            )],
            &[("cpu", "4"), ("memory", "4Gi"), ("pods", "10")],
        );
        let least = NodeResourcesFit {
            strategy: ScoringStrategy::LeastAllocated,
        };
        assert_eq!(least.score(&info, &empty), 75);
        assert_eq!(least.score(&info, &busy), 25);
        let most = NodeResourcesFit {
            strategy: ScoringStrategy::MostAllocated,
        };
        assert_eq!(most.score(&info, &empty), 25);
        assert_eq!(most.score(&info, &busy), 75);
    }

    #[test]
    fn scoring_uses_non_zero_defaults_and_handles_empty_capacity() {
        let p = pod("p", vec![container(&[])]);
        let info = PodInfo::new(&p);
        let n = node_with(&[], &[("cpu", "1"), ("memory", "2000Mi"), ("pods", "10")]);
        // cpu: (1000 - 100) * 100 / 1000 = 90; memory: (2000 - 200) * 100 / 2000 = 90
        assert_eq!(NodeResourcesFit::default().score(&info, &n), 90);
        let none = node_with(&[], &[("pods", "10")]);
        assert_eq!(NodeResourcesFit::default().score(&info, &none), 0);
        assert_eq!(ScoringStrategy::LeastAllocated.score(5, 4), 0);
        assert_eq!(ScoringStrategy::MostAllocated.score(5, 4), 100);
    }
}
