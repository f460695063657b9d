//! Unit tests of pod status computation.

use std::time::Duration;

use super::*;
use crate::pods::state::Instance;
use crate::runtime::ContainerId;
use serde_json::json;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("time")
}

fn pod(policy: &str, with_init: bool) -> Pod {
    let mut v = json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"restartPolicy": policy, "containers": [{"name": "app", "image": "img:1"}]}
    });
    if with_init {
        v["spec"]["initContainers"] = json!([{"name": "setup", "image": "img:1"}]);
    }
    serde_json::from_value(v).expect("pod")
}

fn rec(state: ContainerState) -> ContainerRecord {
    ContainerRecord {
        image_id: Some("sha256:abc".into()),
        current: Some(Instance {
            id: ContainerId("c1".into()),
            state,
            exit_handled: true,
        }),
        ..ContainerRecord::default()
    }
}

fn ctx(now: i64) -> StatusContext {
    StatusContext {
        host_ip: Some("192.0.2.10".into()),
        pod_ip: None,
        sandbox_ready: true,
        terminating: false,
        now: Some(at(now)),
    }
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == t)
        .expect("condition")
}

#[test]
fn a_new_pod_is_pending_with_containers_creating() {
    let s = pod_status(&pod("Always", false), &BTreeMap::new(), &ctx(0));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let cs = &s.container_statuses.as_ref().expect("statuses")[0];
    let w = cs
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(w.reason.as_deref(), Some("ContainerCreating"));
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(
        cond(&s, "Ready").message.as_deref(),
        Some("containers with unready status: [app]")
    );
    assert_eq!(cond(&s, "PodScheduled").status, "True");
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(s.host_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(s.pod_ip, None);
}

#[test]
fn a_running_container_makes_the_pod_running_and_ready() {
    let recs = BTreeMap::from([(
        "app".to_string(),
        rec(ContainerState::Running { started_at: at(1) }),
    )]);
    let s = pod_status(&pod("Always", false), &recs, &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let cs = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(cs.ready);
    assert_eq!(cs.started, Some(true));
    assert_eq!(cs.container_id.as_deref(), Some("gantry://c1"));
    assert_eq!(cs.image_id, "sha256:abc");
    assert_eq!(cond(&s, "Ready").status, "True");
    assert_eq!(
        cond(&s, "ContainersReady").last_transition_time,
        Some(Time(at(2)))
    );
}

#[test]
fn transition_times_survive_while_status_holds() {
    let recs = BTreeMap::from([(
        "app".to_string(),
        rec(ContainerState::Running { started_at: at(1) }),
    )]);
    let mut p = pod("Always", false);
    p.status = Some(pod_status(&p, &recs, &ctx(2)));
    let later = pod_status(&p, &recs, &ctx(50));
    assert_eq!(
        cond(&later, "Ready").last_transition_time,
        Some(Time(at(2)))
    );
    assert_eq!(later.start_time, Some(Time(at(2))));
}

#[test]
fn crash_loop_shows_backoff_and_last_state() {
    let mut r = rec(ContainerState::Exited {
        exit_code: 1,
        reason: None,
        message: None,
        started_at: Some(at(10)),
        finished_at: at(11),
    });
    r.restart_count = 2;
    r.restart_at = Some((at(31), Duration::from_secs(20)));
    let recs = BTreeMap::from([("app".to_string(), r)]);
    let s = pod_status(&pod("Always", false), &recs, &ctx(15));
    assert_eq!(
        s.phase.as_deref(),
        Some("Running"),
        "crash loops stay Running"
    );
    let cs = &s.container_statuses.as_ref().expect("statuses")[0];
    let w = cs
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(
        w.message.as_deref(),
        Some("back-off 20s restarting failed container=app pod=web_default(u1)")
    );
    let last = cs
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .expect("last terminated");
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert_eq!(cs.restart_count, 2);
    assert!(!cs.ready);
}

#[test]
fn finished_pods_take_terminal_phases() {
    let done = |code| {
        BTreeMap::from([(
            "app".to_string(),
            rec(ContainerState::Exited {
                exit_code: code,
                reason: None,
                message: None,
                started_at: Some(at(0)),
                finished_at: at(1),
            }),
        )])
    };
    let s = pod_status(&pod("Never", false), &done(0), &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let t = s.container_statuses.as_ref().expect("statuses")[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("terminated");
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    let s = pod_status(&pod("Never", false), &done(3), &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let s = pod_status(&pod("OnFailure", false), &done(0), &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let s = pod_status(&pod("Always", false), &done(143), &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Running"), "Always restarts it");
    let mut stopping = ctx(2);
    stopping.terminating = true;
    let s = pod_status(&pod("Always", false), &done(143), &stopping);
    assert_eq!(
        s.phase.as_deref(),
        Some("Failed"),
        "a deleted pod ends terminal"
    );
}

#[test]
fn init_containers_gate_the_pod() {
    let p = pod("Always", true);
    let s = pod_status(&p, &BTreeMap::new(), &ctx(0));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(&s, "Initialized").status, "False");
    assert_eq!(
        cond(&s, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [setup]")
    );
    let app = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(
        app.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("PodInitializing")
    );
    let recs = BTreeMap::from([(
        "setup".to_string(),
        rec(ContainerState::Exited {
            exit_code: 0,
            reason: None,
            message: None,
            started_at: Some(at(0)),
            finished_at: at(1),
        }),
    )]);
    let s = pod_status(&p, &recs, &ctx(2));
    assert_eq!(cond(&s, "Initialized").status, "True");
    assert!(s.init_container_statuses.as_ref().expect("init")[0].ready);
    let failed = BTreeMap::from([(
        "setup".to_string(),
        rec(ContainerState::Exited {
            exit_code: 2,
            reason: None,
            message: None,
            started_at: Some(at(0)),
            finished_at: at(1),
        }),
    )]);
    let s = pod_status(&pod("Never", true), &failed, &ctx(2));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
}

#[test]
fn pull_failures_show_their_reason() {
    let r = ContainerRecord {
        waiting: Some(crate::pods::state::Waiting {
            reason: "ErrImagePull".into(),
            message: "image \"nope\" not found: manifest unknown".into(),
        }),
        ..ContainerRecord::default()
    };
    let recs = BTreeMap::from([("app".to_string(), r)]);
    let s = pod_status(&pod("Always", false), &recs, &ctx(0));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let w = s.container_statuses.as_ref().expect("statuses")[0]
        .state
        .as_ref()
        .and_then(|s| s.waiting.clone())
        .expect("waiting");
    assert_eq!(w.reason.as_deref(), Some("ErrImagePull"));
}
