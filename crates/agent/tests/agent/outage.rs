//! Losing the API server and catching up.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use gantry_agent::fake::{FakePuller, FakeRuntime};

use crate::support::*;

#[tokio::test]
async fn the_agent_keeps_pods_running_without_the_api_server_and_catches_up() -> Result<()> {
    let c = cluster().await?;
    let proxy = Outage::start(c.addr).await?;
    let kubeconfig = Kubeconfig::from_yaml(&(c.kubeconfig)(&format!("https://{}", proxy.addr)))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let via_proxy = Client::try_from(config)?;
    let runtime = Arc::new(FakeRuntime::new());
    let agent = start_agent_with(&c, via_proxy, runtime.clone(), Arc::new(FakePuller::new()))?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                "steady",
                serde_json::json!([{"name": "a", "image": "img:1"}]),
            )?,
        )
        .await?;
    let uid = created.metadata.uid.clone().context("uid")?;
    wait_for(15, "a running pod", || async {
        app_status(&get_pod(&pods, "steady").await?)?
            .ready
            .then_some(())
    })
    .await?;

    proxy.cut();
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let renewed_before = leases
        .get(NODE)
        .await?
        .spec
        .and_then(|s| s.renew_time)
        .context("renewTime")?;
    // The container dies while the API server is unreachable: the agent restarts it anyway.
    let first = runtime.running(&uid).pop().context("running container")?;
    runtime.exit(&first.id, 1);
    wait_for(10, "a local restart during the outage", || async {
        let now = runtime.running(&uid);
        (now.len() == 1 && now[0].id != first.id).then_some(())
    })
    .await?;
    // A pod bound while the agent is cut off is picked up once it reconnects.
    pods.create(
        &PostParams::default(),
        &pod("late", serde_json::json!([{"name": "a", "image": "img:1"}]))?,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stale = app_status(&get_pod(&pods, "steady").await.context("pod")?).context("status")?;
    assert_eq!(
        stale.restart_count, 0,
        "nothing reached the API server during the outage"
    );

    proxy.restore();
    wait_for(30, "the restart reported after the outage", || async {
        let s = app_status(&get_pod(&pods, "steady").await?)?;
        (s.restart_count == 1 && s.ready).then_some(())
    })
    .await?;
    wait_for(30, "the pod created during the outage running", || async {
        app_status(&get_pod(&pods, "late").await?)?
            .ready
            .then_some(())
    })
    .await?;
    wait_for(10, "a lease renewed after the outage", || async {
        let t = leases.get_opt(NODE).await.ok()??.spec?.renew_time?;
        (t.0 > renewed_before.0).then_some(())
    })
    .await?;
    agent.shutdown().await
}
