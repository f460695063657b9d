//! Component test: the scheduler against the real API server in process (real store, real
//! kube-rs client). Pods are bound to the node with room; an oversized pod gets a
//! `FailedScheduling` event and `PodScheduled=False`, and is bound once a bigger node appears.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use gantry_apiserver::{ApiServer, ApiServerConfig, Pki};
use gantry_scheduler::{Scheduler, SchedulerConfig};
use gantry_store::{WalStore, WalStoreConfig};

struct Harness {
    client: Client,
    _dir: tempfile::TempDir,
}

async fn start() -> anyhow::Result<Harness> {
    let dir = tempfile::tempdir().context("failed to create temp dir")?;
    let store = WalStore::open(WalStoreConfig::new(dir.path().join("store")))
        .context("failed to open store")?;
    let pki = Pki::load_or_create(dir.path(), &[]).context("failed to create pki")?;
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
    let tls = pki.server_config().context("failed to build tls")?;
    tokio::spawn(server.serve(listener, tls, std::future::pending()));
    let kubeconfig = Kubeconfig::from_yaml(&pki.kubeconfig(&format!("https://{addr}")))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Harness {
        client: Client::try_from(config)?,
        _dir: dir,
    })
}

/// Creates a Ready node, then sets its allocatable through `nodes/status` as an agent would.
async fn create_node(client: &Client, name: &str, cpu: &str, memory: &str) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name}
    }))?;
    nodes
        .create(&PostParams::default(), &node)
        .await
        .with_context(|| format!("failed to create node {name}"))?;
    let status = json!({"status": {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .with_context(|| format!("failed to set the status of node {name}"))?;
    Ok(())
}

async fn create_pod(client: &Client, name: &str, cpu: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    }))?;
    pods.create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("failed to create pod {name}"))?;
    Ok(())
}

/// Polls until `check` returns `Some`, or fails after 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn node_of(client: &Client, pod: &str) -> anyhow::Result<Option<String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = pods.get(pod).await?;
    Ok(p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()))
}

#[tokio::test]
async fn binds_pods_reports_unschedulable_and_retries_when_a_node_joins() -> anyhow::Result<()> {
    let h = start().await?;
    create_node(&h.client, "small", "1", "2Gi").await?;
    create_node(&h.client, "medium", "2", "4Gi").await?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(
        Scheduler::new(h.client.clone(), SchedulerConfig::default()).run(async {
            let _ = stopped.await;
        }),
    );

    // 1500m fits only on "medium"; afterwards "medium" has 500m left, so 800m goes to "small".
    create_pod(&h.client, "first", "1500m").await?;
    let first = eventually("first bound", || node_of(&h.client, "first")).await?;
    assert_eq!(first, "medium");
    create_pod(&h.client, "second", "800m").await?;
    let second = eventually("second bound", || node_of(&h.client, "second")).await?;
    assert_eq!(second, "small");

    // Fits nowhere: event and condition, worded as upstream.
    create_pod(&h.client, "big", "3").await?;
    let events: Api<Event> = Api::namespaced(h.client.clone(), "default");
    let event = eventually("FailedScheduling event", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.involved_object.name.as_deref() == Some("big")
            }))
        }
    })
    .await?;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.source.and_then(|s| s.component).as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(
        event.message.as_deref(),
        Some(
            "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
             2 No preemption victims found for incoming pod."
        )
    );
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let condition = eventually("PodScheduled=False", || {
        let pods = pods.clone();
        async move {
            let p = pods.get("big").await?;
            Ok(p.status
                .and_then(|s| s.conditions)
                .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled")))
        }
    })
    .await?;
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(node_of(&h.client, "big").await?, None);

    // A bigger node joins: the pod is retried and bound there.
    create_node(&h.client, "large", "8", "16Gi").await?;
    let big = eventually("big bound", || node_of(&h.client, "big")).await?;
    assert_eq!(big, "large");
    let scheduled = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Scheduled"))
        .filter_map(|e| e.message)
        .collect::<Vec<_>>();
    assert!(
        scheduled.contains(&"Successfully assigned default/big to large".to_string()),
        "{scheduled:?}"
    );

    let p = pods.get("big").await?;
    let condition = p
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"))
        .context("PodScheduled condition")?;
    assert_eq!(condition.status, "True", "flipped after binding");

    let _ = stop.send(());
    scheduler.await??;
    Ok(())
}

#[tokio::test]
async fn pods_created_together_never_overcommit_a_node() -> anyhow::Result<()> {
    let h = start().await?;
    create_node(&h.client, "only", "1", "4Gi").await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(
        Scheduler::new(h.client.clone(), SchedulerConfig::default()).run(async {
            let _ = stopped.await;
        }),
    );
    for name in ["p1", "p2", "p3"] {
        create_pod(&h.client, name, "400m").await?;
    }
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    // Two fit (800m of 1); the third must be reported unschedulable, not bound.
    let unschedulable = eventually("two bound and one unschedulable", || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default()).await?;
            let bound = list
                .items
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .count();
            let rejected: Vec<String> = list
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| {
                                c.type_ == "PodScheduled"
                                    && c.reason.as_deref() == Some("Unschedulable")
                            })
                        })
                })
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            Ok((bound == 2 && rejected.len() == 1).then_some(rejected))
        }
    })
    .await?;
    assert_eq!(unschedulable, vec!["p3".to_string()], "FIFO order");
    let _ = stop.send(());
    scheduler.await??;
    Ok(())
}
