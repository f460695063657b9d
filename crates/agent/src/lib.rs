//! The node agent (Gantry's kubelet; see `docs/dev/pod-lifecycle.md`): registers the Node,
//! renews its Lease, and runs the pods bound to it through a [`PodRuntime`] and an
//! [`ImagePuller`], reporting their status through the Kubernetes API.
//! One thing to know: the agent talks to the cluster only through a kube-rs [`Client`] and to
//! the node only through the traits in [`runtime`] and [`host`]; [`fake`] holds recording
//! fakes of both for tests.

pub mod config;
pub mod events;
pub mod exec;
pub mod fake;
pub mod host;
pub mod node;
pub mod oci;
pub mod pods;
pub mod runtime;
pub mod server;
pub mod websocket;

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;
use tracing::info;

pub use config::{AgentConfig, AgentConfigError, BackoffConfig, AGENT_VERSION};
pub use host::{FakeHost, HostFacts, HostInfo, SystemHost};
pub use runtime::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerState, ImageConfig, ImagePuller, Inventory,
    PodRuntime, PullError, PullPolicy, PullSecret, PulledImage, RuntimeError, RuntimeVersion,
    SandboxId, SandboxInfo, SandboxSpec,
};

/// Failures that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent config")]
    Config(#[from] AgentConfigError),
    #[error("agent task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// One node's agent.
pub struct Agent {
    client: Client,
    config: Arc<AgentConfig>,
    runtime: Arc<dyn PodRuntime>,
    images: Arc<dyn ImagePuller>,
    host: Arc<dyn HostInfo>,
}

impl Agent {
    /// Validates `config`; host facts come from the real machine ([`SystemHost`]) unless
    /// replaced with [`Agent::with_host`].
    pub fn new(
        client: Client,
        config: AgentConfig,
        runtime: Arc<dyn PodRuntime>,
        images: Arc<dyn ImagePuller>,
    ) -> Result<Agent, AgentError> {
        config.validate()?;
        let host = Arc::new(SystemHost::new(config.data_dir.clone()));
        Ok(Agent {
            client,
            config: Arc::new(config),
            runtime,
            images,
            host,
        })
    }

    /// Uses `host` for the machine's facts (a [`FakeHost`] in tests).
    pub fn with_host(mut self, host: Arc<dyn HostInfo>) -> Agent {
        self.host = host;
        self
    }

    /// Runs until `shutdown` completes. Containers keep running after the agent stops; the
    /// next agent re-adopts them.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        info!(node = %self.config.node_name, "agent starting");
        let reporter = node::NodeReporter {
            client: self.client.clone(),
            config: self.config.clone(),
            host: self.host.clone(),
            runtime: self.runtime.clone(),
        };
        let node_task = tokio::spawn(reporter.run(stop_rx.clone()));
        let ctx = Arc::new(pods::WorkerContext {
            client: self.client.clone(),
            config: self.config.clone(),
            runtime: self.runtime.clone(),
            images: self.images.clone(),
            host: self.host.clone(),
            recorder: events::Recorder::new(self.client.clone(), self.config.node_name.clone()),
        });
        let pods_task = tokio::spawn(pods::run_pods(ctx, stop_rx));
        shutdown.await;
        info!(node = %self.config.node_name, "agent stopping");
        let _ = stop_tx.send(true);
        let node_result = node_task.await.map_err(AgentError::Task)?;
        let pods_result = pods_task.await.map_err(AgentError::Task)?;
        node_result.and(pods_result)
    }
}
