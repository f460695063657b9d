//! Node registration, the Lease heartbeat and NodeStatus reports.
//! One thing to know: nothing here ever gives up: every API failure is logged and retried
//! with back-off, so a node that lost its API server catches up as soon as it returns.

mod object;

pub use object::{new_node, node_conditions, node_labels, node_status, status_changed, MAX_PODS};

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::AgentConfig;
use crate::host::HostInfo;
use crate::runtime::{PodRuntime, RuntimeVersion};
use crate::AgentError;

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Keeps the Node, its status and its Lease up to date until `shutdown` flips to true.
pub(crate) struct NodeReporter {
    pub client: Client,
    pub config: Arc<AgentConfig>,
    pub host: Arc<dyn HostInfo>,
    pub runtime: Arc<dyn PodRuntime>,
}

impl NodeReporter {
    /// Registers the Node (retrying until it works), then heartbeats and reports status.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), AgentError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let mut retry = Retry::new(self.config.max_retry);
        let version = loop {
            match self.runtime.runtime_version().await {
                Ok(v) => break v,
                Err(e) => {
                    warn!(error = %e, "runtime version unavailable");
                    if sleep_or_shutdown(retry.next(), &mut shutdown).await {
                        return Ok(());
                    }
                }
            }
        };
        let mut reported: Option<NodeStatus> = None;
        let mut node_uid: Option<String> = None;
        let mut last_write = tokio::time::Instant::now();
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        let mut poll = tokio::time::interval(self.config.host_poll);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if node_uid.is_none() {
                match self.register(&nodes, &version).await {
                    Ok((uid, status)) => {
                        info!(node = %self.config.node_name, "node registered");
                        node_uid = Some(uid);
                        reported = Some(status);
                        last_write = tokio::time::Instant::now();
                        retry.reset();
                    }
                    Err(e) => {
                        warn!(node = %self.config.node_name, error = %e, "node registration failed");
                        if sleep_or_shutdown(retry.next(), &mut shutdown).await {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                _ = heartbeat.tick() => {
                    let uid = node_uid.clone().unwrap_or_default();
                    if let Err(e) = self.renew_lease(&leases, &uid).await {
                        warn!(node = %self.config.node_name, error = %e, "lease renewal failed");
                    }
                }
                _ = poll.tick() => {
                    let facts = self.host.facts();
                    let status = node_status(&self.config, &facts, &version, reported.as_ref(), Timestamp::now());
                    let due = last_write.elapsed() >= self.config.status_interval;
                    let changed = reported.as_ref().is_none_or(|old| status_changed(old, &status));
                    if due || changed {
                        match self.write_status(&nodes, &status).await {
                            Ok(()) => {
                                debug!(node = %self.config.node_name, changed, "node status written");
                                reported = Some(status);
                                last_write = tokio::time::Instant::now();
                            }
                            Err(kube::Error::Api(s)) if s.code == 404 => {
                                warn!(node = %self.config.node_name, "node vanished; registering again");
                                node_uid = None;
                            }
                            Err(e) => warn!(node = %self.config.node_name, error = %e, "node status write failed"),
                        }
                    }
                }
            }
        }
    }

    /// Creates the Node or adds our labels to an existing one, then writes its status.
    async fn register(
        &self,
        nodes: &Api<Node>,
        version: &RuntimeVersion,
    ) -> Result<(String, NodeStatus), kube::Error> {
        let facts = self.host.facts();
        let name = &self.config.node_name;
        let node = match nodes.get_opt(name).await? {
            Some(_) => {
                let labels = node_labels(&self.config, &facts);
                let patch = serde_json::json!({"metadata": {"labels": labels}});
                nodes
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?
            }
            None => {
                match nodes
                    .create(&PostParams::default(), &new_node(&self.config, &facts))
                    .await
                {
                    Ok(n) => n,
                    Err(kube::Error::Api(s)) if s.code == 409 => nodes.get(name).await?,
                    Err(e) => return Err(e),
                }
            }
        };
        let status = node_status(
            &self.config,
            &facts,
            version,
            node.status.as_ref(),
            Timestamp::now(),
        );
        self.write_status(nodes, &status).await?;
        Ok((node.metadata.uid.unwrap_or_default(), status))
    }

    async fn write_status(
        &self,
        nodes: &Api<Node>,
        status: &NodeStatus,
    ) -> Result<(), kube::Error> {
        let patch = serde_json::json!({ "status": status });
        nodes
            .patch_status(
                &self.config.node_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
    }

    /// Creates the Lease or moves its `renewTime` to now.
    async fn renew_lease(&self, leases: &Api<Lease>, node_uid: &str) -> Result<(), kube::Error> {
        let name = &self.config.node_name;
        let now = MicroTime(Timestamp::now());
        match leases.get_opt(name).await? {
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(name.clone());
                spec.lease_duration_seconds = Some(self.lease_seconds());
                spec.renew_time = Some(now);
                leases.replace(name, &PostParams::default(), &lease).await?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(LEASE_NAMESPACE.into()),
                        owner_references: (!node_uid.is_empty()).then(|| {
                            vec![OwnerReference {
                                api_version: "v1".into(),
                                kind: "Node".into(),
                                name: name.clone(),
                                uid: node_uid.into(),
                                ..OwnerReference::default()
                            }]
                        }),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(self.lease_seconds()),
                        renew_time: Some(now),
                        ..LeaseSpec::default()
                    }),
                };
                leases.create(&PostParams::default(), &lease).await?;
            }
        }
        debug!(node = %name, "lease renewed");
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(40)
    }
}

/// Exponential retry delay: 200 ms doubling up to a maximum.
pub(crate) struct Retry {
    next: Duration,
    max: Duration,
}

impl Retry {
    pub fn new(max: Duration) -> Self {
        Retry {
            next: Duration::from_millis(200),
            max,
        }
    }

    pub fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(200);
    }
}

/// Sleeps `d`; true when shutdown was asked for meanwhile.
pub(crate) async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
