//! The agent's [`PodRuntime`] and [`ImagePuller`] over `gantry-runtime`: runc containers under
//! the shim, pause-process sandboxes, overlay root filesystems from the node's image store.
//!
//! One thing to know: the runtime crate knows nothing of pods, so this adapter keeps a small
//! record per sandbox and per container (`<dir>/sandboxes/*.json`, `<dir>/containers/*.json`)
//! holding the identity labels; re-adoption after an agent restart reads them back.

mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gantry_runtime::container::{
    self, ContainerConfig, Resources, Runc, RuncConfig, Sandbox, SandboxConfig, Seccomp, Security,
};
use gantry_runtime::image::{self, ImageStore, RegistryAuth};
use k8s_openapi::jiff::Timestamp;

use crate::runtime::{
    BoxFuture, ContainerId, ContainerInfo, ContainerSpec, ContainerState, ImageConfig, ImagePuller,
    Inventory, PodRuntime, PullError, PullPolicy, PullSecret, PulledImage, RuntimeError,
    RuntimeVersion, SandboxId, SandboxInfo, SandboxSpec, LABEL_CONTAINER_NAME, LABEL_POD_NAME,
    LABEL_POD_NAMESPACE, LABEL_POD_UID,
};
use records::{ContainerRecord, SandboxRecord};

/// Where the node's containers, sandboxes, logs and images live.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// `<data>/runtime`: shim state, records, root filesystems, logs.
    pub dir: PathBuf,
    /// The node's image store (`<data>/images`).
    pub images: PathBuf,
    /// This binary, re-executed as `gantry shim` and `gantry pause`.
    pub exe: PathBuf,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
}

/// Pods on runc.
pub struct OciRuntime {
    runc: Runc,
    images: Arc<ImageStore>,
    dir: PathBuf,
    exe: PathBuf,
}

impl OciRuntime {
    pub fn open(config: OciConfig) -> Result<Arc<OciRuntime>, RuntimeError> {
        for sub in ["shim", "sandboxes", "containers", "rootfs", "logs"] {
            std::fs::create_dir_all(config.dir.join(sub)).map_err(other)?;
        }
        let images = ImageStore::open_with(
            &config.images,
            image::ImageStoreConfig {
                insecure_registries: config.insecure_registries.clone(),
            },
        )
        .map_err(other)?;
        let runc = Runc::new(RuncConfig::new(
            config.dir.join("shim"),
            config.exe.clone(),
            vec!["shim".to_string()],
        ));
        Ok(Arc::new(OciRuntime {
            runc,
            images: Arc::new(images),
            dir: config.dir,
            exe: config.exe,
        }))
    }

    /// The log file of a container instance, for the log server.
    pub fn log_dir(&self, namespace: &str, pod: &str, pod_uid: &str, container: &str) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("{namespace}_{pod}_{pod_uid}"))
            .join(container)
    }

    /// Whether the newest instance of `container` in the pod is running.
    pub async fn is_running(&self, pod_uid: &str, container: &str) -> bool {
        let mut newest: Option<ContainerRecord> = None;
        for r in records::containers(&self.dir).unwrap_or_default() {
            if r.labels.get(LABEL_POD_UID).map(String::as_str) == Some(pod_uid)
                && r.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(container)
                && newest
                    .as_ref()
                    .is_none_or(|n| n.restart_count() < r.restart_count())
            {
                newest = Some(r);
            }
        }
        match newest {
            Some(r) => matches!(
                self.runc.state(&r.id).await,
                Ok(container::ContainerState::Running { .. })
            ),
            None => false,
        }
    }

    /// Runs `argv` in the newest running instance of `container` (for exec).
    pub async fn exec(
        &self,
        pod_uid: &str,
        container: &str,
        argv: &[String],
    ) -> Result<tokio::process::Child, RuntimeError> {
        let record = records::containers(&self.dir)
            .map_err(other)?
            .into_iter()
            .filter(|r| {
                r.labels.get(LABEL_POD_UID).map(String::as_str) == Some(pod_uid)
                    && r.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(container)
            })
            .max_by_key(ContainerRecord::restart_count)
            .ok_or_else(|| RuntimeError::NoSuchContainer(format!("{pod_uid}/{container}")))?;
        self.runc.exec(&record.id, argv, false).await.map_err(other)
    }

    fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.dir.join("rootfs").join(id)
    }
}

