//! Pod workers: running, crash loops, pull failures, deletion, re-adoption.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;

use gantry_agent::fake::{Behaviour, Call, FakePuller, FakeRuntime};
use gantry_agent::PullError;

use crate::support::*;

#[tokio::test]
async fn a_bound_pod_runs_and_reports_status_and_events() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    let puller = Arc::new(FakePuller::new());
    let agent = start_agent(&c, runtime.clone(), puller.clone())?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                "web",
                serde_json::json!([{"name": "app", "image": "registry.test/app:1",
                    "args": ["-c", "echo $(GREETING)"],
                    "env": [{"name": "GREETING", "value": "hello"},
                            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]),
            )?,
        )
        .await?;
    let running = wait_for(15, "a running pod", || async {
        let p = get_pod(&pods, "web").await?;
        let s = app_status(&p)?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running") && s.ready).then_some(p)
    })
    .await?;
    let status = running.status.clone().context("status")?;
    let cs = app_status(&running).context("container status")?;
    assert!(cs
        .container_id
        .as_deref()
        .is_some_and(|id| id.starts_with("gantry://")));
    assert!(cs.image_id.starts_with("sha256:"));
    assert_eq!(cs.image, "registry.test/app:1");
    assert_eq!(cs.restart_count, 0);
    assert_eq!(cs.started, Some(true));
    assert!(cs.state.and_then(|s| s.running).is_some());
    assert_eq!(status.host_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(
        status.pod_ip, None,
        "loopback-only sandboxes have no pod IP yet"
    );
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    assert!(status.start_time.is_some());
    let conditions = status.conditions.context("conditions")?;
    for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        let cond = conditions
            .iter()
            .find(|c| c.type_ == t)
            .context("condition")?;
        assert_eq!(cond.status, "True", "{t}");
        assert!(cond.last_transition_time.is_some());
    }

    let started = runtime
        .calls()
        .into_iter()
        .find_map(|call| match call {
            Call::Start(spec) => Some(spec),
            _ => None,
        })
        .context("a container was started")?;
    assert_eq!(
        started.argv,
        vec!["-c", "echo hello"],
        "args replace the image cmd"
    );
    assert!(started
        .env
        .contains(&("POD".to_string(), "web".to_string())));
    assert_eq!(
        started.labels.get("io.kubernetes.pod.uid"),
        created.metadata.uid.as_ref()
    );

    let reasons = wait_for(10, "kubelet events", || async {
        let r = event_reasons(&c, "web").await.ok()?;
        ["Pulling", "Pulled", "Created", "Started"]
            .iter()
            .all(|want| r.iter().any(|x| x == want))
            .then_some(r)
    })
    .await?;
    assert!(!reasons.iter().any(|r| r == "Failed"), "{reasons:?}");
    agent.shutdown().await
}

#[tokio::test]
async fn a_crashing_container_backs_off_in_crash_loop() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    runtime.set_behaviour("crash", Behaviour::Exit(1));
    let agent = start_agent(&c, runtime.clone(), Arc::new(FakePuller::new()))?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod(
            "crasher",
            serde_json::json!([{"name": "crash", "image": "img:1"}]),
        )?,
    )
    .await?;
    let cs = wait_for(20, "CrashLoopBackOff after a restart", || async {
        let p = get_pod(&pods, "crasher").await?;
        let s = app_status(&p)?;
        let waiting =
            s.state.as_ref()?.waiting.as_ref()?.reason.as_deref() == Some("CrashLoopBackOff");
        (waiting && s.restart_count >= 1).then_some((p, s))
    })
    .await?;
    let (p, s) = cs;
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    let last = s
        .last_state
        .and_then(|l| l.terminated)
        .context("last state terminated")?;
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert!(!s.ready);
    wait_for(20, "more restarts after the back-off", || async {
        let s = app_status(&get_pod(&pods, "crasher").await?)?;
        (s.restart_count >= 3).then_some(())
    })
    .await?;
    let reasons = event_reasons(&c, "crasher").await?;
    assert!(reasons.iter().any(|r| r == "BackOff"), "{reasons:?}");
    agent.shutdown().await
}

#[tokio::test]
async fn a_failed_pull_shows_err_image_pull_then_back_off() -> Result<()> {
    let c = cluster().await?;
    let puller = Arc::new(FakePuller::new());
    puller.fail(
        "registry.test/missing:1",
        PullError::NotFound {
            image: "registry.test/missing:1".into(),
            reason: "manifest unknown".into(),
        },
    );
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let cfg = watcher::Config::default().fields("metadata.name=nopull");
    let mut stream = watcher(pods.clone(), cfg).boxed();
    let agent = start_agent(&c, Arc::new(FakeRuntime::new()), puller.clone())?;
    pods.create(
        &PostParams::default(),
        &pod(
            "nopull",
            serde_json::json!([{"name": "app", "image": "registry.test/missing:1"}]),
        )?,
    )
    .await?;
    let mut seen: Vec<String> = Vec::new();
    let watch = async {
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                let reason = app_status(&p)
                    .and_then(|s| s.state)
                    .and_then(|s| s.waiting)
                    .and_then(|w| w.reason);
                if let Some(r) = reason {
                    if seen.last() != Some(&r) {
                        seen.push(r);
                    }
                }
                if seen.iter().any(|r| r == "ImagePullBackOff")
                    && seen.iter().any(|r| r == "ErrImagePull")
                {
                    return Some(p);
                }
            }
        }
        None
    };
    let p = tokio::time::timeout(Duration::from_secs(15), watch)
        .await
        .context("pull failure reasons")?
        .context("watch ended")?;
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let first = seen.iter().position(|r| r == "ErrImagePull");
    let backoff = seen.iter().position(|r| r == "ImagePullBackOff");
    assert!(first < backoff, "ErrImagePull comes first: {seen:?}");
    wait_for(10, "a retried pull", || async {
        (puller.pulls().len() >= 2).then_some(())
    })
    .await?;
    let reasons = event_reasons(&c, "nopull").await?;
    assert!(reasons.iter().any(|r| r == "Failed"), "{reasons:?}");
    agent.shutdown().await
}

