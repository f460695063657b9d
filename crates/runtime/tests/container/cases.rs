//! The cases: what a user of a pod would notice.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use gantry_runtime::container::{
    ContainerState, NamespaceKind, Runc, RuncError, Sandbox, SandboxConfig, Seccomp,
};
use tokio::io::AsyncReadExt;

use crate::support::{exit_code, log_lines, wait_exited, wait_log, Env, PAUSE_MARKER};

pub type Case = fn() -> Pin<Box<dyn Future<Output = Result<()>>>>;

pub const ALL: &[(&str, Case)] = &[
    (
        "stdout_and_stderr_reach_the_cri_log_and_exit_code_is_reported",
        || Box::pin(logs_and_exit_code()),
    ),
    ("container_sees_only_its_own_processes_and_hostname", || {
        Box::pin(isolation())
    }),
    (
        "runtime_default_seccomp_and_default_capabilities_apply",
        || Box::pin(seccomp_and_caps()),
    ),
    (
        "cgroup_limits_are_visible_and_memory_hog_is_oom_killed",
        || Box::pin(limits_and_oom()),
    ),
    (
        "stop_runs_the_sigterm_handler_within_the_grace_period",
        || Box::pin(stop_graceful()),
    ),
    (
        "stop_kills_a_process_ignoring_sigterm_after_the_grace_period",
        || Box::pin(stop_kill()),
    ),
    (
        "containers_in_one_sandbox_share_network_but_not_pids",
        || Box::pin(sandbox_sharing()),
    ),
    (
        "host_network_pods_use_the_hosts_network_and_hostname",
        || Box::pin(host_network()),
    ),
    ("containers_in_a_shared_pid_sandbox_see_each_other", || {
        Box::pin(shared_pids())
    }),
    (
        "a_new_runc_re_adopts_running_containers_and_execs_in_them",
        || Box::pin(readopt_and_exec()),
    ),
    ("remove_leaves_no_cgroup_process_or_bundle", || {
        Box::pin(remove_cleans_up())
    }),
    (
        "a_missing_command_fails_the_start_with_runcs_reason",
        || Box::pin(start_failure()),
    ),
];

const T: Duration = Duration::from_secs(20);

async fn logs_and_exit_code() -> Result<()> {
    let env = Env::new()?;
    let cfg = env.container(
        "logs",
        "echo hello; echo oops >&2; printf 'no newline'; exit 3",
    )?;
    let h = env.runc.start(&cfg).await?;
    let state = wait_exited(&env.runc, "logs", T).await?;
    ensure!(exit_code(&state) == Some(3), "want exit 3, got {state:?}");
    let ContainerState::Exited {
        signal,
        oom_killed,
        started_at,
        finished_at,
        ..
    } = state
    else {
        unreachable!()
    };
    ensure!(signal.is_none() && !oom_killed);
    ensure!(started_at.is_some() && finished_at >= started_at);
    ensure!(h.log_path == env.runc.log_path("logs")?);
    let out = log_lines(&h.log_path, "stdout")?;
    ensure!(out == ["hello", "no newline"], "stdout records {out:?}");
    ensure!(log_lines(&h.log_path, "stderr")? == ["oops"]);
    env.runc.remove("logs").await?;
    Ok(())
}

async fn isolation() -> Result<()> {
    let env = Env::new()?;
    let mut cfg = env.container("iso", "ps -o pid,comm; hostname; id -u")?;
    cfg.hostname = "web-7".into();
    cfg.security.uid = 65534;
    cfg.security.gid = 65534;
    let h = env.runc.start(&cfg).await?;
    wait_exited(&env.runc, "iso", T).await?;
    let out = log_lines(&h.log_path, "stdout")?;
    // Header, sh as PID 1, ps itself: nothing of the host.
    ensure!(out.len() == 5, "output {out:?}");
    ensure!(
        out[1].split_whitespace().next() == Some("1"),
        "sh is not PID 1: {out:?}"
    );
    ensure!(out[3] == "web-7", "hostname {:?}", out[3]);
    ensure!(out[4] == "65534", "uid {:?}", out[4]);
    env.runc.remove("iso").await?;
    Ok(())
}

