//! One pod's worker: keeps its sandbox and containers matching the spec, reports status and
//! carries out deletion.
//! One thing to know: the worker is the only writer of its pod's status and the only caller
//! of the runtime for its pod; it reads the latest Pod from a `watch` channel (`None` once
//! the pod is gone) and re-syncs on every change and every `pod_sync` period.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::Client;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::adopt::Adopted;
use super::start::pull_backoff_waiting;
use super::state::{on_exit, plan, restart_policy, ContainerRecord};
use super::status::{pod_status, StatusContext};
use crate::config::AgentConfig;
use crate::events::{EventType, Recorder};
use crate::host::HostInfo;
use crate::node::{sleep_or_shutdown, Retry};
use crate::runtime::{
    ContainerId, ContainerState, ImagePuller, PodRuntime, PulledImage, RuntimeError, SandboxInfo,
    SandboxSpec, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
};

/// What every worker shares.
pub(crate) struct WorkerContext {
    pub client: Client,
    pub config: Arc<AgentConfig>,
    pub runtime: Arc<dyn PodRuntime>,
    pub images: Arc<dyn ImagePuller>,
    pub host: Arc<dyn HostInfo>,
    pub recorder: Recorder,
}

/// The state of one pod's worker.
pub(crate) struct PodWorker {
    pub(super) ctx: Arc<WorkerContext>,
    pub(super) pod: Pod,
    pub(super) uid: String,
    /// `namespace/name`, for logs.
    pub(super) key: String,
    pub(super) sandbox: Option<SandboxInfo>,
    pub(super) records: BTreeMap<String, ContainerRecord>,
    pub(super) pulled: HashMap<String, PulledImage>,
    pub(super) reported: Option<PodStatus>,
    /// Set once deletion began: statuses from then on are final.
    pub(super) terminating: bool,
    pub(super) host_ip: String,
    pub(super) node_cpu_millis: u64,
    pub(super) node_memory_bytes: u64,
}

/// Runs a worker until its pod is gone (deleted by us or by someone else) or shutdown.
pub(crate) async fn run_worker(
    ctx: Arc<WorkerContext>,
    mut pods: watch::Receiver<Option<Pod>>,
    adopted: Adopted,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(pod) = pods.borrow().clone() else {
        return;
    };
    let mut w = PodWorker::new(ctx, pod, adopted).await;
    loop {
        let latest = pods.borrow_and_update().clone();
        match latest {
            None => {
                w.cleanup(Duration::ZERO).await;
                return;
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                w.pod = p;
                w.terminate(&mut shutdown).await;
                return;
            }
            Some(p) => {
                w.pod = p;
                w.sync().await;
            }
        }
        tokio::select! {
            changed = pods.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(w.ctx.config.pod_sync) => {}
            _ = shutdown.changed() => return,
        }
    }
}

