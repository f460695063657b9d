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
    Up(ServerArgs),
    /// Run the control plane (API server on the embedded store).
    Server(ServerArgs),
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
    let args = match &cli.command {
        Command::Up(a) | Command::Server(a) => a.clone(),
    };
    let filter = args
        .log
        .clone()
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
    match runtime.block_on(serve(args)) {
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

async fn serve(args: ServerArgs) -> Result<()> {
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
    server.serve(listener, tls, shutdown_signal()).await;
    info!("gantry stopped");
    Ok(())
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