async fn seccomp_and_caps() -> Result<()> {
    let env = Env::new()?;
    let script = "grep -E '^(Seccomp|CapBnd|NoNewPrivs):' /proc/self/status; \
                  unshare -U true && echo userns-allowed || echo userns-denied";
    let mut cfg = env.container("sec", script)?;
    cfg.security.seccomp = Seccomp::RuntimeDefault;
    let h = env.runc.start(&cfg).await?;
    wait_exited(&env.runc, "sec", T).await?;
    let out = log_lines(&h.log_path, "stdout")?;
    let field = |k: &str| {
        out.iter()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    ensure!(field("Seccomp:") == "2", "not filtered: {out:?}");
    ensure!(field("NoNewPrivs:") == "1", "{out:?}");
    // Kubernetes' default set: the same bounding mask Docker and containerd produce.
    ensure!(field("CapBnd:") == "00000000a80425fb", "{out:?}");
    ensure!(
        out.last().map(String::as_str) == Some("userns-denied"),
        "{out:?}"
    );
    env.runc.remove("sec").await?;
    Ok(())
}

async fn limits_and_oom() -> Result<()> {
    let env = Env::new()?;
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares \
                  /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
    let mut cfg = env.container("lim", script)?;
    cfg.resources.memory_limit_bytes = Some(32 << 20);
    cfg.resources.cpu_request_millis = Some(250);
    cfg.resources.cpu_limit_millis = Some(500);
    let h = env.runc.start(&cfg).await?;
    wait_exited(&env.runc, "lim", T).await?;
    let out = log_lines(&h.log_path, "stdout")?;
    ensure!(
        out == ["33554432", "256", "50000"],
        "limits seen inside: {out:?}"
    );

    let mut cfg = env.container("hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1")?;
    cfg.resources.memory_limit_bytes = Some(16 << 20);
    env.runc.start(&cfg).await?;
    let state = wait_exited(&env.runc, "hog", T).await?;
    let ContainerState::Exited {
        oom_killed,
        exit_code,
        signal,
        ..
    } = state
    else {
        unreachable!()
    };
    ensure!(oom_killed, "not reported as OOMKilled: {state:?}");
    ensure!(exit_code == 137 && signal == Some(9), "{state:?}");
    env.runc.remove("lim").await?;
    env.runc.remove("hog").await?;
    Ok(())
}

async fn stop_graceful() -> Result<()> {
    let env = Env::new()?;
    let script = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let h = env.runc.start(&env.container("term", script)?).await?;
    wait_log(&h.log_path, "ready", T).await?;
    let t = Instant::now();
    let state = env.runc.stop("term", Duration::from_secs(10)).await?;
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    ensure!(exit_code(&state) == Some(0), "{state:?}");
    ensure!(log_lines(&h.log_path, "stdout")?.contains(&"got-term".to_string()));
    env.runc.remove("term").await?;
    Ok(())
}

async fn stop_kill() -> Result<()> {
    let env = Env::new()?;
    let script = "trap '' TERM; echo ready; while true; do sleep 0.1; done";
    let h = env.runc.start(&env.container("stubborn", script)?).await?;
    wait_log(&h.log_path, "ready", T).await?;
    let t = Instant::now();
    let state = env.runc.stop("stubborn", Duration::from_secs(1)).await?;
    let took = t.elapsed();
    ensure!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    let ContainerState::Exited {
        signal, exit_code, ..
    } = state
    else {
        anyhow::bail!("{state:?}")
    };
    ensure!(
        signal == Some(9) && exit_code == 137,
        "signal {signal:?} code {exit_code}"
    );
    env.runc.remove("stubborn").await?;
    Ok(())
}

async fn sandbox_sharing() -> Result<()> {
    let env = Env::new()?;
    let sandbox = Sandbox::start(&SandboxConfig {
        hostname: "shared-pod".into(),
        host_network: false,
        pause_exe: std::env::current_exe()?,
        pause_args: vec![PAUSE_MARKER.into()],
        share_pid: false,
    })?;
    let result = async {
        let mut server = env.container(
            "srv",
            "mkdir -p /tmp/www && echo hello-from-srv > /tmp/www/index.html && \
             exec httpd -f -p 127.0.0.1:8080 -h /tmp/www",
        )?;
        server.namespaces = sandbox.namespaces();
        env.runc.start(&server).await?;
        let mut client = env.container(
            "cli",
            "hostname; ps -o comm | grep -c httpd; \
             for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1",
        )?;
        client.namespaces = sandbox.namespaces();
        client.hostname = "ignored-when-joining".into();
        let h = env.runc.start(&client).await?;
        let state = wait_exited(&env.runc, "cli", T).await?;
        let out = log_lines(&h.log_path, "stdout")?;
        ensure!(exit_code(&state) == Some(0), "client failed: {state:?} {out:?}");
        ensure!(out.first().map(String::as_str) == Some("shared-pod"), "hostname is not the pod's: {out:?}");
        ensure!(out.get(1).map(String::as_str) == Some("0"), "client sees the server's process: {out:?}");
        ensure!(out.last().map(String::as_str) == Some("hello-from-srv"), "{out:?}");
        ensure!(sandbox.ns_path(NamespaceKind::Network).is_some());
        env.runc.stop("srv", Duration::from_secs(1)).await?;
        env.runc.remove("srv").await?;
        env.runc.remove("cli").await?;
        Ok(())
    }
    .await;
    sandbox.stop()?;
    result
}

async fn host_network() -> Result<()> {
    let env = Env::new()?;
    let sandbox = Sandbox::start(&SandboxConfig {
        hostname: "hostnet-pod".into(),
        host_network: true,
        pause_exe: std::env::current_exe()?,
        pause_args: vec![PAUSE_MARKER.into()],
        share_pid: false,
    })?;
    let result = async {
        ensure!(sandbox.ns_path(NamespaceKind::Network).is_none());
        let mut cfg = env.container(
            "hostnet",
            "hostname; cat /sys/class/net/lo/operstate; ls /sys/class/net | wc -l",
        )?;
        cfg.namespaces = sandbox.namespaces();
        let h = env.runc.start(&cfg).await?;
        let state = wait_exited(&env.runc, "hostnet", T).await?;
        let out = log_lines(&h.log_path, "stdout")?;
        ensure!(exit_code(&state) == Some(0), "{state:?} {out:?}");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
        ensure!(
            out.first().map(String::as_str) == Some(host.trim()),
            "{out:?}"
        );
        let host_ifaces = std::fs::read_dir("/sys/class/net")?.count();
        ensure!(
            out.get(2).map(String::as_str) == Some(host_ifaces.to_string().as_str()),
            "{out:?}"
        );
        env.runc.remove("hostnet").await?;
        Ok(())
    }
    .await;
    sandbox.stop()?;
    result
}

async fn shared_pids() -> Result<()> {
    let env = Env::new()?;
    let sandbox = Sandbox::start(&SandboxConfig {
        hostname: "pid-pod".into(),
        host_network: false,
        pause_exe: std::env::current_exe()?,
        pause_args: vec![PAUSE_MARKER.into()],
        share_pid: true,
    })?;
    let result = async {
        let mut first = env.container("first", "exec sleep 1000")?;
        first.namespaces = sandbox.namespaces();
        env.runc.start(&first).await?;
        let mut second = env.container("second", "ps -o pid,comm")?;
        second.namespaces = sandbox.namespaces();
        let h = env.runc.start(&second).await?;
        let state = wait_exited(&env.runc, "second", T).await?;
        let out = log_lines(&h.log_path, "stdout")?;
        ensure!(exit_code(&state) == Some(0), "{state:?} {out:?}");
        ensure!(
            out.iter().any(|l| l.ends_with("sleep")),
            "the other container is not visible: {out:?}"
        );
        // PID 1 is the sandbox's init, not a container's process.
        ensure!(
            out.iter().any(|l| l.split_whitespace().next() == Some("1")),
            "{out:?}"
        );
        ensure!(
            !out.iter().any(|l| l.trim() == "1 ps" || l.trim() == "1 sh"),
            "{out:?}"
        );
        env.runc.remove("first").await?;
        env.runc.remove("second").await?;
        Ok(())
    }
    .await;
    sandbox.stop()?;
    result
}

async fn readopt_and_exec() -> Result<()> {
    let env = Env::new()?;
    let h = env
        .runc
        .start(&env.container("long", "echo up; exec sleep 1000")?)
        .await?;
    // A new Runc over the same directories, as after an agent restart.
    let again = Runc::new(env.runc.config().clone());
    let list = again.list().await?;
    ensure!(list.len() == 1 && list[0].id == "long", "{list:?}");
    ensure!(list[0].log_path == h.log_path);
    let ContainerState::Running { pid, started_at } = list[0].state.clone() else {
        anyhow::bail!("{list:?}")
    };
    ensure!(pid == h.pid && started_at == h.started_at);

    let argv = ["sh", "-c", "read x; echo $((x * 2)); echo err >&2; exit 3"].map(String::from);
    let mut child = again.exec("long", &argv, false).await?;
    let mut stdin = child.stdin.take().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"21\n").await?;
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_string(&mut out)
        .await?;
    child
        .stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut err)
        .await?;
    let status = child.wait().await?;
    ensure!(
        out.trim() == "42" && err.trim() == "err",
        "out {out:?} err {err:?}"
    );
    ensure!(status.code() == Some(3), "{status}");
    ensure!(matches!(
        again.exec("long", &argv, true).await,
        Err(RuncError::TtyUnsupported)
    ));

    let state = again.stop("long", Duration::from_secs(1)).await?;
    ensure!(matches!(state, ContainerState::Exited { .. }), "{state:?}");
    again.remove("long").await?;
    Ok(())
}

