//! Turns a [`ContainerConfig`] into an OCI runtime-spec 1.0 `config.json` (a pure function).
//! Invariant: everything here is data; the only consumer is runc, so when in doubt match
//! what `runc spec` and Kubernetes (via containerd) generate.
//! Spec: <https://github.com/opencontainers/runtime-spec/blob/v1.0.2/config.md>.

mod seccomp;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use super::config::{ContainerConfig, NamespaceMode, Seccomp};

pub use seccomp::runtime_default_profile;

/// Kubernetes' (containerd's) default capability set for unprivileged containers.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux 5.x/6.x knows, in number order; privileged containers get them all.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// runc's default `maskedPaths` (what `runc spec` writes), plus containerd's powercap.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default `readonlyPaths`.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The CFS period Kubernetes uses for CPU limits, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The OCI runtime spec for `cfg` (call [`ContainerConfig::validate`] first).
pub fn runtime_spec(cfg: &ContainerConfig) -> Value {
    let sec = &cfg.security;
    let caps = capabilities(cfg);
    let mut user = json!({ "uid": sec.uid, "gid": sec.gid });
    if !sec.additional_gids.is_empty() {
        user["additionalGids"] = json!(sec.additional_gids);
    }
    let cwd = if cfg.cwd.is_empty() {
        "/"
    } else {
        cfg.cwd.as_str()
    };
    let process = json!({
        "terminal": false,
        "user": user,
        "args": cfg.args,
        "env": cfg.env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": !(sec.allow_privilege_escalation || sec.privileged),
        "oomScoreAdj": 0,
    });

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": cfg.rootfs, "readonly": cfg.readonly_rootfs },
        "mounts": mounts(cfg),
        "linux": linux(cfg),
    });
    // A joined UTS namespace belongs to the sandbox, which set the pod's hostname; runc
    // refuses a hostname in the host's.
    if cfg.namespaces.uts == NamespaceMode::New && !cfg.hostname.is_empty() {
        spec["hostname"] = json!(cfg.hostname);
    }
    spec
}

/// `CAP_NET_ADMIN` from `NET_ADMIN`, `net_admin` or `CAP_NET_ADMIN`.
pub fn cap_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The capability set: Kubernetes' defaults, then `drop` (which may be `ALL`), then `add`.
fn capabilities(cfg: &ContainerConfig) -> Vec<String> {
    let sec = &cfg.security;
    if sec.privileged {
        return ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    }
    let add: Vec<String> = sec.add_capabilities.iter().map(|c| cap_name(c)).collect();
    let drop: Vec<String> = sec.drop_capabilities.iter().map(|c| cap_name(c)).collect();
    let drop_all = drop.iter().any(|c| c == "CAP_ALL");
    let add_all = add.iter().any(|c| c == "CAP_ALL");
    let base: &[&str] = if add_all {
        ALL_CAPABILITIES
    } else {
        DEFAULT_CAPABILITIES
    };
    ALL_CAPABILITIES
        .iter()
        .filter(|c| {
            let c = c.to_string();
            let kept = base.contains(&c.as_str()) && !drop_all && !drop.contains(&c);
            kept || add_all || add.contains(&c)
        })
        .map(|c| c.to_string())
        .collect()
}

fn mounts(cfg: &ContainerConfig) -> Vec<Value> {
    let privileged = cfg.security.privileged;
    let ro = if privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
    ];
    // A host network namespace cannot mount a fresh sysfs; bind the host's instead.
    if cfg.namespaces.network == NamespaceMode::Host {
        mounts.push(
            json!({ "destination": "/sys", "type": "bind", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", ro] }),
        );
    } else {
        mounts.push(
            json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                            "options": ["nosuid", "noexec", "nodev", ro] }),
        );
    }
    mounts.push(
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["nosuid", "noexec", "nodev", "relatime", ro] }),
    );
    for m in &cfg.mounts {
        let mode = if m.readonly { "ro" } else { "rw" };
        mounts.push(
            json!({ "destination": m.destination, "type": "bind", "source": m.source,
                            "options": ["rbind", "rprivate", mode] }),
        );
    }
    mounts
}

fn linux(cfg: &ContainerConfig) -> Value {
    let ns = &cfg.namespaces;
    let mut namespaces = vec![json!({ "type": "mount" })];
    for (kind, mode) in [
        ("pid", &ns.pid),
        ("network", &ns.network),
        ("ipc", &ns.ipc),
        ("uts", &ns.uts),
    ] {
        match mode {
            NamespaceMode::New => namespaces.push(json!({ "type": kind })),
            NamespaceMode::Path(path) => namespaces.push(json!({ "type": kind, "path": path })),
            NamespaceMode::Host => {}
        }
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources(cfg),
    });
    if let Some(path) = &cfg.cgroups_path {
        linux["cgroupsPath"] = json!(path);
    }
    if !cfg.security.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if cfg.security.seccomp == Seccomp::RuntimeDefault {
            linux["seccomp"] = runtime_default_profile();
        }
    }
    linux
}

/// `cpu.shares` as Kubernetes computes it from a request (`MilliCPUToShares`).
pub fn cpu_shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).max(2)
}

/// CFS quota in microseconds per [`CPU_PERIOD_US`] (`MilliCPUToQuota`, 1 ms minimum).
pub fn cpu_quota(millis: u64) -> i64 {
    let quota = millis.saturating_mul(CPU_PERIOD_US) / 1000;
    i64::try_from(quota.max(1000)).unwrap_or(i64::MAX)
}

fn resources(cfg: &ContainerConfig) -> Value {
    let r = &cfg.resources;
    let mut res = json!({
        // Deny all devices; runc adds its default allow-list (null, zero, full, tty,
        // random, urandom, ptmx) on top.
        "devices": [{ "allow": cfg.security.privileged, "access": "rwm" }],
    });
    let mut cpu = serde_json::Map::new();
    // Kubernetes gives a container without a request the minimum shares.
    cpu.insert(
        "shares".into(),
        json!(cpu_shares(r.cpu_request_millis.unwrap_or(0))),
    );
    if let Some(limit) = r.cpu_limit_millis {
        cpu.insert("quota".into(), json!(cpu_quota(limit)));
        cpu.insert("period".into(), json!(CPU_PERIOD_US));
    }
    res["cpu"] = Value::Object(cpu);
    if let Some(limit) = r.memory_limit_bytes {
        // swap == limit: no swap on top of the limit, as Kubernetes sets on cgroup v1.
        res["memory"] = json!({ "limit": limit, "swap": limit });
    }
    res
}
