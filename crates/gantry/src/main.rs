//! The `gantry` binary: parses the command line and wires the components together.
//! Nothing here decides behaviour; each mode is a few lines of assembly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use tracing::info;

use gantry_apiserver::{ApiServer, ApiServerConfig, NodeClient, Pki};
use gantry_store::{WalStore, WalStoreConfig};

mod node;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "An application-aware datacenter operating system that speaks the Kubernetes API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole one-machine cluster with no configuration.
    Up(UpArgs),
    /// Run the control plane (API server on the embedded store).
    Server(ServerArgs),
    /// Run a node agent that joins a cluster.
    Agent(AgentArgs),
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args, Clone)]
struct NodeArgs {
    /// Name of this machine's Node [default: the hostname].
    #[arg(long)]
    node_name: Option<String>,
    /// Extra Node labels, `k=v,k2=v2`.
    #[arg(long, value_parser = parse_labels, default_value = "")]
    node_labels: Labels,
    /// HTTPS port of the node agent's endpoint (logs, exec); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
}

#[derive(Args, Clone)]
struct AgentArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Where images, containers and logs live [default: like `up`, under `agent/`].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The cluster's data directory, whose CA signs this agent's serving certificate; without
    /// it the agent serves a self-signed certificate the API server will not trust.
    #[arg(long)]
    cluster_dir: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
    /// Labels (alias of --node-labels, as the issue's CLI spells it).
    #[arg(long, value_parser = parse_labels)]
    labels: Option<Labels>,
    /// Log filter (tracing `EnvFilter` syntax), also read from GANTRY_LOG.
    #[arg(long)]
    log: Option<String>,
}

type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<Labels, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("label {p:?} is not key=value"))
        })
        .collect()
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Where the store, certificates and kubeconfig live
    /// [default: $XDG_DATA_HOME/gantry, or /var/lib/gantry as root].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTPS port of the API server (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    api_port: u16,
    /// Address the API server listens on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind_address: IpAddr,
    /// Log filter (tracing `EnvFilter` syntax), also read from GANTRY_LOG.
    #[arg(long)]
    log: Option<String>,
    /// Run without the scheduler (to measure the API server alone).
    #[arg(long)]
    disable_scheduler: bool,
}