async fn remove_cleans_up() -> Result<()> {
    let env = Env::new()?;
    let mut cfg = env.container("gone", "exec sleep 1000")?;
    cfg.resources.memory_limit_bytes = Some(64 << 20);
    let h = env.runc.start(&cfg).await?;
    let dir = env.runc.container_dir("gone");
    let shim: i32 = std::fs::read_to_string(dir.join("shim.pid"))?
        .trim()
        .parse()?;
    ensure!(
        env.cgroup_dir("memory", "gone").exists(),
        "no cgroup while running"
    );
    env.runc.remove("gone").await?;
    ensure!(
        !env.cgroup_dir("memory", "gone").exists(),
        "cgroup left behind"
    );
    ensure!(
        !env.cgroup_dir("pids", "gone").exists(),
        "pids cgroup left behind"
    );
    ensure!(
        !std::path::Path::new(&format!("/proc/{}", h.pid)).exists(),
        "container process left behind"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{shim}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(
        !std::path::Path::new(&format!("/proc/{shim}")).exists(),
        "shim left behind"
    );
    ensure!(!dir.exists(), "bundle left behind");
    ensure!(env.runc.list().await?.is_empty());
    ensure!(matches!(
        env.runc.state("gone").await,
        Err(RuncError::NotFound(_))
    ));
    Ok(())
}

async fn start_failure() -> Result<()> {
    let env = Env::new()?;
    let mut cfg = env.container("bad", "")?;
    cfg.args = vec!["/no/such/command".into()];
    match env.runc.start(&cfg).await {
        Err(RuncError::StartFailed { message, .. }) => {
            ensure!(message.contains("no such file"), "message {message:?}")
        }
        other => anyhow::bail!("want StartFailed, got {other:?}"),
    }
    let state = env.runc.state("bad").await?;
    ensure!(exit_code(&state) == Some(128), "{state:?}");
    env.runc.remove("bad").await?;
    Ok(())
}