#[tokio::test]
async fn deleting_a_pod_stops_its_containers_and_removes_it() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    let agent = start_agent(&c, runtime.clone(), Arc::new(FakePuller::new()))?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                "doomed",
                serde_json::json!([{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:1"}]),
            )?,
        )
        .await?;
    let uid = created.metadata.uid.clone().context("uid")?;
    wait_for(15, "two running containers", || async {
        (runtime.running(&uid).len() == 2).then_some(())
    })
    .await?;
    let cfg = watcher::Config::default().fields("metadata.name=doomed");
    let mut stream = watcher(pods.clone(), cfg).boxed();
    pods.delete("doomed", &DeleteParams::default()).await?;
    // The agent writes a final status, then removes the pod (grace 0, uid precondition).
    let last = tokio::time::timeout(Duration::from_secs(15), async {
        let mut last = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => last = Some(p),
                Ok(watcher::Event::Delete(_)) => return last,
                _ => {}
            }
        }
        None
    })
    .await
    .context("the pod was not removed (the API server must delete a terminating pod on gracePeriodSeconds=0)")?
    .context("no status before removal")?;
    assert!(pods.get_opt("doomed").await?.is_none());
    let final_status = last.status.context("final status")?;
    assert_eq!(
        final_status.phase.as_deref(),
        Some("Failed"),
        "stopped by SIGTERM"
    );
    for cs in final_status.container_statuses.context("statuses")? {
        let t = cs.state.and_then(|s| s.terminated).context("terminated")?;
        assert_eq!(t.exit_code, 143);
    }
    let stops: Vec<Duration> = runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Stop(_, grace) => Some(grace),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops,
        vec![Duration::from_secs(5); 2],
        "stopped with the pod's grace period"
    );
    assert!(runtime.containers().is_empty(), "containers removed");
    assert!(runtime.sandboxes().is_empty(), "sandbox removed");
    let reasons = event_reasons(&c, "doomed").await?;
    assert!(reasons.iter().any(|r| r == "Killing"), "{reasons:?}");
    agent.shutdown().await
}

#[tokio::test]
async fn a_restarted_agent_re_adopts_without_duplicates() -> Result<()> {
    let c = cluster().await?;
    let runtime = Arc::new(FakeRuntime::new());
    let puller = Arc::new(FakePuller::new());
    let agent = start_agent(&c, runtime.clone(), puller.clone())?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let kept = pods
        .create(
            &PostParams::default(),
            &pod("kept", serde_json::json!([{"name": "a", "image": "img:1"}]))?,
        )
        .await?;
    let gone = pods
        .create(
            &PostParams::default(),
            &pod("gone", serde_json::json!([{"name": "a", "image": "img:1"}]))?,
        )
        .await?;
    let kept_uid = kept.metadata.uid.clone().context("uid")?;
    let gone_uid = gone.metadata.uid.clone().context("uid")?;
    wait_for(15, "both pods running", || async {
        let a = app_status(&get_pod(&pods, "kept").await?)?.ready;
        let b = app_status(&get_pod(&pods, "gone").await?)?.ready;
        (a && b).then_some(())
    })
    .await?;
    let before: Vec<String> = runtime
        .running(&kept_uid)
        .into_iter()
        .map(|c| c.id.0)
        .collect();
    let starts_before = runtime
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Start(_)))
        .count();
    agent.shutdown().await?;

    // While the agent is down one pod is force-deleted; its containers must not survive.
    pods.delete(
        "gone",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await?;
    assert_eq!(
        runtime.running(&gone_uid).len(),
        1,
        "containers outlive the agent"
    );

    let agent = start_agent(&c, runtime.clone(), puller)?;
    wait_for(15, "the orphaned pod's containers removed", || async {
        runtime.running(&gone_uid).is_empty().then_some(())
    })
    .await?;
    // Give the new agent several sync periods to (wrongly) start anything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<String> = runtime
        .running(&kept_uid)
        .into_iter()
        .map(|c| c.id.0)
        .collect();
    assert_eq!(before, after, "same containers, none duplicated");
    let starts_after = runtime
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Start(_)))
        .count();
    assert_eq!(starts_before, starts_after, "nothing was started again");
    let sandboxes = runtime
        .sandboxes()
        .into_iter()
        .filter(|s| s.pod_uid == kept_uid)
        .count();
    assert_eq!(sandboxes, 1);
    let s = app_status(&get_pod(&pods, "kept").await.context("pod")?).context("status")?;
    assert!(s.ready);
    assert_eq!(s.restart_count, 0);
    agent.shutdown().await
}
