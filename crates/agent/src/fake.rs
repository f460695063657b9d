//! Recording fakes of [`PodRuntime`] and [`ImagePuller`] for tests: containers are entries
//! in a map, images are a table of answers, and every call is recorded.
//! One thing to know: a fake container's fate is decided by its container name when it
//! starts ([`Behaviour`]); `Run` stays running until stopped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::runtime::{
    BoxFuture, ContainerId, ContainerInfo, ContainerSpec, ContainerState, ImageConfig, ImagePuller,
    Inventory, PodRuntime, PullError, PullPolicy, PullSecret, PulledImage, RuntimeError,
    RuntimeVersion, SandboxId, SandboxInfo, SandboxSpec, LABEL_POD_UID,
};

/// What a fake container does once started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs until stopped.
    Run,
    /// Exits at once with this code.
    Exit(i32),
    /// Fails to start with this message.
    FailStart(String),
}

/// One recorded runtime call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    RunSandbox(SandboxSpec),
    StopSandbox(SandboxId),
    Start(Box<ContainerSpec>),
    Stop(ContainerId, Duration),
    Remove(ContainerId),
}

#[derive(Default)]
struct RuntimeState {
    next: u64,
    sandboxes: BTreeMap<SandboxId, SandboxInfo>,
    containers: BTreeMap<ContainerId, ContainerInfo>,
    behaviours: HashMap<String, Behaviour>,
    calls: Vec<Call>,
}

/// An in-memory [`PodRuntime`].
#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<RuntimeState>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, RuntimeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what containers called `name` do from their next start on.
    pub fn set_behaviour(&self, name: &str, b: Behaviour) {
        self.lock().behaviours.insert(name.to_string(), b);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The containers that exist (not removed).
    pub fn containers(&self) -> Vec<ContainerInfo> {
        self.lock().containers.values().cloned().collect()
    }

    /// The containers of a pod that are running.
    pub fn running(&self, pod_uid: &str) -> Vec<ContainerInfo> {
        self.containers()
            .into_iter()
            .filter(|c| c.labels.get(LABEL_POD_UID).map(String::as_str) == Some(pod_uid))
            .filter(|c| matches!(c.state, ContainerState::Running { .. }))
            .collect()
    }

    /// The sandboxes that exist.
    pub fn sandboxes(&self) -> Vec<SandboxInfo> {
        self.lock().sandboxes.values().cloned().collect()
    }

    /// Makes a running container exit with `code` now (as if its process ended).
    pub fn exit(&self, id: &ContainerId, code: i32) {
        let mut st = self.lock();
        if let Some(c) = st.containers.get_mut(id) {
            let started_at = match c.state {
                ContainerState::Running { started_at } => Some(started_at),
                _ => None,
            };
            c.state = ContainerState::Exited {
                exit_code: code,
                reason: None,
                message: None,
                started_at,
                finished_at: Timestamp::now(),
            };
        }
    }
}