impl PodRuntime for OciRuntime {
    fn runtime_version(&self) -> BoxFuture<'_, Result<RuntimeVersion, RuntimeError>> {
        Box::pin(async move {
            let out = tokio::process::Command::new(&self.runc.config().runc_path)
                .arg("--version")
                .output()
                .await
                .map_err(other)?;
            let text = String::from_utf8_lossy(&out.stdout);
            let version = text
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or("unknown")
                .to_string();
            Ok(RuntimeVersion {
                name: "runc".to_string(),
                version,
            })
        })
    }

    fn run_sandbox(&self, spec: SandboxSpec) -> BoxFuture<'_, Result<SandboxInfo, RuntimeError>> {
        Box::pin(async move {
            let id = format!("sb-{}", spec.pod_uid);
            if let Some(existing) = records::sandbox(&self.dir, &id).map_err(other)? {
                if process_alive(existing.pid) {
                    return Ok(existing.info());
                }
            }
            let cfg = SandboxConfig {
                hostname: spec.hostname.clone(),
                host_network: spec.host_network,
                share_pid: spec.share_process_namespace,
                pause_exe: self.exe.clone(),
                pause_args: vec!["pause".to_string()],
            };
            let sandbox = tokio::task::spawn_blocking(move || Sandbox::start(&cfg))
                .await
                .map_err(other)?
                .map_err(|e| RuntimeError::Create {
                    message: e.to_string(),
                })?;
            let record = SandboxRecord {
                id: id.clone(),
                pid: sandbox.pid(),
                pod_uid: spec.pod_uid.clone(),
                host_network: spec.host_network,
                share_pid: spec.share_process_namespace,
                labels: spec.labels.clone(),
            };
            // The record owns the process from here (the handle has no destructor).
            records::save_sandbox(&self.dir, &record).map_err(other)?;
            Ok(record.info())
        })
    }

    fn stop_sandbox(&self, id: SandboxId) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            if let Some(record) = records::sandbox(&self.dir, &id.0).map_err(other)? {
                if process_alive(record.pid) {
                    let sandbox = Sandbox::adopt(record.pid, record.host_network, record.share_pid);
                    tokio::task::spawn_blocking(move || sandbox.stop())
                        .await
                        .map_err(other)?
                        .map_err(other)?;
                }
                records::remove_sandbox(&self.dir, &id.0).map_err(other)?;
                // The pod's parent cgroup; its containers' cgroups went with them.
                if !record.pod_uid.is_empty() {
                    container::remove_cgroup(&pod_cgroup(&record.pod_uid));
                }
            }
            Ok(())
        })
    }

    fn start_container(
        &self,
        sandbox: SandboxId,
        spec: ContainerSpec,
    ) -> BoxFuture<'_, Result<ContainerId, RuntimeError>> {
        Box::pin(async move {
            let record = records::sandbox(&self.dir, &sandbox.0)
                .map_err(other)?
                .ok_or_else(|| RuntimeError::NoSuchSandbox(sandbox.0.clone()))?;
            let pod_uid = spec.labels.get(LABEL_POD_UID).cloned().unwrap_or_default();
            let namespace = spec
                .labels
                .get(LABEL_POD_NAMESPACE)
                .cloned()
                .unwrap_or_default();
            let pod_name = spec.labels.get(LABEL_POD_NAME).cloned().unwrap_or_default();
            let id = container_id(&pod_uid, &spec.name, spec.restart_count);
            let image = self
                .images
                .ensure(
                    &spec.image,
                    image::PullPolicy::Never,
                    &RegistryAuth::anonymous(),
                )
                .await
                .map_err(|e| RuntimeError::Create {
                    message: e.to_string(),
                })?;
            let rootfs_dir = self.rootfs_dir(&id);
            let rootfs =
                image::rootfs::prepare(&image, &rootfs_dir).map_err(|e| RuntimeError::Create {
                    message: e.to_string(),
                })?;
            let sandbox = Sandbox::adopt(record.pid, record.host_network, record.share_pid);
            let log_path = self
                .log_dir(&namespace, &pod_name, &pod_uid, &spec.name)
                .join(format!("{}.log", spec.restart_count));
            let (image_uid, image_gid) = parse_user(spec.user.as_deref());
            let sec = &spec.security;
            let uid = sec
                .run_as_user
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(image_uid);
            let gid = sec
                .run_as_group
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(if sec.run_as_user.is_some() {
                    0
                } else {
                    image_gid
                });
            let cfg = ContainerConfig {
                id: id.clone(),
                rootfs: rootfs.path.clone(),
                readonly_rootfs: sec.read_only_root_filesystem,
                args: spec.argv.clone(),
                env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd: spec
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".to_string()),
                hostname: String::new(),
                mounts: Vec::new(),
                resources: Resources {
                    cpu_request_millis: spec.resources.cpu_request_millis,
                    cpu_limit_millis: spec.resources.cpu_limit_millis,
                    memory_limit_bytes: spec.resources.memory_limit_bytes,
                },
                security: Security {
                    uid,
                    gid,
                    additional_gids: sec
                        .supplemental_groups
                        .iter()
                        .filter_map(|g| u32::try_from(*g).ok())
                        .collect(),
                    privileged: sec.privileged,
                    add_capabilities: sec.add_capabilities.clone(),
                    drop_capabilities: sec.drop_capabilities.clone(),
                    allow_privilege_escalation: sec.allow_privilege_escalation,
                    seccomp: if sec.seccomp_runtime_default {
                        Seccomp::RuntimeDefault
                    } else {
                        Seccomp::Unconfined
                    },
                },
                namespaces: sandbox.namespaces(),
                cgroups_path: Some(format!("{}/{id}", pod_cgroup(&pod_uid))),
                log_path: Some(log_path),
            };
            let rec = ContainerRecord {
                id: id.clone(),
                sandbox: sandbox_id_of(&record),
                labels: spec.labels.clone(),
                image: spec.image.clone(),
                image_id: spec.image_id.clone(),
            };
            records::save_container(&self.dir, &rec).map_err(other)?;
            if let Err(e) = self.runc.start(&cfg).await {
                let _ = self.runc.remove(&id).await;
                let _ = image::rootfs::release_dir(&rootfs_dir);
                records::remove_container(&self.dir, &id).map_err(other)?;
                return Err(RuntimeError::Start {
                    message: e.to_string(),
                });
            }
            Ok(ContainerId(id))
        })
    }

    fn container_state(
        &self,
        id: ContainerId,
    ) -> BoxFuture<'_, Result<ContainerState, RuntimeError>> {
        Box::pin(async move {
            let state = self.runc.state(&id.0).await.map_err(other)?;
            Ok(convert_state(state))
        })
    }

    fn stop_container(
        &self,
        id: ContainerId,
        grace: Duration,
    ) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            match self.runc.stop(&id.0, grace).await {
                Ok(_) => Ok(()),
                Err(e)
                    if records::container(&self.dir, &id.0)
                        .ok()
                        .flatten()
                        .is_none() =>
                {
                    tracing::debug!(container = %id.0, error = %e, "stop of an unknown container");
                    Ok(())
                }
                Err(e) => Err(other(e)),
            }
        })
    }

    fn remove_container(&self, id: ContainerId) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            let _ = self.runc.remove(&id.0).await;
            image::rootfs::release_dir(&self.rootfs_dir(&id.0)).map_err(other)?;
            records::remove_container(&self.dir, &id.0).map_err(other)?;
            Ok(())
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Inventory, RuntimeError>> {
        Box::pin(async move {
            let mut inv = Inventory::default();
            for s in records::sandboxes(&self.dir).map_err(other)? {
                if process_alive(s.pid) {
                    inv.sandboxes.push(s.info());
                }
            }
            for c in records::containers(&self.dir).map_err(other)? {
                let state = self
                    .runc
                    .state(&c.id)
                    .await
                    .map(convert_state)
                    .unwrap_or(ContainerState::Unknown);
                inv.containers.push(ContainerInfo {
                    id: ContainerId(c.id.clone()),
                    sandbox: SandboxId(c.sandbox.clone()),
                    labels: c.labels.clone(),
                    image: c.image.clone(),
                    image_id: c.image_id.clone(),
                    state,
                });
            }
            Ok(inv)
        })
    }
}