fn main() -> ExitCode {
    // Helper processes re-execute this binary; they fork, so they are dispatched before any
    // thread or async runtime exists.
    let mut argv = std::env::args();
    let _program = argv.next();
    match argv.next().as_deref() {
        Some("shim") => return gantry_runtime::container::shim::main(argv),
        Some("pause") => return gantry_runtime::container::sandbox::pause_main(),
        _ => {}
    }
    let cli = Cli::parse();
    let log = match &cli.command {
        Command::Up(a) => a.server.log.clone(),
        Command::Server(a) => a.log.clone(),
        Command::Agent(a) => a.log.clone(),
    };
    let filter = log
        .or_else(|| std::env::var("GANTRY_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gantry: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(a) => runtime.block_on(serve(a.server, Some(a.node))),
        Command::Server(a) => runtime.block_on(serve(a, None)),
        Command::Agent(a) => runtime.block_on(agent(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gantry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("gantry");
    }
    // Root owns /proc/self when this process runs as root (no unsafe geteuid needed).
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid() == 0
    });
    if is_root.unwrap_or(false) {
        return PathBuf::from("/var/lib/gantry");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/gantry")
}

async fn serve(args: ServerArgs, node: Option<NodeArgs>) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
    let store = WalStore::open(WalStoreConfig::new(data_dir.join("store"))).with_context(|| {
        format!(
            "failed to open the store in {}",
            data_dir.join("store").display()
        )
    })?;
    let hosts = if args.bind_address.is_unspecified() {
        Vec::new()
    } else {
        vec![args.bind_address.to_string()]
    };
    let pki =
        Pki::load_or_create(&data_dir, &hosts).context("failed to set up cluster credentials")?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.api_port))
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}:{}",
                args.bind_address, args.api_port
            )
        })?;
    let local = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let host = if args.bind_address.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        args.bind_address
    };
    let advertise = SocketAddr::new(host, local.port()).to_string();
    let url = format!("https://{advertise}");
    let kubeconfig = data_dir.join("kubeconfig");
    write_atomically(&kubeconfig, pki.kubeconfig(&url).as_bytes())
        .with_context(|| format!("failed to write {}", kubeconfig.display()))?;

    let node_client = NodeClient::new(&pki.ca_pem, pki.admin_token.clone())
        .context("failed to set up the node client")?;
    let config = ApiServerConfig {
        admin_token: pki.admin_token.clone(),
        advertise_address: advertise,
        node_client: Some(node_client),
    };
    let server = ApiServer::new(store, config);
    server
        .start_controllers()
        .await
        .context("failed to bootstrap the cluster")?;
    let tls = pki
        .server_config()
        .context("failed to load the serving certificate")?;

    println!("gantry: API server listening on {url}");
    println!(
        "gantry: admin kubeconfig written to {}",
        kubeconfig.display()
    );
    println!(
        "gantry: try: KUBECONFIG={} kubectl get namespaces",
        kubeconfig.display()
    );
    info!(url = %url, data_dir = %data_dir.display(), "gantry is up");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    // The scheduler talks to the API server like any other client.
    if !args.disable_scheduler {
        let sched_client = node::client_from_kubeconfig(&kubeconfig).await?;
        let sched_stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            let scheduler = gantry_scheduler::Scheduler::new(
                sched_client,
                gantry_scheduler::SchedulerConfig::default(),
            );
            if let Err(e) = scheduler.run(sched_stop).await {
                eprintln!("gantry: the scheduler stopped: {e:#}");
            }
        });
    }
    let agent_task = match node {
        Some(node_args) => {
            let client = node::client_from_kubeconfig(&kubeconfig).await?;
            let settings = node_settings(node_args, data_dir.join("node"), pki.admin_token.clone());
            let stop = stopped(stop_rx.clone());
            Some(tokio::spawn(async move {
                let issue =
                    |names: &[String]| pki.issue_serving_cert(names).map_err(anyhow::Error::from);
                node::run(client, settings, &issue, stop).await
            }))
        }
        None => None,
    };
    server.serve(listener, tls, stopped(stop_rx)).await;
    if let Some(task) = agent_task {
        match task.await {
            Ok(Err(e)) => eprintln!("gantry: {e:#}"),
            Err(e) => eprintln!("gantry: the agent task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    info!("gantry stopped");
    Ok(())
}

/// Runs a node agent joining the cluster of `--kubeconfig`.
async fn agent(args: AgentArgs) -> Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir().join("agent"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
    let client = node::client_from_kubeconfig(&args.kubeconfig).await?;
    let token = kubeconfig_token(&args.kubeconfig)?;
    let mut node_args = args.node.clone();
    if let Some(labels) = args.labels.clone() {
        node_args.node_labels.extend(labels);
    }
    let settings = node_settings(node_args, data_dir.clone(), token);
    let cluster_pki = match &args.cluster_dir {
        Some(dir) => Some(
            Pki::load_or_create(dir, &[]).context("failed to open the cluster's credentials")?,
        ),
        None => None,
    };
    let issue = |names: &[String]| -> Result<(String, String)> {
        match &cluster_pki {
            Some(pki) => Ok(pki.issue_serving_cert(names)?),
            None => self_signed(names),
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    println!(
        "gantry: agent {} joining the cluster of {}",
        settings.node_name,
        args.kubeconfig.display()
    );
    node::run(client, settings, &issue, stopped(stop_rx)).await
}

fn node_settings(args: NodeArgs, data_dir: PathBuf, token: String) -> node::NodeSettings {
    let node_name = args.node_name.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_lowercase())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "gantry-node".to_string())
    });
    node::NodeSettings {
        node_name,
        data_dir,
        labels: args.node_labels,
        port: args.kubelet_port,
        token,
    }
}

/// The bearer token of a kubeconfig's first user (what the API server will present).
fn kubeconfig_token(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read kubeconfig {}", path.display()))?;
    let kc: serde_yaml::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("kubeconfig {} is not YAML", path.display()))?;
    kc.get("users")
        .and_then(|u| u.get(0))
        .and_then(|u| u.get("user"))
        .and_then(|u| u.get("token"))
        .and_then(serde_yaml::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("kubeconfig {} has no bearer token", path.display()))
}

/// A self-signed serving certificate, for agents that cannot reach the cluster CA.
fn self_signed(names: &[String]) -> Result<(String, String)> {
    let cert = rcgen::generate_simple_self_signed(names.to_vec())
        .context("failed to generate a certificate")?;
    Ok((cert.cert.pem(), cert.key_pair.serialize_pem()))
}

/// Resolves when the stop flag turns true.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn write_atomically(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
