//! The scheduling framework: extension-point traits, the snapshot they read, and the pure
//! decision `Framework::schedule_one`. Invariant: nothing here does I/O or reads the clock, so
//! every decision is reproducible from a `(Pod, Snapshot)` pair.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::resources::{self, Resources};

/// Highest score a score plugin may give a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// Nodes and the requests of the pods already on them, as seen at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sorted by node name, so iteration and tie-breaking are deterministic.
    nodes: Vec<NodeInfo>,
}

/// One node and what is already placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Node,
    /// `status.allocatable` (zero when absent).
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
    /// Sum of the requests of the non-terminated pods bound to this node.
    pub requested: Resources,
    /// Same, with the non-zero defaults used by scoring.
    pub non_zero_requested: Resources,
    pub pod_count: i64,
}

impl NodeInfo {
    pub fn new(node: Node) -> NodeInfo {
        let allocatable_list = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        NodeInfo {
            allocatable: Resources::from_list(allocatable_list),
            allowed_pods: resources::allowed_pods(allocatable_list),
            node,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pod_count: 0,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    /// Accounts for a pod placed on this node.
    pub fn add_pod(&mut self, pod: &Pod) {
        self.requested.add(&resources::pod_requests(pod));
        self.non_zero_requested
            .add(&resources::pod_requests_non_zero(pod));
        self.pod_count += 1;
    }
}

impl Snapshot {
    /// Builds a snapshot from nodes and pods; pods count on the node named by `spec.nodeName`
    /// unless they are terminated (`Succeeded`/`Failed`), like the kube-scheduler cache.
    pub fn new<P: Borrow<Pod>>(
        nodes: impl IntoIterator<Item = Node>,
        pods: impl IntoIterator<Item = P>,
    ) -> Snapshot {
        let mut nodes: Vec<NodeInfo> = nodes.into_iter().map(NodeInfo::new).collect();
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        for pod in pods {
            let pod = pod.borrow();
            if is_terminated(pod) {
                continue;
            }
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            if let Some(&i) = index.get(node) {
                nodes[i].add_pod(pod);
            }
        }
        Snapshot { nodes }
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }
}

/// Whether a pod has finished and no longer holds resources.
pub fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// What the framework computes once per pod and hands to every plugin.
#[derive(Debug)]
pub struct PodInfo<'a> {
    pub pod: &'a Pod,
    pub requests: Resources,
    pub non_zero_requests: Resources,
}

impl<'a> PodInfo<'a> {
    pub fn new(pod: &'a Pod) -> PodInfo<'a> {
        PodInfo {
            pod,
            requests: resources::pod_requests(pod),
            non_zero_requests: resources::pod_requests_non_zero(pod),
        }
    }
}

/// Why a plugin rejected a pod (for one node, or for all of them at pre-filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Upstream-worded reasons, e.g. `Insufficient cpu`.
    pub reasons: Vec<String>,
    /// Whether evicting pods could help (upstream `Unschedulable` as opposed to
    /// `UnschedulableAndUnresolvable`).
    pub resolvable: bool,
}

impl Rejection {
    pub fn unresolvable(reason: impl Into<String>) -> Rejection {
        Rejection {
            reasons: vec![reason.into()],
            resolvable: false,
        }
    }

    pub fn resolvable(reasons: Vec<String>) -> Rejection {
        Rejection {
            reasons,
            resolvable: true,
        }
    }
}

/// Runs once per pod before any node is looked at.
pub trait PreFilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn pre_filter(&self, pod: &PodInfo<'_>) -> Result<(), Rejection>;
}

/// Decides whether the pod can run on one node.
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection>;
}

/// Ranks a feasible node, from 0 to [`MAX_NODE_SCORE`].
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn score(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> i64;
}

/// Why no node was chosen. `Display` is the upstream-worded `FailedScheduling` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("no nodes available to schedule pods")]
    NoNodes,
    #[error("{}", fit_message(*.num_nodes, .pre_filter.as_ref(), .nodes))]
    Unschedulable {
        num_nodes: usize,
        /// Set when a pre-filter rejected the pod for every node.
        pre_filter: Option<Rejection>,
        /// Per node name, why it was filtered out.
        nodes: BTreeMap<String, Rejection>,
    },
}

