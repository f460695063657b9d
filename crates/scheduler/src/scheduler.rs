//! The scheduling loop: watches Nodes and Pods, feeds pending pods through the queue and the
//! framework, and performs the effects (binding, events, `PodScheduled` condition).
//! Invariant: one pod is scheduled at a time, and a bound pod is *assumed* on its node until
//! the watch shows its `nodeName`, so consecutive decisions never double-book a node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::SchedulerConfig;
use crate::effects::{error_chain, Effects};
use crate::framework::{is_terminated, Framework, Snapshot};
use crate::plugins::default_binder;
use crate::queue::{PodKey, SchedulingQueue};
use crate::registry;

/// Assigns the pending pods whose `spec.schedulerName` is `config.name`.
pub struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
    framework: Framework,
    effects: Effects,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the {resource} watch ended")]
    WatchEnded { resource: &'static str },
    #[error("failed to bind pod {pod} to node {node}")]
    Bind {
        pod: PodKey,
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to record event {reason} for pod {pod}")]
    Event {
        pod: PodKey,
        reason: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("failed to update the status of pod {pod}")]
    Status {
        pod: PodKey,
        #[source]
        source: kube::Error,
    },
}

/// What the watches report to the loop.
enum Change {
    Node(Box<Node>),
    NodeDeleted(Box<Node>),
    Pod(Box<Pod>),
    PodDeleted(Box<Pod>),
}

impl Scheduler {
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Scheduler {
        let framework = registry::framework(&config);
        let effects = Effects {
            client: client.clone(),
            component: config.name.clone(),
        };
        Scheduler {
            client,
            config,
            framework,
            effects,
        }
    }

    /// Runs until `shutdown` resolves. Returns an error only if a watch ends unexpectedly.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SchedulerError> {
        let (nodes, node_writer) = reflector::store::<Node>();
        let (pods, pod_writer) = reflector::store::<Pod>();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let node_watch = tokio::spawn(forward(
            reflector::reflector(
                node_writer,
                watcher(
                    Api::<Node>::all(self.client.clone()),
                    watcher::Config::default(),
                )
                .default_backoff(),
            ),
            tx.clone(),
            |event| match event {
                watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                    Some(Change::Node(Box::new(n)))
                }
                watcher::Event::Delete(n) => Some(Change::NodeDeleted(Box::new(n))),
                _ => None,
            },
        ));
        let pod_watch = tokio::spawn(forward(
            reflector::reflector(
                pod_writer,
                watcher(
                    Api::<Pod>::all(self.client.clone()),
                    watcher::Config::default(),
                )
                .default_backoff(),
            ),
            tx,
            |event| match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    Some(Change::Pod(Box::new(p)))
                }
                watcher::Event::Delete(p) => Some(Change::PodDeleted(Box::new(p))),
                _ => None,
            },
        ));
        info!(
            scheduler = %self.config.name,
            plugins = ?self.framework.plugin_names(),
            "scheduler starting"
        );
        let mut state = LoopState {
            queue: SchedulingQueue::new(
                self.config.initial_backoff,
                self.config.max_backoff,
                self.config.unschedulable_timeout,
            ),
            assumed: HashMap::new(),
            node_fingerprints: HashMap::new(),
            nodes,
            pods,
        };
        let result = tokio::select! {
            () = shutdown => Ok(()),
            r = self.schedule_loop(&mut state, &mut rx) => r,
        };
        node_watch.abort();
        pod_watch.abort();
        info!(scheduler = %self.config.name, "scheduler stopped");
        result
    }

    async fn schedule_loop(
        &self,
        state: &mut LoopState,
        rx: &mut mpsc::UnboundedReceiver<Change>,
    ) -> Result<(), SchedulerError> {
        // Decisions need the full picture: wait for both initial lists.
        for ready in [
            state.nodes.wait_until_ready().await,
            state.pods.wait_until_ready().await,
        ] {
            ready.map_err(|_| SchedulerError::WatchEnded {
                resource: "initial list",
            })?;
        }
        loop {
            while let Ok(change) = rx.try_recv() {
                self.apply(state, change);
            }
            if let Some(key) = state.queue.pop(Instant::now()) {
                self.attempt(state, key).await;
                continue;
            }
            let deadline = state.queue.next_deadline();
            tokio::select! {
                change = rx.recv() => match change {
                    Some(change) => self.apply(state, change),
                    None => return Err(SchedulerError::WatchEnded { resource: "node and pod" }),
                },
                () = sleep_until(deadline) => {}
            }
        }
    }

    /// Folds one watch event into the queue and the assumed pods.
    fn apply(&self, state: &mut LoopState, change: Change) {
        match change {
            Change::Node(node) => {
                // Heartbeats rewrite the node every few seconds; only changes that can make
                // a pod fit are worth a retry.
                let name = node.metadata.name.clone().unwrap_or_default();
                let fingerprint = NodeFingerprint::of(&node);
                if state.node_fingerprints.get(&name) != Some(&fingerprint) {
                    state.node_fingerprints.insert(name, fingerprint);
                    state.queue.on_cluster_event();
                }
            }
            Change::NodeDeleted(node) => {
                let name = node.metadata.name.unwrap_or_default();
                state.node_fingerprints.remove(&name);
            }
            Change::Pod(pod) => {
                let key = pod_key(&pod);
                if self.is_pending_for_us(&pod) {
                    // A stale event for a pod we just bound must not requeue it.
                    if !state.assumed.contains_key(&key) {
                        state.queue.add(&key);
                    }
                    return;
                }
                state.queue.remove(&key);
                if node_name(&pod).is_some() {
                    state.assumed.remove(&key);
                    if is_terminated(&pod) {
                        state.queue.on_cluster_event();
                    }
                }
            }
            Change::PodDeleted(pod) => {
                let key = pod_key(&pod);
                state.queue.remove(&key);
                let was_assumed = state.assumed.remove(&key).is_some();
                if was_assumed || node_name(&pod).is_some() {
                    state.queue.on_cluster_event();
                }
            }
        }
    }

    /// One scheduling attempt for the pod at `key`.
    async fn attempt(&self, state: &mut LoopState, key: PodKey) {
        let Some(pod) = lookup(&state.pods, &key) else {
            state.queue.remove(&key);
            return;
        };
        if !self.is_pending_for_us(&pod) || state.assumed.contains_key(&key) {
            state.queue.remove(&key);
            return;
        }
        let snapshot = state.snapshot();
        match self.framework.schedule_one(&pod, &snapshot) {
            Ok(node) => match default_binder::bind(&self.client, &pod, &node).await {
                Ok(()) => {
                    info!(pod = %key, node = %node, "pod bound");
                    let mut placed = (*pod).clone();
                    if let Some(spec) = placed.spec.as_mut() {
                        spec.node_name = Some(node.clone());
                    }
                    state.assumed.insert(key.clone(), Arc::new(placed));
                    state.queue.remove(&key);
                    let message = format!("Successfully assigned {key} to {node}");
                    self.effects
                        .record(&pod, "Normal", "Scheduled", &message)
                        .await;
                    self.effects.mark_scheduled(&pod).await;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    // Already assigned, or being deleted: nothing left to do for this pod.
                    info!(pod = %key, node = %node, reason = %status.message, "binding refused");
                    state.queue.remove(&key);
                }
                Err(source) => {
                    let err = SchedulerError::Bind {
                        pod: key.clone(),
                        node: node.clone(),
                        source,
                    };
                    warn!(pod = %key, error = %error_chain(&err), "binding failed");
                    let message = format!("Binding rejected: {}", error_chain(&err));
                    self.effects
                        .record(&pod, "Warning", "FailedScheduling", &message)
                        .await;
                    state.queue.backoff(&key, Instant::now());
                }
            },
            Err(fit) => {
                info!(pod = %key, reason = %fit, "pod unschedulable");
                self.effects
                    .record(&pod, "Warning", "FailedScheduling", &fit.to_string())
                    .await;
                self.effects.mark_unschedulable(&pod, &fit).await;
                state.queue.unschedulable(&key, Instant::now());
            }
        }
    }

    fn is_pending_for_us(&self, pod: &Pod) -> bool {
        pending_for(pod, &self.config.name)
    }
}

