//! What the pod spec asks for: init containers, hostNetwork, env from ConfigMaps and Secrets.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use gantry_agent::fake::{Behaviour, Call, FakePuller, FakeRuntime};

use crate::support::*;

#[tokio::test]
async fn init_containers_run_first_and_host_network_pods_get_the_host_ip() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    runtime.set_behaviour("setup", Behaviour::Exit(0));
    let agent = start_agent(&c, runtime.clone(), Arc::new(FakePuller::new()))?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let mut p = pod(
        "hostnet",
        serde_json::json!([{"name": "app", "image": "img:1"}]),
    )?;
    let spec = p.spec.as_mut().context("spec")?;
    spec.host_network = Some(true);
    spec.init_containers = Some(vec![serde_json::from_value(
        serde_json::json!({"name": "setup", "image": "img:1", "command": ["true"]}),
    )?]);
    pods.create(&PostParams::default(), &p).await?;
    let running = wait_for(15, "a running pod after its init container", || async {
        let p = get_pod(&pods, "hostnet").await?;
        app_status(&p)?.ready.then_some(p)
    })
    .await?;
    let status = running.status.context("status")?;
    assert_eq!(status.pod_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(
        status.pod_ips.context("podIPs")?[0].ip,
        "192.0.2.10",
        "hostNetwork pods share the host's address"
    );
    let init = &status.init_container_statuses.context("init statuses")?[0];
    let done = init
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .context("terminated")?;
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert!(init.ready);
    let order: Vec<String> = runtime
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Start(spec) => Some(spec.name),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec!["setup", "app"]);
    let sandbox = runtime
        .calls()
        .into_iter()
        .find_map(|call| match call {
            Call::RunSandbox(s) => Some(s),
            _ => None,
        })
        .context("sandbox")?;
    assert!(sandbox.host_network);
    assert_eq!(sandbox.hostname, "hostnet");
    agent.shutdown().await
}

#[tokio::test]
async fn a_missing_config_map_holds_the_container_until_it_exists() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    let agent = start_agent(&c, runtime.clone(), Arc::new(FakePuller::new()))?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod(
            "configured",
            serde_json::json!([{"name": "app", "image": "img:1",
                "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}}],
                "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "S_"}]}]),
        )?,
    )
    .await?;
    // envFrom is resolved before env, as the kubelet does: the Secret is missed first.
    let waiting_message = |want: &'static str| {
        let pods = pods.clone();
        async move {
            wait_for(15, want, || async {
                let w = app_status(&get_pod(&pods, "configured").await?)?
                    .state?
                    .waiting?;
                (w.reason.as_deref() == Some("CreateContainerConfigError")
                    && w.message.as_deref() == Some(want))
                .then_some(())
            })
            .await
        }
    };
    waiting_message("secret \"creds\" not found").await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(c.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                serde_json::json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}),
            )?,
        )
        .await?;
    waiting_message("configmap \"settings\" not found").await?;
    assert!(
        runtime.containers().is_empty(),
        "nothing starts without its config"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(c.client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            serde_json::json!({"metadata": {"name": "settings"}, "data": {"color": "blue"}}),
        )?,
    )
    .await?;
    wait_for(15, "the container running", || async {
        app_status(&get_pod(&pods, "configured").await?)?
            .ready
            .then_some(())
    })
    .await?;
    let env = runtime
        .calls()
        .into_iter()
        .find_map(|call| match call {
            Call::Start(spec) => Some(spec.env),
            _ => None,
        })
        .context("started")?;
    assert!(
        env.contains(&("COLOR".to_string(), "blue".to_string())),
        "{env:?}"
    );
    assert!(
        env.contains(&("S_token".to_string(), "s3cret".to_string())),
        "{env:?}"
    );
    agent.shutdown().await
}