impl PodWorker {
    async fn new(ctx: Arc<WorkerContext>, pod: Pod, adopted: Adopted) -> PodWorker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        let facts = ctx.host.facts();
        for id in adopted.surplus_containers {
            info!(pod = %key, id = %id.0, "removing duplicate container");
            let _ = ctx.runtime.stop_container(id.clone(), Duration::ZERO).await;
            let _ = ctx.runtime.remove_container(id).await;
        }
        for s in adopted.surplus_sandboxes {
            let _ = ctx.runtime.stop_sandbox(s.id).await;
        }
        if !adopted.records.is_empty() {
            info!(pod = %key, containers = adopted.records.len(), "re-adopted containers");
        }
        PodWorker {
            reported: pod.status.clone(),
            ctx,
            uid,
            key,
            sandbox: adopted.sandbox,
            records: adopted.records,
            pulled: HashMap::new(),
            terminating: false,
            host_ip: facts.internal_ip.to_string(),
            node_cpu_millis: u64::from(facts.cpus) * 1000,
            node_memory_bytes: facts.memory_bytes,
            pod,
        }
    }

    /// One pass: observe containers, start what should run, report status.
    pub(super) async fn sync(&mut self) {
        let now = Timestamp::now();
        self.refresh().await;
        let terminal = matches!(
            self.reported.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if !terminal {
            if self.sandbox.is_none() {
                self.start_sandbox().await;
            }
            if self.sandbox.is_some() {
                let mut view = self.pod.clone();
                view.status = self.reported.clone();
                for (name, _init) in plan(&view, &self.records, now) {
                    self.start_container(&name).await;
                }
            }
        }
        self.report().await;
    }

    /// Reads each live container's state and schedules restarts of the ones that exited.
    async fn refresh(&mut self) {
        let now = Timestamp::now();
        let policy = restart_policy(&self.pod).to_string();
        let cfg = self.ctx.config.restart_backoff;
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            let init = self.is_init(&name);
            let image = self
                .container(&name)
                .and_then(|c| c.image)
                .unwrap_or_default();
            let Some(rec) = self.records.get_mut(&name) else {
                continue;
            };
            if pull_backoff_waiting(rec, &image, now) {
                let message = format!("Back-off pulling image {image:?}");
                self.event(Some(&name), EventType::Normal, "BackOff", message)
                    .await;
                continue;
            }
            let Some(inst) = rec.current.clone() else {
                continue;
            };
            if !matches!(inst.state, ContainerState::Exited { .. }) {
                let state = match self.ctx.runtime.container_state(inst.id.clone()).await {
                    Ok(s) if s != ContainerState::Unknown => s,
                    Err(RuntimeError::NoSuchContainer(_)) | Ok(_) => ContainerState::Exited {
                        exit_code: 137,
                        reason: Some("ContainerStatusUnknown".into()),
                        message: Some("the container could not be located".into()),
                        started_at: None,
                        finished_at: now,
                    },
                    Err(e) => {
                        warn!(pod = %self.key, container = %name, error = %e, "container state unavailable");
                        continue;
                    }
                };
                if let Some(cur) = rec.current.as_mut() {
                    cur.state = state;
                }
            }
            let before = rec.restart_at;
            on_exit(rec, &policy, init, &cfg);
            if let Some((at, wait)) = rec.restart_at.filter(|r| Some(*r) != before) {
                if at > now && !wait.is_zero() {
                    let message = format!(
                        "Back-off restarting failed container {name} in pod {}",
                        self.pod_ref()
                    );
                    self.event(Some(&name), EventType::Warning, "BackOff", message)
                        .await;
                }
            }
        }
    }

    async fn start_sandbox(&mut self) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let m = &self.pod.metadata;
        let name = m.name.clone().unwrap_or_default();
        let sandbox = SandboxSpec {
            pod_uid: self.uid.clone(),
            pod_name: name.clone(),
            namespace: m.namespace.clone().unwrap_or_default(),
            hostname: spec.hostname.clone().unwrap_or(name),
            host_network: spec.host_network.unwrap_or(false),
            share_process_namespace: spec.share_process_namespace.unwrap_or(false),
            labels: BTreeMap::from([
                (LABEL_POD_UID.to_string(), self.uid.clone()),
                (
                    LABEL_POD_NAME.to_string(),
                    m.name.clone().unwrap_or_default(),
                ),
                (
                    LABEL_POD_NAMESPACE.to_string(),
                    m.namespace.clone().unwrap_or_default(),
                ),
            ]),
        };
        match self.ctx.runtime.run_sandbox(sandbox).await {
            Ok(s) => {
                debug!(pod = %self.key, sandbox = %s.id.0, "sandbox started");
                self.sandbox = Some(s);
            }
            Err(e) => {
                warn!(pod = %self.key, error = %e, "sandbox not started");
                let message = format!("Failed to create pod sandbox: {e}");
                self.event(None, EventType::Warning, "FailedCreatePodSandBox", message)
                    .await;
            }
        }
    }

    /// Computes the status and writes it when it changed.
    async fn report(&mut self) {
        let mut view = self.pod.clone();
        view.status = self.reported.clone().or(view.status);
        let ctx = StatusContext {
            host_ip: Some(self.host_ip.clone()),
            pod_ip: self.pod_ip(),
            sandbox_ready: self.sandbox.is_some(),
            terminating: self.terminating,
            now: Some(Timestamp::now()),
        };
        let status = pod_status(&view, &self.records, &ctx);
        if self.reported.as_ref() == Some(&status) {
            return;
        }
        let mut body = serde_json::json!({ "status": status });
        // Merge patch keeps fields it does not mention; clear the ones we never set.
        body["status"]["reason"] = serde_json::Value::Null;
        body["status"]["message"] = serde_json::Value::Null;
        if status.pod_ip.is_none() {
            body["status"]["podIP"] = serde_json::Value::Null;
            body["status"]["podIPs"] = serde_json::Value::Null;
        }
        let api: Api<Pod> = self.pods_api();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => {
                debug!(pod = %self.key, phase = ?status.phase, "pod status written");
                self.reported = Some(status);
            }
            Err(e) => warn!(pod = %self.key, error = %e, "pod status not written"),
        }
    }

    /// Graceful deletion: stop containers within the grace period, remove everything, then
    /// delete the Pod object (grace 0, uid precondition).
    async fn terminate(&mut self, shutdown: &mut watch::Receiver<bool>) {
        let grace = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        info!(pod = %self.key, grace, "terminating pod");
        self.terminating = true;
        self.stop_all(Duration::from_secs(u64::try_from(grace).unwrap_or(0)))
            .await;
        self.report().await;
        self.remove_all().await;
        let api = self.pods_api();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let mut retry = Retry::new(self.ctx.config.max_retry);
        loop {
            match api.delete(&name, &params).await {
                Ok(_) => {
                    info!(pod = %self.key, "pod deleted");
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
                Err(e) => {
                    warn!(pod = %self.key, error = %e, "pod delete failed");
                    if sleep_or_shutdown(retry.next(), shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Stops every container (Killing events), removes them and the sandbox.
    async fn cleanup(&mut self, grace: Duration) {
        self.stop_all(grace).await;
        self.remove_all().await;
    }

    /// Stops every running container within `grace` and records their final states.
    async fn stop_all(&mut self, grace: Duration) {
        let mut live = Vec::new();
        for (name, rec) in &self.records {
            if let Some(inst) = &rec.current {
                let running = !matches!(inst.state, ContainerState::Exited { .. });
                live.push((name.clone(), inst.id.clone(), running));
            }
        }
        for (name, _, running) in &live {
            if *running {
                let message = format!("Stopping container {name}");
                self.event(Some(name), EventType::Normal, "Killing", message)
                    .await;
            }
        }
        let runtime = self.ctx.runtime.clone();
        join_all(live.iter().filter(|l| l.2).map(|(name, id, _)| {
            let runtime = runtime.clone();
            let key = self.key.clone();
            async move {
                if let Err(e) = runtime.stop_container(id.clone(), grace).await {
                    warn!(pod = %key, container = %name, error = %e, "container not stopped");
                }
            }
        }))
        .await;
        for rec in self.records.values_mut() {
            if let Some(inst) = rec.current.as_mut() {
                if let Ok(state) = runtime.container_state(inst.id.clone()).await {
                    inst.state = state;
                }
                rec.restart_at = None;
                rec.waiting = None;
            }
        }
    }

    /// Removes every container and the sandbox.
    async fn remove_all(&mut self) {
        let runtime = self.ctx.runtime.clone();
        let live: Vec<(String, ContainerId)> = self
            .records
            .iter()
            .filter_map(|(n, r)| Some((n.clone(), r.current.as_ref()?.id.clone())))
            .collect();
        for (name, id) in live {
            if let Err(e) = runtime.remove_container(id).await {
                warn!(pod = %self.key, container = %name, error = %e, "container not removed");
            }
        }
        self.records.clear();
        if let Some(s) = self.sandbox.take() {
            if let Err(e) = runtime.stop_sandbox(s.id).await {
                warn!(pod = %self.key, error = %e, "sandbox not removed");
            }
        }
    }

    pub(super) async fn event(
        &self,
        container: Option<&str>,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        self.ctx
            .recorder
            .pod_event(&self.pod, container, type_, reason, message)
            .await;
    }

    pub(super) fn container(&self, name: &str) -> Option<Container> {
        let spec = self.pod.spec.as_ref()?;
        spec.init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .find(|c| c.name == name)
            .cloned()
    }

    fn is_init(&self, name: &str) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.name == name))
    }

    /// The pod IP: the host's under hostNetwork, else the sandbox's (none while loopback-only).
    pub(super) fn pod_ip(&self) -> Option<String> {
        let host_network = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let sandbox = self.sandbox.as_ref()?;
        if host_network {
            Some(self.host_ip.clone())
        } else {
            sandbox.ip.map(|ip| ip.to_string())
        }
    }

    fn pod_ref(&self) -> String {
        let m = &self.pod.metadata;
        format!(
            "{}_{}({})",
            m.name.as_deref().unwrap_or(""),
            m.namespace.as_deref().unwrap_or(""),
            self.uid
        )
    }

    fn pods_api(&self) -> Api<Pod> {
        let ns = self.pod.metadata.namespace.as_deref().unwrap_or("default");
        Api::namespaced(self.ctx.client.clone(), ns)
    }
}