/// Pulls through the node's image store.
pub struct OciPuller {
    images: Arc<ImageStore>,
}

impl OciPuller {
    pub fn new(runtime: &OciRuntime) -> OciPuller {
        OciPuller {
            images: runtime.images.clone(),
        }
    }
}

impl ImagePuller for OciPuller {
    fn pull(
        &self,
        image: String,
        policy: PullPolicy,
        pull_secrets: Vec<PullSecret>,
    ) -> BoxFuture<'_, Result<PulledImage, PullError>> {
        Box::pin(async move {
            let mut auth = RegistryAuth::anonymous();
            for s in &pull_secrets {
                match RegistryAuth::from_dockerconfigjson(&s.dockerconfigjson) {
                    Ok(a) => auth.merge(a),
                    Err(e) => {
                        return Err(PullError::Unauthorized {
                            image: image.clone(),
                            reason: format!(
                                "pull secret {} is not a valid dockerconfigjson: {e}",
                                s.name
                            ),
                        })
                    }
                }
            }
            let present = self
                .images
                .ensure(&image, image::PullPolicy::Never, &auth)
                .await
                .ok();
            let policy = match policy {
                PullPolicy::Always => image::PullPolicy::Always,
                PullPolicy::IfNotPresent => image::PullPolicy::IfNotPresent,
                PullPolicy::Never => image::PullPolicy::Never,
            };
            let pulled = self
                .images
                .ensure(&image, policy, &auth)
                .await
                .map_err(|e| pull_error(&image, e))?;
            let already_present = present.is_some_and(|p| p.digest == pulled.digest);
            let c = &pulled.config;
            Ok(PulledImage {
                image_id: pulled.digest.to_string(),
                config: ImageConfig {
                    entrypoint: c.entrypoint.clone(),
                    cmd: c.cmd.clone(),
                    env: c.env.clone(),
                    working_dir: c.working_dir.clone(),
                    user: c.user.clone(),
                },
                already_present,
            })
        })
    }
}

