//! Wiring of a node: the agent over the OCI runtime, and the agent's HTTPS endpoint with a
//! certificate the cluster CA vouches for.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gantry_agent::oci::{OciConfig, OciPuller, OciRuntime};
use gantry_agent::server::{self, ServerConfig};
use gantry_agent::{Agent, AgentConfig, HostInfo as _, SystemHost};
use tracing::warn;

/// What a node needs to start.
pub struct NodeSettings {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub labels: Vec<(String, String)>,
    /// Port of the agent's HTTPS endpoint (0 picks one).
    pub port: u16,
    /// The token the API server presents to the agent.
    pub token: String,
}

/// A certificate and key for the agent, for the given addresses.
pub type IssueCert<'a> = &'a (dyn Fn(&[String]) -> Result<(String, String)> + Send + Sync);

/// Starts the agent's endpoint and runs the agent until `shutdown`.
pub async fn run(
    client: kube::Client,
    settings: NodeSettings,
    issue_cert: IssueCert<'_>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let exe = std::env::current_exe().context("failed to find the gantry executable")?;
    let runtime = OciRuntime::open(OciConfig {
        dir: settings.data_dir.join("runtime"),
        images: settings.data_dir.join("images"),
        exe,
        insecure_registries: Vec::new(),
    })
    .context("failed to open the container runtime")?;
    let puller = Arc::new(OciPuller::new(&runtime));

    let facts = SystemHost::new(settings.data_dir.clone()).facts();
    let mut names = vec![
        facts.hostname.clone(),
        settings.node_name.clone(),
        "127.0.0.1".to_string(),
    ];
    names.push(facts.internal_ip.to_string());
    names.dedup();
    let (cert_pem, key_pem) =
        issue_cert(&names).context("failed to obtain the agent's serving certificate")?;
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), settings.port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("failed to listen on {bind}"))?;
    let port = listener
        .local_addr()
        .context("failed to read the agent's address")?
        .port();
    let server_runtime = runtime.clone();
    let token = settings.token.clone();
    tokio::spawn(async move {
        if let Err(e) = server::serve(
            listener,
            ServerConfig {
                cert_pem,
                key_pem,
                token,
            },
            server_runtime,
        )
        .await
        {
            warn!(error = %e, "agent endpoint stopped");
        }
    });

    let mut config = AgentConfig::new(settings.node_name.clone(), settings.data_dir.clone());
    config.labels = settings.labels.into_iter().collect();
    config.kubelet_port = port;
    let agent = Agent::new(client, config, runtime, puller).context("invalid agent settings")?;
    agent.run(shutdown).await.context("the agent failed")?;
    Ok(())
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("failed to read kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .context("failed to load the kubeconfig")?;
    kube::Client::try_from(config).context("failed to build the API client")
}
