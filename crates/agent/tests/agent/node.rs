//! The Node and its Lease.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

use gantry_agent::fake::{FakePuller, FakeRuntime};

use crate::support::*;

#[tokio::test]
async fn node_registers_ready_and_renews_its_lease() -> Result<()> {
    let c = cluster().await?;
    let agent = start_agent(
        &c,
        Arc::new(FakeRuntime::new()),
        Arc::new(FakePuller::new()),
    )?;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let node = wait_for(10, "a Ready node", || async {
        let n = nodes.get_opt(NODE).await.ok().flatten()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await?;
    let status = node.status.clone().context("status")?;
    let cap = status.capacity.context("capacity")?;
    assert_eq!(cap["cpu"].0, "4");
    assert_eq!(cap["memory"].0, "8388608Ki");
    assert_eq!(cap["pods"].0, "110");
    assert!(status
        .allocatable
        .context("allocatable")?
        .contains_key("ephemeral-storage"));
    let info = status.node_info.context("nodeInfo")?;
    assert_eq!(info.container_runtime_version, "fake://0.1.0");
    assert_eq!(info.kubelet_version, "v1.32.0-gantry");
    assert_eq!(info.architecture, "amd64");
    assert!(!info.boot_id.is_empty() && !info.machine_id.is_empty());
    let conditions = status.conditions.context("conditions")?;
    for (t, reason) in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
        ("Ready", "KubeletReady"),
    ] {
        let cond = conditions
            .iter()
            .find(|c| c.type_ == t)
            .context("condition")?;
        assert_eq!(cond.reason.as_deref(), Some(reason), "{t}");
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["topology.kubernetes.io/zone"], "zone-1");
    assert_eq!(labels["topology.gantry.dev/rack"], "rack-7");
    assert_eq!(labels["team"], "infra");
    let addresses = status.addresses.context("addresses")?;
    assert_eq!(addresses[0].type_, "InternalIP");
    assert_eq!(addresses[0].address, "192.0.2.10");
    assert_eq!(
        status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port),
        Some(10250)
    );

    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let first = wait_for(10, "the node lease", || async {
        let l = leases.get_opt(NODE).await.ok().flatten()?;
        l.spec.as_ref()?.renew_time.clone()
    })
    .await?;
    let lease = leases.get(NODE).await?;
    let spec = lease.spec.clone().context("lease spec")?;
    assert_eq!(spec.holder_identity.as_deref(), Some(NODE));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &lease.metadata.owner_references.context("owner")?[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));
    assert_eq!(Some(owner.uid.clone()), node.metadata.uid);
    wait_for(10, "a renewed lease", || async {
        let l = leases.get_opt(NODE).await.ok().flatten()?;
        let t = l.spec?.renew_time?;
        (t.0 > first.0).then_some(())
    })
    .await?;
    agent.shutdown().await
}