/// The loop's mutable state: the queue, the pods bound but not yet seen bound, and the caches.
struct LoopState {
    queue: SchedulingQueue,
    assumed: HashMap<PodKey, Arc<Pod>>,
    /// What each node looked like at its last relevant change.
    node_fingerprints: HashMap<String, NodeFingerprint>,
    nodes: Store<Node>,
    pods: Store<Pod>,
}

/// The parts of a Node that the filters read; a change in any of them may let a pod fit.
/// Condition timestamps (heartbeats) are left out.
#[derive(Debug, PartialEq, Eq)]
struct NodeFingerprint {
    labels: Option<std::collections::BTreeMap<String, String>>,
    unschedulable: Option<bool>,
    taints: Vec<(String, Option<String>, String)>,
    allocatable: Option<std::collections::BTreeMap<String, String>>,
    conditions: Vec<(String, String)>,
}

impl NodeFingerprint {
    fn of(node: &Node) -> NodeFingerprint {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        NodeFingerprint {
            labels: node.metadata.labels.clone(),
            unschedulable: spec.and_then(|s| s.unschedulable),
            taints: spec
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .map(|t| (t.key.clone(), t.value.clone(), t.effect.clone()))
                .collect(),
            allocatable: status
                .and_then(|s| s.allocatable.as_ref())
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()),
            conditions: status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
        }
    }
}