impl PodRuntime for FakeRuntime {
    fn runtime_version(&self) -> BoxFuture<'_, Result<RuntimeVersion, RuntimeError>> {
        Box::pin(async {
            Ok(RuntimeVersion {
                name: "fake".into(),
                version: "0.1.0".into(),
            })
        })
    }

    fn run_sandbox(&self, spec: SandboxSpec) -> BoxFuture<'_, Result<SandboxInfo, RuntimeError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.next += 1;
            let info = SandboxInfo {
                id: SandboxId(format!("sandbox-{}", st.next)),
                pod_uid: spec.pod_uid.clone(),
                ip: None,
                labels: spec.labels.clone(),
            };
            st.sandboxes.insert(info.id.clone(), info.clone());
            st.calls.push(Call::RunSandbox(spec));
            Ok(info)
        })
    }

    fn stop_sandbox(&self, id: SandboxId) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.sandboxes.remove(&id);
            st.calls.push(Call::StopSandbox(id));
            Ok(())
        })
    }

    fn start_container(
        &self,
        sandbox: SandboxId,
        spec: ContainerSpec,
    ) -> BoxFuture<'_, Result<ContainerId, RuntimeError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.calls.push(Call::Start(Box::new(spec.clone())));
            if !st.sandboxes.contains_key(&sandbox) {
                return Err(RuntimeError::NoSuchSandbox(sandbox.0));
            }
            let now = Timestamp::now();
            let state = match st
                .behaviours
                .get(&spec.name)
                .cloned()
                .unwrap_or(Behaviour::Run)
            {
                Behaviour::Run => ContainerState::Running { started_at: now },
                Behaviour::Exit(code) => ContainerState::Exited {
                    exit_code: code,
                    reason: None,
                    message: None,
                    started_at: Some(now),
                    finished_at: now,
                },
                Behaviour::FailStart(message) => return Err(RuntimeError::Start { message }),
            };
            st.next += 1;
            let id = ContainerId(format!("{}-{}", spec.name, st.next));
            st.containers.insert(
                id.clone(),
                ContainerInfo {
                    id: id.clone(),
                    sandbox,
                    labels: spec.labels.clone(),
                    image: spec.image.clone(),
                    image_id: spec.image_id.clone(),
                    state,
                },
            );
            Ok(id)
        })
    }

    fn container_state(
        &self,
        id: ContainerId,
    ) -> BoxFuture<'_, Result<ContainerState, RuntimeError>> {
        Box::pin(async move {
            self.lock()
                .containers
                .get(&id)
                .map(|c| c.state.clone())
                .ok_or(RuntimeError::NoSuchContainer(id.0))
        })
    }

    fn stop_container(
        &self,
        id: ContainerId,
        grace: Duration,
    ) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.calls.push(Call::Stop(id.clone(), grace));
            if let Some(c) = st.containers.get_mut(&id) {
                if let ContainerState::Running { started_at } = c.state {
                    c.state = ContainerState::Exited {
                        exit_code: 143,
                        reason: None,
                        message: None,
                        started_at: Some(started_at),
                        finished_at: Timestamp::now(),
                    };
                }
            }
            Ok(())
        })
    }

    fn remove_container(&self, id: ContainerId) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.containers.remove(&id);
            st.calls.push(Call::Remove(id));
            Ok(())
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Inventory, RuntimeError>> {
        Box::pin(async move {
            let st = self.lock();
            Ok(Inventory {
                sandboxes: st.sandboxes.values().cloned().collect(),
                containers: st.containers.values().cloned().collect(),
            })
        })
    }
}

/// An in-memory [`ImagePuller`]: every image pulls unless told to fail.
#[derive(Default)]
pub struct FakePuller {
    state: Mutex<PullerState>,
}

#[derive(Default)]
struct PullerState {
    failures: HashMap<String, PullError>,
    configs: HashMap<String, ImageConfig>,
    present: HashMap<String, String>,
    pulls: Vec<(String, PullPolicy, Vec<PullSecret>)>,
}

impl FakePuller {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, PullerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes pulls of `image` fail with `error`.
    pub fn fail(&self, image: &str, error: PullError) {
        self.lock().failures.insert(image.to_string(), error);
    }

    /// Gives `image` this config (default: `cmd ["sh"]`).
    pub fn set_config(&self, image: &str, config: ImageConfig) {
        self.lock().configs.insert(image.to_string(), config);
    }

    /// Every pull so far: (image, policy, secrets).
    pub fn pulls(&self) -> Vec<(String, PullPolicy, Vec<PullSecret>)> {
        self.lock().pulls.clone()
    }
}

impl ImagePuller for FakePuller {
    fn pull(
        &self,
        image: String,
        policy: PullPolicy,
        pull_secrets: Vec<PullSecret>,
    ) -> BoxFuture<'_, Result<PulledImage, PullError>> {
        Box::pin(async move {
            let mut st = self.lock();
            st.pulls.push((image.clone(), policy, pull_secrets));
            if let Some(e) = st.failures.get(&image) {
                return Err(e.clone());
            }
            let already_present = st.present.contains_key(&image);
            let image_id = format!("sha256:{:064x}", fnv(&image));
            if policy == PullPolicy::Never && !already_present {
                return Err(PullError::NeverPull { image });
            }
            st.present.insert(image.clone(), image_id.clone());
            let config = st.configs.get(&image).cloned().unwrap_or(ImageConfig {
                cmd: vec!["sh".into()],
                ..ImageConfig::default()
            });
            Ok(PulledImage {
                image_id,
                config,
                already_present,
            })
        })
    }
}

/// A stable fake digest of an image name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