fn pull_error(image: &str, e: image::ImageError) -> PullError {
    let reason = e.to_string();
    let image = image.to_string();
    match e {
        image::ImageError::NotFound { .. } => PullError::NotFound { image, reason },
        image::ImageError::Unauthorized { .. } => PullError::Unauthorized { image, reason },
        image::ImageError::NotPresent { .. } => PullError::NeverPull { image },
        image::ImageError::InvalidReference { .. } => PullError::InvalidReference { image, reason },
        _ => PullError::Failed { image, reason },
    }
}

/// A runc-safe id unique per pod, container and restart.
fn container_id(pod_uid: &str, name: &str, restart: u32) -> String {
    let id = format!("{pod_uid}-{name}-{restart}");
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The cgroup holding a pod's containers.
fn pod_cgroup(pod_uid: &str) -> String {
    format!("/gantry/pod{pod_uid}")
}

fn sandbox_id_of(record: &SandboxRecord) -> String {
    record.id.clone()
}

/// `uid[:gid]` from the image config or the security context; names other than numbers
/// resolve to root until user lookup in the image lands.
fn parse_user(user: Option<&str>) -> (u32, u32) {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return (0, 0);
    };
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let uid = u.parse().unwrap_or(0);
    let gid = g.parse().unwrap_or(uid);
    (uid, gid)
}

fn convert_state(state: container::ContainerState) -> ContainerState {
    match state {
        container::ContainerState::Running { started_at, .. } => ContainerState::Running {
            started_at: ts(started_at),
        },
        container::ContainerState::Exited {
            exit_code,
            oom_killed,
            started_at,
            finished_at,
            message,
            ..
        } => ContainerState::Exited {
            exit_code,
            reason: oom_killed.then(|| "OOMKilled".to_string()),
            message,
            started_at: started_at.map(ts),
            finished_at: ts(finished_at.unwrap_or_else(SystemTime::now)),
        },
        container::ContainerState::Unknown => ContainerState::Unknown,
    }
}

fn ts(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn process_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

fn other(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_runc_safe_and_distinct_per_restart() {
        let a = container_id("0b1c-22", "web", 0);
        let b = container_id("0b1c-22", "web", 1);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        assert_eq!(container_id("u", "a/b c", 3), "u-a_b_c-3");
    }

    #[test]
    fn users_parse_as_uid_and_gid() {
        assert_eq!(parse_user(None), (0, 0));
        assert_eq!(parse_user(Some("1000")), (1000, 1000));
        assert_eq!(parse_user(Some("1000:50")), (1000, 50));
    }
}