/// A profile's plugins, in the order they run.
#[derive(Default)]
pub struct Framework {
    pub(crate) pre_filter: Vec<Box<dyn PreFilterPlugin>>,
    pub(crate) filter: Vec<Box<dyn FilterPlugin>>,
    /// Score plugins with their weights.
    pub(crate) score: Vec<(Box<dyn ScorePlugin>, i64)>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework")
            .field(
                "pre_filter",
                &self.pre_filter.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "filter",
                &self.filter.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "score",
                &self
                    .score
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Framework {
    /// Chooses a node for `pod`: pre-filter, filter every node, score the feasible ones, and
    /// take the highest total; equal totals go to the lexicographically smallest node name.
    pub fn schedule_one(&self, pod: &Pod, snapshot: &Snapshot) -> Result<String, FitError> {
        let nodes = snapshot.nodes();
        if nodes.is_empty() {
            return Err(FitError::NoNodes);
        }
        let info = PodInfo::new(pod);
        for plugin in &self.pre_filter {
            if let Err(rejection) = plugin.pre_filter(&info) {
                return Err(FitError::Unschedulable {
                    num_nodes: nodes.len(),
                    pre_filter: Some(rejection),
                    nodes: BTreeMap::new(),
                });
            }
        }
        let mut rejected = BTreeMap::new();
        let mut feasible = Vec::new();
        for node in nodes {
            match self
                .filter
                .iter()
                .try_for_each(|plugin| plugin.filter(&info, node))
            {
                Ok(()) => feasible.push(node),
                Err(rejection) => {
                    rejected.insert(node.name().to_string(), rejection);
                }
            }
        }
        // Nodes are sorted by name and `max_by_key` keeps the last maximum, so iterate in
        // reverse to let the smallest name win ties.
        feasible
            .iter()
            .rev()
            .max_by_key(|node| self.total_score(&info, node))
            .map(|node| node.name().to_string())
            .ok_or(FitError::Unschedulable {
                num_nodes: nodes.len(),
                pre_filter: None,
                nodes: rejected,
            })
    }

    fn total_score(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
        self.score
            .iter()
            .map(|(plugin, weight)| plugin.score(pod, node).clamp(0, MAX_NODE_SCORE) * weight)
            .sum()
    }

    /// Names of the plugins at each extension point, for logs.
    pub fn plugin_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .pre_filter
            .iter()
            .map(|p| p.name())
            .chain(self.filter.iter().map(|p| p.name()))
            .chain(self.score.iter().map(|(p, _)| p.name()))
            .collect();
        names.dedup();
        names
    }
}

/// Upstream's `FitError` wording: `0/N nodes are available: <sorted histogram>.` followed by
/// the preemption line, which tells apart nodes where evicting pods could help.
fn fit_message(
    num_nodes: usize,
    pre_filter: Option<&Rejection>,
    nodes: &BTreeMap<String, Rejection>,
) -> String {
    let mut msg = format!("0/{num_nodes} nodes are available:");
    let (not_helpful, no_victims) = match pre_filter {
        Some(rejection) => {
            msg.push_str(&format!(" {}.", rejection.reasons.join(", ")));
            if rejection.resolvable {
                (0, num_nodes)
            } else {
                (num_nodes, 0)
            }
        }
        None => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for rejection in nodes.values() {
                for reason in &rejection.reasons {
                    *counts.entry(reason.as_str()).or_default() += 1;
                }
            }
            msg.push_str(&format!(" {}.", histogram(counts)));
            let resolvable = nodes.values().filter(|r| r.resolvable).count();
            (nodes.len() - resolvable, resolvable)
        }
    };
    let mut preemption: BTreeMap<&str, usize> = BTreeMap::new();
    if no_victims > 0 {
        preemption.insert("No preemption victims found for incoming pod", no_victims);
    }
    if not_helpful > 0 {
        preemption.insert("Preemption is not helpful for scheduling", not_helpful);
    }
    msg.push_str(&format!(
        " preemption: 0/{num_nodes} nodes are available: {}.",
        histogram(preemption)
    ));
    msg
}

