//! Test support: an in-process API server, agents with fast timings, polling helpers and a
//! TCP forwarder that can simulate losing the API server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use gantry_agent::fake::{FakePuller, FakeRuntime};
use gantry_agent::{Agent, AgentConfig, BackoffConfig, FakeHost};
use gantry_apiserver::{ApiServer, ApiServerConfig, Pki};
use gantry_store::{WalStore, WalStoreConfig};

pub const NODE: &str = "node-a";

pub struct Cluster {
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: Box<dyn Fn(&str) -> String + Send + Sync>,
    pub addr: std::net::SocketAddr,
}

pub async fn cluster() -> Result<Cluster> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir()?;
    let store = WalStore::open(WalStoreConfig::new(dir.path().join("store")))?;
    let pki = Pki::load_or_create(dir.path(), &[])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = ApiServer::new(
        store,
        ApiServerConfig {
            admin_token: pki.admin_token.clone(),
            advertise_address: addr.to_string(),
            node_client: None,
        },
    );
    server
        .start_controllers()
        .await
        .context("failed to bootstrap")?;
    let tls = pki.server_config()?;
    tokio::spawn(server.serve(listener, tls, std::future::pending()));
    let kubeconfig = Kubeconfig::from_yaml(&pki.kubeconfig(&format!("https://{addr}")))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Cluster {
        client: Client::try_from(config)?,
        dir,
        kubeconfig: Box::new(move |server| pki.kubeconfig(server)),
        addr,
    })
}

/// A running agent; dropping `stop` (or sending) shuts it down.
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), gantry_agent::AgentError>>,
}

impl RunningAgent {
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("agent did not stop")???;
        Ok(())
    }
}

pub fn config(c: &Cluster) -> AgentConfig {
    let mut config = AgentConfig::new(NODE, c.dir.path().join("agent"));
    config.zone = Some("zone-1".into());
    config.rack = Some("rack-7".into());
    config.labels.insert("team".into(), "infra".into());
    config.heartbeat = Duration::from_millis(500);
    config.lease_duration = Duration::from_secs(40);
    config.status_interval = Duration::from_secs(2);
    config.host_poll = Duration::from_millis(300);
    config.pod_sync = Duration::from_millis(200);
    let fast = BackoffConfig {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(4),
        reset_after: Duration::from_secs(600),
    };
    config.restart_backoff = fast;
    config.pull_backoff = fast;
    config.max_retry = Duration::from_secs(1);
    config
}

pub fn start_agent(
    c: &Cluster,
    runtime: Arc<FakeRuntime>,
    puller: Arc<FakePuller>,
) -> Result<RunningAgent> {
    start_agent_with(c, c.client.clone(), runtime, puller)
}

pub fn start_agent_with(
    c: &Cluster,
    client: Client,
    runtime: Arc<FakeRuntime>,
    puller: Arc<FakePuller>,
) -> Result<RunningAgent> {
    let agent = Agent::new(client, config(c), runtime, puller)?
        .with_host(Arc::new(FakeHost::sample("host-a")));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    Ok(RunningAgent {
        stop: Some(tx),
        task,
    })
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn pod(name: &str, containers: serde_json::Value) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5, "containers": containers}
    }))?)
}

pub async fn get_pod(api: &Api<Pod>, name: &str) -> Option<Pod> {
    api.get_opt(name).await.ok().flatten()
}

pub fn app_status(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

pub async fn event_reasons(c: &Cluster, pod: &str) -> Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(c.client.clone(), "default");
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet"))
        .filter_map(|e| e.reason)
        .collect())
}

/// A TCP forwarder to the API server that can cut every connection and refuse new ones.
pub struct Outage {
    pub addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Outage {
    pub async fn start(target: std::net::SocketAddr) -> Result<Outage> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().expect("conns").push(task);
            }
        });
        Ok(Outage {
            addr,
            up,
            conns,
            accept,
        })
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.conns.lock().expect("conns").drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
