//! Starting one container: pull its image, build its environment and argv, create and start
//! it in the sandbox, and record the outcome (events, waiting reasons, back-off).
//! One thing to know: every failure here lands in the container's record as a waiting
//! reason (`ErrImagePull`, `CreateContainerConfigError`, `RunContainerError`) rather than
//! an error return; the next sync retries once its back-off allows.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use tracing::{info, warn};

use super::backoff::{go_duration, next_backoff, pull_backoff};
use super::command::{expand, merge_argv};
use super::env::{referenced_sources, resolve_env, EnvError, EnvSources};
use super::resources::container_resources;
use super::security::container_security;
use super::state::{ContainerRecord, Instance, Waiting};
use super::worker::PodWorker;
use crate::events::EventType;
use crate::runtime::{
    ContainerSpec, ContainerState, PullError, PullPolicy, PullSecret, LABEL_CONTAINER_NAME,
    LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_RESTART_COUNT,
};

impl PodWorker {
    /// Pulls, prepares and starts container `name`; the outcome is written to its record.
    pub(super) async fn start_container(&mut self, name: &str) {
        let Some(c) = self.container(name) else {
            return;
        };
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let image = c.image.clone().unwrap_or_default();
        let Some(pulled) = self.pull(&c, &image).await else {
            return;
        };
        let env = match self.environment(&c, &pulled.config.env).await {
            Ok(Ok(env)) => env,
            Ok(Err(e)) => {
                self.fail_create(name, "CreateContainerConfigError", e.to_string())
                    .await;
                return;
            }
            Err(e) => {
                // The API server is unreachable: not the pod's fault; retry on the next sync.
                warn!(pod = %self.key, container = name, error = %e, "env sources unavailable");
                return;
            }
        };
        let security = match container_security(&self.pod, &c, pulled.config.user.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                self.fail_create(name, "CreateContainerConfigError", e.to_string())
                    .await;
                return;
            }
        };
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let argv: Vec<String> = merge_argv(
            &pulled.config.entrypoint,
            &pulled.config.cmd,
            c.command.as_deref(),
            c.args.as_deref(),
        )
        .iter()
        .map(|a| expand(a, &vars))
        .collect();
        if argv.is_empty() {
            self.fail_create(name, "CreateContainerError", "no command specified".into())
                .await;
            return;
        }
        let rec = self.records.entry(name.to_string()).or_default();
        let restart_count = rec.restart_count + u32::from(rec.current.is_some());
        let spec = ContainerSpec {
            name: name.to_string(),
            image: image.clone(),
            image_id: pulled.image_id.clone(),
            argv,
            env,
            working_dir: c
                .working_dir
                .clone()
                .or(pulled.config.working_dir.clone())
                .filter(|w| !w.is_empty()),
            user: pulled.config.user.clone().filter(|u| !u.is_empty()),
            security,
            resources: container_resources(&c),
            tty: c.tty.unwrap_or(false),
            stdin: c.stdin.unwrap_or(false),
            restart_count,
            labels: self.labels(name, restart_count),
        };
        match self
            .ctx
            .runtime
            .start_container(sandbox.id.clone(), spec)
            .await
        {
            Ok(id) => {
                let state = match self.ctx.runtime.container_state(id.clone()).await {
                    Ok(s) => s,
                    Err(_) => ContainerState::Running {
                        started_at: Timestamp::now(),
                    },
                };
                let rec = self.records.entry(name.to_string()).or_default();
                let old = rec.current.replace(Instance {
                    id: id.clone(),
                    state,
                    exit_handled: false,
                });
                rec.restart_count = restart_count;
                rec.image_id = Some(pulled.image_id.clone());
                rec.restart_at = None;
                rec.waiting = None;
                if let Some(old) = old {
                    rec.last_terminated = Some(old.state);
                    if let Err(e) = self.ctx.runtime.remove_container(old.id).await {
                        warn!(pod = %self.key, container = name, error = %e, "old instance not removed");
                    }
                }
                info!(pod = %self.key, container = name, id = %id.0, restart_count, "container started");
                self.event(
                    Some(name),
                    EventType::Normal,
                    "Created",
                    format!("Created container: {name}"),
                )
                .await;
                self.event(
                    Some(name),
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                )
                .await;
            }
            Err(e) => {
                self.fail_create(name, "RunContainerError", e.to_string())
                    .await;
                let cfg = self.ctx.config.restart_backoff;
                let rec = self.records.entry(name.to_string()).or_default();
                let (_, next) = next_backoff(rec.backoff, std::time::Duration::ZERO, &cfg);
                let wait = rec.backoff.unwrap_or(cfg.initial);
                rec.backoff = Some(next);
                let now = Timestamp::now();
                rec.restart_at = Some((now.checked_add(wait).unwrap_or(now), wait));
            }
        }
    }

    /// Pulls the image (events Pulling/Pulled/Failed); `None` after a failure.
    async fn pull(&mut self, c: &Container, image: &str) -> Option<crate::runtime::PulledImage> {
        let name = c.name.clone();
        let policy = PullPolicy::from_spec(c.image_pull_policy.as_deref(), image);
        let first = !self.pulled.contains_key(&name);
        if policy == PullPolicy::Always || (first && policy != PullPolicy::Never) {
            self.event(
                Some(&name),
                EventType::Normal,
                "Pulling",
                format!("Pulling image {image:?}"),
            )
            .await;
        }
        let secrets = self.pull_secrets().await;
        let started = std::time::Instant::now();
        match self
            .ctx
            .images
            .pull(image.to_string(), policy, secrets)
            .await
        {
            Ok(pulled) => {
                let message = if pulled.already_present {
                    format!("Container image {image:?} already present on machine")
                } else {
                    format!(
                        "Successfully pulled image {image:?} in {}",
                        go_duration(started.elapsed())
                    )
                };
                self.event(Some(&name), EventType::Normal, "Pulled", message)
                    .await;
                let rec = self.records.entry(name.clone()).or_default();
                rec.pull_failures = 0;
                rec.pull_retry_at = None;
                rec.waiting = None;
                rec.image_id = Some(pulled.image_id.clone());
                self.pulled.insert(name, pulled.clone());
                Some(pulled)
            }
            Err(e) => {
                let reason = match &e {
                    PullError::NeverPull { .. } => "ErrImageNeverPull",
                    PullError::InvalidReference { .. } => "InvalidImageName",
                    _ => "ErrImagePull",
                };
                warn!(pod = %self.key, container = %name, error = %e, "image pull failed");
                let cfg = self.ctx.config.pull_backoff;
                let now = Timestamp::now();
                let rec = self.records.entry(name.clone()).or_default();
                rec.pull_failures += 1;
                let wait = pull_backoff(rec.pull_failures, &cfg);
                rec.pull_retry_at = Some(now.checked_add(wait).unwrap_or(now));
                rec.waiting = Some(Waiting {
                    reason: reason.into(),
                    message: e.to_string(),
                });
                self.event(
                    Some(&name),
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image {image:?}: {e}"),
                )
                .await;
                self.event(
                    Some(&name),
                    EventType::Warning,
                    "Failed",
                    format!("Error: {reason}"),
                )
                .await;
                None
            }
        }
    }

    /// Records a failure to create the container, with one event per distinct message.
    async fn fail_create(&mut self, name: &str, reason: &str, message: String) {
        let rec = self.records.entry(name.to_string()).or_default();
        let w = Waiting {
            reason: reason.into(),
            message: message.clone(),
        };
        if rec.waiting.as_ref() == Some(&w) {
            return;
        }
        rec.waiting = Some(w);
        warn!(pod = %self.key, container = name, reason, error = %message, "container not created");
        self.event(
            Some(name),
            EventType::Warning,
            "Failed",
            format!("Error: {message}"),
        )
        .await;
    }

    /// Resolves the container's env, fetching the ConfigMaps and Secrets it names; the
    /// outer error is a failed API call (absent objects are the inner error).
    async fn environment(
        &self,
        c: &Container,
        image_env: &[String],
    ) -> Result<Result<Vec<(String, String)>, EnvError>, kube::Error> {
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let (cm_names, secret_names) = referenced_sources(c);
        let mut src = EnvSources {
            host_ip: Some(self.host_ip.clone()),
            pod_ip: self.pod_ip(),
            node_cpu_millis: self.node_cpu_millis,
            node_memory_bytes: self.node_memory_bytes,
            ..EnvSources::default()
        };
        let cms: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &ns);
        for n in cm_names {
            if let Some(cm) = cms.get_opt(&n).await? {
                src.config_maps.insert(n, cm.data.unwrap_or_default());
            }
        }
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &ns);
        for n in secret_names {
            if let Some(s) = secrets.get_opt(&n).await? {
                src.secrets.insert(n, secret_strings(&s));
            }
        }
        Ok(resolve_env(&self.pod, c, image_env, &src))
    }

    /// The dockerconfigjson secrets of `imagePullSecrets` that exist.
    async fn pull_secrets(&self) -> Vec<PullSecret> {
        let refs = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default();
        if refs.is_empty() {
            return Vec::new();
        }
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &ns);
        let mut out = Vec::new();
        for r in refs {
            if let Ok(Some(s)) = api.get_opt(&r.name).await {
                if let Some(b) = s.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) {
                    out.push(PullSecret {
                        name: r.name.clone(),
                        dockerconfigjson: b.0.clone(),
                    });
                }
            }
        }
        out
    }

    /// The identity labels of one container instance.
    fn labels(&self, name: &str, restart_count: u32) -> BTreeMap<String, String> {
        let m = &self.pod.metadata;
        BTreeMap::from([
            (LABEL_POD_UID.to_string(), self.uid.clone()),
            (
                LABEL_POD_NAME.to_string(),
                m.name.clone().unwrap_or_default(),
            ),
            (
                LABEL_POD_NAMESPACE.to_string(),
                m.namespace.clone().unwrap_or_default(),
            ),
            (LABEL_CONTAINER_NAME.to_string(), name.to_string()),
            (LABEL_RESTART_COUNT.to_string(), restart_count.to_string()),
        ])
    }
}

/// A Secret's data and stringData as strings (lossy for non-UTF-8 values).
fn secret_strings(s: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(s.string_data.clone().unwrap_or_default());
    out
}

/// Marks the record's pull failure as a back-off once it was reported.
pub(super) fn pull_backoff_waiting(rec: &mut ContainerRecord, image: &str, now: Timestamp) -> bool {
    let in_backoff = rec.pull_retry_at.is_some_and(|t| t > now);
    match &rec.waiting {
        Some(w) if in_backoff && w.reason == "ErrImagePull" => {
            rec.waiting = Some(Waiting {
                reason: "ImagePullBackOff".into(),
                message: format!("Back-off pulling image {image:?}"),
            });
            true
        }
        _ => false,
    }
}