impl LoopState {
    /// The cached nodes and pods, with assumed pods in place of their unbound cached copies.
    fn snapshot(&self) -> Snapshot {
        let mut pods: Vec<Arc<Pod>> = Vec::new();
        let mut pending_assumed = self.assumed.clone();
        for pod in self.pods.state() {
            match pending_assumed.remove(&pod_key(&pod)) {
                Some(assumed) if node_name(&pod).is_none() => pods.push(assumed),
                _ => pods.push(pod),
            }
        }
        pods.extend(pending_assumed.into_values());
        let nodes = self
            .nodes
            .state()
            .iter()
            .map(|n| (**n).clone())
            .collect::<Vec<_>>();
        debug!(nodes = nodes.len(), pods = pods.len(), "snapshot taken");
        Snapshot::new(nodes, pods)
    }
}

/// Forwards a watch stream's events as `Change`s until the loop goes away.
async fn forward<K, S>(
    stream: S,
    tx: mpsc::UnboundedSender<Change>,
    map: impl Fn(watcher::Event<K>) -> Option<Change>,
) where
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Some(change) = map(event) {
                    if tx.send(change).is_err() {
                        return;
                    }
                }
            }
            // The stream backs off and re-lists by itself.
            Err(err) => warn!(error = %err, "watch failed"),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Whether `pod` waits for the scheduler named `scheduler`: ours by `spec.schedulerName`
/// (defaulted to `default-scheduler`), not yet assigned, not deleting, not finished.
fn pending_for(pod: &Pod, scheduler: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.scheduler_name
        .as_deref()
        .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
        == scheduler
        && node_name(pod).is_none()
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminated(pod)
}

fn lookup(pods: &Store<Pod>, key: &str) -> Option<Arc<Pod>> {
    let (namespace, name) = key.split_once('/')?;
    pods.get(&ObjectRef::new(name).within(namespace))
}

pub(crate) fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::testing::{bound, container, node, pod};

    #[test]
    fn pending_means_ours_unassigned_and_alive() {
        let p = pod("p", vec![]);
        assert!(
            pending_for(&p, "default-scheduler"),
            "schedulerName defaults"
        );
        assert!(!pending_for(&p, "other"));
        let mut named = p.clone();
        named.spec.as_mut().expect("spec").scheduler_name = Some("other".into());
        assert!(pending_for(&named, "other"));
        assert!(!pending_for(&bound(p.clone(), "n"), "default-scheduler"));
        let mut deleting = p.clone();
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!pending_for(&deleting, "default-scheduler"));
        let mut failed = p;
        failed.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        assert!(!pending_for(&failed, "default-scheduler"));
    }

    #[test]
    fn snapshot_counts_assumed_pods_until_the_watch_catches_up() {
        let (nodes, mut node_writer) = reflector::store::<Node>();
        let (pods, mut pod_writer) = reflector::store::<Pod>();
        node_writer.apply_watcher_event(&watcher::Event::Apply(node("a", "4", "4Gi")));
        let unbound = pod("p", vec![container(&[("cpu", "1")])]);
        pod_writer.apply_watcher_event(&watcher::Event::Apply(unbound.clone()));
        let mut state = LoopState {
            queue: SchedulingQueue::new(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(60),
            ),
            assumed: HashMap::new(),
            node_fingerprints: HashMap::new(),
            nodes,
            pods,
        };
        assert_eq!(state.snapshot().nodes()[0].requested.milli_cpu, 0);
        let placed = bound(unbound, "a");
        state
            .assumed
            .insert("default/p".into(), Arc::new(placed.clone()));
        assert_eq!(state.snapshot().nodes()[0].requested.milli_cpu, 1000);
        // Once the watch shows the binding, the cached copy counts, exactly once.
        pod_writer.apply_watcher_event(&watcher::Event::Apply(placed));
        assert_eq!(state.snapshot().nodes()[0].requested.milli_cpu, 1000);
        assert_eq!(state.snapshot().nodes()[0].pod_count, 1);
    }

    #[test]
    fn heartbeats_do_not_change_the_fingerprint() {
        let n = node("a", "4", "4Gi");
        let mut beat = n.clone();
        if let Some(c) = beat
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_heartbeat_time = Some(Time(Timestamp::UNIX_EPOCH));
        }
        assert_eq!(NodeFingerprint::of(&n), NodeFingerprint::of(&beat));
        let mut cordoned = n.clone();
        cordoned
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        assert_ne!(NodeFingerprint::of(&n), NodeFingerprint::of(&cordoned));
        let bigger = node("a", "8", "4Gi");
        assert_ne!(NodeFingerprint::of(&n), NodeFingerprint::of(&bigger));
        let mut not_ready = n.clone();
        if let Some(c) = not_ready
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.status = "False".into();
        }
        assert_ne!(NodeFingerprint::of(&n), NodeFingerprint::of(&not_ready));
    }

    #[test]
    fn error_chain_joins_sources() {
        let err = SchedulerError::Status {
            pod: "ns/p".into(),
            source: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        assert!(error_chain(&err).starts_with("failed to update the status of pod ns/p: "));
    }
}
