use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;
use crate::container::config::{Mount, NamespaceMode, Namespaces, Resources, Security};

fn base() -> ContainerConfig {
    ContainerConfig {
        id: "c1".into(),
        rootfs: "/data/c1/rootfs".into(),
        args: vec!["sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["PATH=/bin".into()],
        hostname: "web-0".into(),
        cgroups_path: Some("/gantry/c1".into()),
        ..Default::default()
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

fn namespace<'a>(spec: &'a Value, kind: &str) -> Option<&'a Value> {
    spec["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["type"] == kind)
}

#[test]
fn process_has_args_env_cwd_user_and_no_new_privileges() {
    let mut cfg = base();
    cfg.cwd = "/work".into();
    cfg.security = Security {
        uid: 1000,
        gid: 2000,
        additional_gids: vec![5, 6],
        ..Default::default()
    };
    let spec = runtime_spec(&cfg);
    assert_eq!(spec["ociVersion"], "1.0.2");
    let p = &spec["process"];
    assert_eq!(p["args"], json!(["sh", "-c", "echo hi"]));
    assert_eq!(p["env"], json!(["PATH=/bin"]));
    assert_eq!(p["cwd"], "/work");
    assert_eq!(
        p["user"],
        json!({ "uid": 1000, "gid": 2000, "additionalGids": [5, 6] })
    );
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["terminal"], false);
    assert_eq!(
        spec["root"],
        json!({ "path": "/data/c1/rootfs", "readonly": false })
    );
    assert_eq!(spec["hostname"], "web-0");
    assert_eq!(spec["linux"]["cgroupsPath"], "/gantry/c1");
    assert_eq!(runtime_spec(&base())["process"]["cwd"], "/");
}

#[test]
fn default_capabilities_are_kubernetes_set_adjusted_by_add_and_drop() {
    let spec = runtime_spec(&base());
    let mut caps = strings(&spec["process"]["capabilities"]["bounding"]);
    caps.sort_unstable();
    let mut want = DEFAULT_CAPABILITIES.to_vec();
    want.sort_unstable();
    assert_eq!(caps, want);
    assert_eq!(
        spec["process"]["capabilities"]["effective"],
        spec["process"]["capabilities"]["bounding"]
    );

    let mut cfg = base();
    cfg.security.add_capabilities = vec!["NET_ADMIN".into(), "cap_sys_time".into()];
    cfg.security.drop_capabilities = vec!["NET_RAW".into(), "MKNOD".into()];
    let caps = runtime_spec(&cfg)["process"]["capabilities"]["permitted"].clone();
    let caps = strings(&caps);
    assert!(caps.contains(&"CAP_NET_ADMIN") && caps.contains(&"CAP_SYS_TIME"));
    assert!(!caps.contains(&"CAP_NET_RAW") && !caps.contains(&"CAP_MKNOD"));
    assert!(caps.contains(&"CAP_CHOWN"));

    cfg.security.drop_capabilities = vec!["ALL".into()];
    cfg.security.add_capabilities = vec!["NET_BIND_SERVICE".into()];
    let caps = runtime_spec(&cfg)["process"]["capabilities"]["bounding"].clone();
    assert_eq!(strings(&caps), vec!["CAP_NET_BIND_SERVICE"]);
}

#[test]
fn privileged_gets_every_capability_and_no_masks() {
    let mut cfg = base();
    cfg.security.privileged = true;
    cfg.security.seccomp = Seccomp::RuntimeDefault;
    let spec = runtime_spec(&cfg);
    assert_eq!(
        strings(&spec["process"]["capabilities"]["bounding"]).len(),
        ALL_CAPABILITIES.len()
    );
    assert_eq!(spec["process"]["noNewPrivileges"], false);
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert!(spec["linux"].get("seccomp").is_none());
}

#[test]
fn masked_and_readonly_paths_are_runc_defaults() {
    let spec = runtime_spec(&base());
    let masked = strings(&spec["linux"]["maskedPaths"]);
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
        "/proc/acpi",
    ] {
        assert!(masked.contains(&p), "{p}");
    }
    assert_eq!(
        strings(&spec["linux"]["readonlyPaths"]),
        vec![
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );
}

#[test]
fn standard_mounts_then_bind_mounts() {
    let mut cfg = base();
    cfg.mounts.push(Mount {
        source: "/host/data".into(),
        destination: "/data".into(),
        readonly: true,
    });
    let spec = runtime_spec(&cfg);
    let mounts = spec["mounts"].as_array().expect("mounts");
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().expect("dest"))
        .collect();
    assert_eq!(
        dests,
        vec![
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/data"
        ]
    );
    assert!(strings(&mounts[5]["options"]).contains(&"ro"));
    assert_eq!(mounts[6]["type"], "cgroup");
    assert!(strings(&mounts[6]["options"]).contains(&"ro"));
    assert_eq!(mounts[7]["type"], "bind");
    assert_eq!(mounts[7]["source"], "/host/data");
    assert!(strings(&mounts[7]["options"]).contains(&"ro"));
}