/// `"<count> <reason>"` entries sorted as strings (as upstream does), comma separated.
fn histogram(counts: BTreeMap<&str, usize>) -> String {
    let mut entries: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    entries.sort();
    entries.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bound, container, node, pod, with_taint};

    fn default_framework() -> Framework {
        crate::registry::framework(&crate::SchedulerConfig::default())
    }

    #[test]
    fn no_nodes_is_its_own_error() {
        let err = default_framework()
            .schedule_one(&pod("p", vec![]), &Snapshot::default())
            .expect_err("no nodes");
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn message_matches_upstream_wording() {
        let nodes = vec![
            node("a", "1", "1Gi"),
            with_taint(
                node("b", "8", "8Gi"),
                "node.kubernetes.io/not-ready",
                "",
                "NoExecute",
            ),
            with_taint(
                node("c", "8", "8Gi"),
                "node.kubernetes.io/not-ready",
                "",
                "NoSchedule",
            ),
        ];
        let p = pod("p", vec![container(&[("cpu", "2")])]);
        let err = default_framework()
            .schedule_one(&p, &Snapshot::new(nodes, Vec::<Pod>::new()))
            .expect_err("nothing fits");
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node.kubernetes.io/not-ready: }. preemption: 0/3 nodes are available: \
             1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn message_counts_every_reason_of_a_node() {
        let nodes = vec![node("a", "1", "1Gi"), node("b", "1", "1Gi")];
        let p = pod("p", vec![container(&[("cpu", "2"), ("memory", "2Gi")])]);
        let err = default_framework()
            .schedule_one(&p, &Snapshot::new(nodes, Vec::<Pod>::new()))
            .expect_err("nothing fits");
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory. \
             preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn histogram_sorts_as_strings_like_upstream() {
        let counts: BTreeMap<&str, usize> = [("b", 10), ("a", 2)].into();
        assert_eq!(histogram(counts), "10 b, 2 a");
    }

    #[test]
    fn pre_filter_rejection_replaces_per_node_reasons() {
        let msg = fit_message(
            2,
            Some(&Rejection::unresolvable(
                "node(s) didn't match Pod's node affinity/selector",
            )),
            &BTreeMap::new(),
        );
        assert_eq!(
            msg,
            "0/2 nodes are available: node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn picks_the_least_allocated_node_and_counts_existing_pods() {
        let nodes = vec![node("a", "4", "4Gi"), node("b", "4", "4Gi")];
        let existing = bound(pod("busy", vec![container(&[("cpu", "3")])]), "a");
        let p = pod("p", vec![container(&[("cpu", "500m")])]);
        let chosen = default_framework()
            .schedule_one(&p, &Snapshot::new(nodes, vec![existing]))
            .expect("fits");
        assert_eq!(chosen, "b");
    }

    #[test]
    fn ties_go_to_the_smallest_node_name() {
        let nodes = vec![
            node("c", "4", "4Gi"),
            node("a", "4", "4Gi"),
            node("b", "4", "4Gi"),
        ];
        let p = pod("p", vec![container(&[("cpu", "1")])]);
        let snapshot = Snapshot::new(nodes, Vec::<Pod>::new());
        for _ in 0..3 {
            assert_eq!(
                default_framework()
                    .schedule_one(&p, &snapshot)
                    .expect("fits"),
                "a"
            );
        }
    }

    #[test]
    fn most_allocated_packs_onto_the_busier_node() {
        let nodes = vec![node("a", "4", "4Gi"), node("b", "4", "4Gi")];
        let existing = bound(pod("busy", vec![container(&[("cpu", "2")])]), "b");
        let p = pod("p", vec![container(&[("cpu", "1")])]);
        let config = crate::SchedulerConfig {
            scoring: crate::ScoringStrategy::MostAllocated,
            ..Default::default()
        };
        let chosen = crate::registry::framework(&config)
            .schedule_one(&p, &Snapshot::new(nodes, vec![existing]))
            .expect("fits");
        assert_eq!(chosen, "b");
    }

    #[test]
    fn the_free_function_uses_the_default_profile() {
        let nodes = vec![
            with_taint(node("a", "8", "8Gi"), "dedicated", "db", "NoSchedule"),
            node("b", "1", "1Gi"),
        ];
        let p = pod("p", vec![container(&[("cpu", "500m")])]);
        let snapshot = Snapshot::new(nodes, Vec::<Pod>::new());
        assert_eq!(crate::schedule_one(&p, &snapshot).expect("fits"), "b");
    }

    #[test]
    fn a_node_is_reported_once_with_its_first_rejection() {
        let mut cordoned = with_taint(node("a", "1", "1Gi"), "k", "", "NoSchedule");
        cordoned
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        let p = pod("p", vec![container(&[("cpu", "2")])]);
        let err = default_framework()
            .schedule_one(&p, &Snapshot::new(vec![cordoned], Vec::<Pod>::new()))
            .expect_err("cordoned");
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 node(s) were unschedulable. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn terminated_and_foreign_pods_do_not_count() {
        let nodes = vec![node("a", "1", "1Gi")];
        let mut done = bound(pod("done", vec![container(&[("cpu", "1")])]), "a");
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let elsewhere = bound(pod("x", vec![container(&[("cpu", "1")])]), "gone");
        let unbound = pod("u", vec![container(&[("cpu", "1")])]);
        let snapshot = Snapshot::new(nodes, vec![done, elsewhere, unbound]);
        assert_eq!(snapshot.nodes()[0].requested.milli_cpu, 0);
        assert_eq!(snapshot.nodes()[0].pod_count, 0);
        let p = pod("p", vec![container(&[("cpu", "1")])]);
        assert_eq!(
            default_framework()
                .schedule_one(&p, &snapshot)
                .expect("fits"),
            "a"
        );
    }
}
