//! The effects the agent needs from the node's container machinery: [`PodRuntime`] (sandboxes
//! and containers) and [`ImagePuller`] (images). The agent owns these traits; the `runtime`
//! crate implements them and the binary wires the two together.
//! One thing to know: every container the agent starts carries the labels of
//! [`ContainerSpec::labels`] (pod uid, container name, restart count); re-adoption after an
//! agent restart relies on [`PodRuntime::list`] returning them unchanged.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// A boxed, sendable future: the trait methods' return type (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Label holding the pod's uid on every sandbox and container.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label holding the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label holding the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label holding the container's name in the pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label holding how many times this container had been restarted when this instance started.
pub const LABEL_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";

/// Identifies a running pod sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(pub String);

/// Identifies one container instance (each restart is a new instance).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(pub String);

/// The runtime's name and version, reported as `containerRuntimeVersion` `<name>://<version>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub name: String,
    pub version: String,
}

/// What the agent asks for when it creates a pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    pub pod_uid: String,
    pub pod_name: String,
    pub namespace: String,
    /// The pod's hostname (its name unless `spec.hostname` says otherwise).
    pub hostname: String,
    /// Share the host's network namespace (`hostNetwork: true`).
    pub host_network: bool,
    /// One PID namespace for all containers (`shareProcessNamespace: true`).
    pub share_process_namespace: bool,
    pub labels: BTreeMap<String, String>,
}

/// A sandbox as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    pub id: SandboxId,
    pub pod_uid: String,
    /// The pod's IP inside its network namespace; `None` while the namespace has loopback only.
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
}

/// Resource settings of one container, already parsed from the pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub cpu_request_millis: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

/// A container's security settings, resolved against the pod's security context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    pub privileged: bool,
    /// Capability names as written in the pod (`NET_ADMIN`, `ALL`).
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// False (the default unless privileged) means `noNewPrivileges`.
    pub allow_privilege_escalation: bool,
    pub read_only_root_filesystem: bool,
    /// `seccompProfile.type: RuntimeDefault`.
    pub seccomp_runtime_default: bool,
}

/// Everything the runtime needs to create and start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    /// The image reference from the pod spec.
    pub image: String,
    /// The image's digest as the puller reported it.
    pub image_id: String,
    /// The final argv (image entrypoint/cmd merged with the pod's command/args, `$(VAR)`
    /// expanded); never empty.
    pub argv: Vec<String>,
    /// The final environment (image env overridden by the pod's envFrom and env).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// The image config's `User` (`uid[:gid]` or a name); `security.run_as_user` wins.
    pub user: Option<String>,
    pub security: ContainerSecurity,
    pub resources: ContainerResources,
    pub tty: bool,
    pub stdin: bool,
    /// How many times this container was restarted before (names its log file).
    pub restart_count: u32,
    /// Identity labels ([`LABEL_POD_UID`], [`LABEL_CONTAINER_NAME`], …); returned by `list`.
    pub labels: BTreeMap<String, String>,
}

/// A container's state as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created but not started.
    Created,
    Running {
        started_at: Timestamp,
    },
    Exited {
        exit_code: i32,
        /// Set when the runtime knows why (`OOMKilled`); otherwise the agent derives
        /// `Completed`/`Error` from the exit code.
        reason: Option<String>,
        message: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
    /// The runtime lost track of it (its shim died without writing an exit record).
    Unknown,
}

/// One container in the runtime's inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: ContainerId,
    pub sandbox: SandboxId,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
}

/// Everything the runtime knows about: used to re-adopt pods after an agent restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub sandboxes: Vec<SandboxInfo>,
    pub containers: Vec<ContainerInfo>,
}

/// Failures of the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such container {0}")]
    NoSuchContainer(String),
    #[error("no such sandbox {0}")]
    NoSuchSandbox(String),
    #[error("failed to create container: {message}")]
    Create { message: String },
    #[error("failed to start container: {message}")]
    Start { message: String },
    #[error("runtime failed: {message}")]
    Other { message: String },
}

/// Sandboxes and containers of the node. All methods are idempotent where that makes sense:
/// stopping a stopped container or removing a removed one succeeds.
pub trait PodRuntime: Send + Sync {
    fn runtime_version(&self) -> BoxFuture<'_, Result<RuntimeVersion, RuntimeError>>;
    fn run_sandbox(&self, spec: SandboxSpec) -> BoxFuture<'_, Result<SandboxInfo, RuntimeError>>;
    /// Stops the sandbox and removes it (its namespaces, cgroup and directory).
    fn stop_sandbox(&self, id: SandboxId) -> BoxFuture<'_, Result<(), RuntimeError>>;
    /// Creates and starts a container in a sandbox.
    fn start_container(
        &self,
        sandbox: SandboxId,
        spec: ContainerSpec,
    ) -> BoxFuture<'_, Result<ContainerId, RuntimeError>>;
    fn container_state(
        &self,
        id: ContainerId,
    ) -> BoxFuture<'_, Result<ContainerState, RuntimeError>>;
    /// SIGTERM, wait up to `grace`, then SIGKILL.
    fn stop_container(
        &self,
        id: ContainerId,
        grace: Duration,
    ) -> BoxFuture<'_, Result<(), RuntimeError>>;
    fn remove_container(&self, id: ContainerId) -> BoxFuture<'_, Result<(), RuntimeError>>;
    fn list(&self) -> BoxFuture<'_, Result<Inventory, RuntimeError>>;
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Kubernetes' default: `Always` for `:latest` or untagged references, else `IfNotPresent`.
    pub fn from_spec(policy: Option<&str>, image: &str) -> PullPolicy {
        match policy {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            _ => {
                let last = image.rsplit('/').next().unwrap_or(image);
                let tagged = last.contains(':') || image.contains('@');
                if !tagged || last.ends_with(":latest") {
                    PullPolicy::Always
                } else {
                    PullPolicy::IfNotPresent
                }
            }
        }
    }
}

/// The contents of one `kubernetes.io/dockerconfigjson` secret from `imagePullSecrets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecret {
    pub name: String,
    pub dockerconfigjson: Vec<u8>,
}

/// The parts of an image's config the agent uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// A pulled (or already present) image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The manifest digest (`sha256:…`), reported as `imageID`.
    pub image_id: String,
    pub config: ImageConfig,
    /// True when nothing was downloaded (the image was already on the node).
    pub already_present: bool,
}

/// Failures to pull an image; the message is shown to users in events and statuses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    #[error("image {image:?} not found: {reason}")]
    NotFound { image: String, reason: String },
    #[error("pull access denied for {image:?}: {reason}")]
    Unauthorized { image: String, reason: String },
    #[error("image {image:?} is not present with pull policy of Never")]
    NeverPull { image: String },
    #[error("invalid image reference {image:?}: {reason}")]
    InvalidReference { image: String, reason: String },
    #[error("failed to pull {image:?}: {reason}")]
    Failed { image: String, reason: String },
}

/// Pulls images onto the node.
pub trait ImagePuller: Send + Sync {
    fn pull(
        &self,
        image: String,
        policy: PullPolicy,
        pull_secrets: Vec<PullSecret>,
    ) -> BoxFuture<'_, Result<PulledImage, PullError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pull_policy_follows_the_tag() {
        assert_eq!(PullPolicy::from_spec(None, "busybox"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::from_spec(None, "busybox:latest"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::from_spec(None, "127.0.0.1:5000/busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::from_spec(None, "127.0.0.1:5000/busybox"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::from_spec(Some("Never"), "busybox"),
            PullPolicy::Never
        );
    }
}