#[test]
fn namespaces_new_joined_or_host() {
    let spec = runtime_spec(&base());
    for kind in ["pid", "mount", "network", "ipc", "uts"] {
        assert!(
            namespace(&spec, kind).is_some_and(|n| n.get("path").is_none()),
            "{kind}"
        );
    }

    let mut cfg = base();
    cfg.namespaces = Namespaces {
        network: NamespaceMode::Path(PathBuf::from("/proc/42/ns/net")),
        ipc: NamespaceMode::Path(PathBuf::from("/proc/42/ns/ipc")),
        uts: NamespaceMode::Path(PathBuf::from("/proc/42/ns/uts")),
        pid: NamespaceMode::New,
    };
    let spec = runtime_spec(&cfg);
    assert_eq!(
        namespace(&spec, "network").expect("net")["path"],
        "/proc/42/ns/net"
    );
    assert_eq!(
        namespace(&spec, "uts").expect("uts")["path"],
        "/proc/42/ns/uts"
    );
    assert!(namespace(&spec, "pid").expect("pid").get("path").is_none());
    assert!(
        spec.get("hostname").is_none(),
        "the sandbox owns a joined UTS namespace"
    );

    cfg.namespaces.network = NamespaceMode::Host;
    cfg.namespaces.uts = NamespaceMode::Host;
    cfg.namespaces.pid = NamespaceMode::Path("/proc/43/ns/pid".into());
    let spec = runtime_spec(&cfg);
    assert!(namespace(&spec, "network").is_none());
    assert!(namespace(&spec, "uts").is_none());
    assert!(
        spec.get("hostname").is_none(),
        "runc refuses a hostname in the host's UTS namespace"
    );
    assert_eq!(
        namespace(&spec, "pid").expect("pid")["path"],
        "/proc/43/ns/pid"
    );
    assert_eq!(
        spec["mounts"][5]["type"], "bind",
        "sysfs of the host network is bound"
    );
}

#[test]
fn cpu_and_memory_resources_follow_kubernetes() {
    assert_eq!(cpu_shares(0), 2);
    assert_eq!(cpu_shares(1), 2);
    assert_eq!(cpu_shares(250), 256);
    assert_eq!(cpu_shares(1000), 1024);
    assert_eq!(cpu_quota(500), 50_000);
    assert_eq!(cpu_quota(1), 1000);
    assert_eq!(cpu_quota(2500), 250_000);

    let mut cfg = base();
    cfg.resources = Resources {
        cpu_request_millis: Some(100),
        cpu_limit_millis: Some(200),
        memory_limit_bytes: Some(64 << 20),
    };
    let res = runtime_spec(&cfg)["linux"]["resources"].clone();
    assert_eq!(
        res["cpu"],
        json!({ "shares": 102, "quota": 20_000, "period": 100_000 })
    );
    assert_eq!(
        res["memory"],
        json!({ "limit": 64 << 20, "swap": 64 << 20 })
    );
    assert_eq!(res["devices"], json!([{ "allow": false, "access": "rwm" }]));

    let res = runtime_spec(&base())["linux"]["resources"].clone();
    assert_eq!(res["cpu"], json!({ "shares": 2 }));
    assert!(res.get("memory").is_none());
}

#[test]
fn runtime_default_seccomp_denies_dangerous_calls_with_eperm() {
    assert!(runtime_spec(&base())["linux"].get("seccomp").is_none());
    let mut cfg = base();
    cfg.security.seccomp = Seccomp::RuntimeDefault;
    let seccomp = runtime_spec(&cfg)["linux"]["seccomp"].clone();
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
    assert!(!seccomp["architectures"]
        .as_array()
        .expect("archs")
        .is_empty());
    let rules = seccomp["syscalls"].as_array().expect("rules");
    let denied = strings(&rules[0]["names"]);
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "ptrace",
        "personality",
        "mount",
        "kexec_load",
        "bpf",
    ] {
        assert!(denied.contains(&name), "{name}");
    }
    assert_eq!(rules[0]["action"], "SCMP_ACT_ERRNO");
    assert_eq!(rules[0]["errnoRet"], libc::EPERM);
    let unshare = rules
        .iter()
        .find(|r| r["names"] == json!(["unshare"]))
        .expect("unshare rule");
    assert_eq!(unshare["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(unshare["args"][0]["value"], 0x1000_0000);
}
