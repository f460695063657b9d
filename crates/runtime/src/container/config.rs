//! What the agent asks of one container and one pod sandbox: plain data, no I/O.
//! Invariant: a `ContainerConfig` that passes [`ContainerConfig::validate`] always yields a
//! runtime spec runc accepts; checks that need the host (paths exist) happen in `runc`.

use std::path::PathBuf;

/// One container, as the agent describes it (image config merged with the pod spec).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerConfig {
    /// Unique on the node; used as the runc container id and the state directory name.
    pub id: String,
    /// Absolute path of the prepared root filesystem (an overlay mount or a copy).
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    /// `argv` of the process: the entrypoint/command followed by the args.
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Working directory inside the container; `/` when empty.
    pub cwd: String,
    /// The pod name: the container's hostname when it has a UTS namespace of its own (a
    /// joined one already carries the sandbox's hostname).
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    pub security: Security,
    pub namespaces: Namespaces,
    /// The container's cgroup (`/gantry/<id>`); `Runc::start` fills it from its
    /// `cgroup_parent` when `None`.
    pub cgroups_path: Option<String>,
    /// Where the shim writes the CRI log; `<state dir>/<id>/container.log` when `None`.
    pub log_path: Option<PathBuf>,
}

/// A bind mount from the host into the container (volumes, `/etc/hosts`, secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Kubernetes `resources`, in the units the kernel knobs are computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    /// `requests.cpu` in milliCPU: becomes `cpu.shares`.
    pub cpu_request_millis: Option<u64>,
    /// `limits.cpu` in milliCPU: becomes the CFS quota over a 100 ms period.
    pub cpu_limit_millis: Option<u64>,
    /// `limits.memory` in bytes.
    pub memory_limit_bytes: Option<u64>,
}

/// The container's security context, already resolved against the pod's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Security {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub privileged: bool,
    /// Capability names with or without the `CAP_` prefix, any case (`NET_ADMIN`).
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// `allowPrivilegeEscalation: false` and the default both map to `noNewPrivileges`;
    /// only an explicit `true` (or privileged) clears it.
    pub allow_privilege_escalation: bool,
    pub seccomp: Seccomp,
}

/// `securityContext.seccompProfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seccomp {
    #[default]
    Unconfined,
    RuntimeDefault,
}

/// Where each of the container's namespaces comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Namespaces {
    pub network: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    /// `Path` when the pod shares one PID namespace (`shareProcessNamespace`).
    pub pid: NamespaceMode,
}

/// A namespace of the container: its own, joined from a path, or the host's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NamespaceMode {
    #[default]
    New,
    /// Join the namespace at this path (`/proc/<sandbox pid>/ns/<kind>`).
    Path(PathBuf),
    Host,
}

/// One pod's sandbox: the process that holds its network, IPC and UTS namespaces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SandboxConfig {
    /// The pod name: the hostname inside the pod.
    pub hostname: String,
    /// `hostNetwork: true`: no new network namespace, and the host's UTS namespace
    /// (as Kubernetes does), so the hostname is the node's.
    pub host_network: bool,
    /// `shareProcessNamespace: true`: the sandbox holds a PID namespace too, whose init is
    /// a child of the pause process, and every container joins it.
    pub share_pid: bool,
    /// The executable that runs [`crate::container::sandbox::pause_main`] (the `gantry`
    /// binary) and the arguments that select it (`["pause"]`).
    pub pause_exe: PathBuf,
    pub pause_args: Vec<String>,
}

/// Why a configuration cannot become a container.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid container id {0:?}: use 1-64 characters of [A-Za-z0-9_.-], not starting with '.' or '-'")]
    InvalidId(String),
    #[error("rootfs path {0:?} must be absolute")]
    RelativeRootfs(PathBuf),
    #[error("container {0} has no command")]
    NoArgs(String),
    #[error("mount destination {0:?} must be absolute")]
    RelativeMountDestination(String),
    #[error("mount source {0:?} must be absolute")]
    RelativeMountSource(PathBuf),
    #[error("environment entry {0:?} is not NAME=value")]
    InvalidEnv(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("memory limit {0} bytes is below the 4 MiB minimum")]
    MemoryLimitTooLow(u64),
}

impl ContainerConfig {
    /// Checks everything the runtime spec depends on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_id(&self.id)?;
        if !self.rootfs.is_absolute() {
            return Err(ConfigError::RelativeRootfs(self.rootfs.clone()));
        }
        if self.args.is_empty() {
            return Err(ConfigError::NoArgs(self.id.clone()));
        }
        for m in &self.mounts {
            if !m.destination.starts_with('/') {
                return Err(ConfigError::RelativeMountDestination(m.destination.clone()));
            }
            if !m.source.is_absolute() {
                return Err(ConfigError::RelativeMountSource(m.source.clone()));
            }
        }
        if let Some(bad) = self
            .env
            .iter()
            .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
        {
            return Err(ConfigError::InvalidEnv(bad.clone()));
        }
        for cap in self
            .security
            .add_capabilities
            .iter()
            .chain(&self.security.drop_capabilities)
        {
            if cap.eq_ignore_ascii_case("ALL") {
                continue;
            }
            if !crate::container::spec::ALL_CAPABILITIES
                .contains(&crate::container::spec::cap_name(cap).as_str())
            {
                return Err(ConfigError::UnknownCapability(cap.clone()));
            }
        }
        // runc (and the kernel) refuse tiny limits; Kubernetes' own floor is 6 MiB for
        // containerd, so 4 MiB only rejects obvious mistakes.
        if let Some(limit) = self.resources.memory_limit_bytes {
            if limit < 4 * 1024 * 1024 {
                return Err(ConfigError::MemoryLimitTooLow(limit));
            }
        }
        Ok(())
    }
}

/// Container ids become directory names and runc ids: keep them to a safe alphabet.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ContainerConfig {
        ContainerConfig {
            id: "pod-a_c1".into(),
            rootfs: "/var/lib/x/rootfs".into(),
            args: vec!["sh".into()],
            env: vec!["A=b=c".into(), "EMPTY=".into()],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_plain_container() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_ids_paths_env_caps_and_limits() {
        for id in ["", "../x", "-a", "a/b", &"x".repeat(65)] {
            let c = ContainerConfig {
                id: id.into(),
                ..valid()
            };
            assert!(
                matches!(c.validate(), Err(ConfigError::InvalidId(_))),
                "{id}"
            );
        }
        let c = ContainerConfig {
            rootfs: "rel".into(),
            ..valid()
        };
        assert!(matches!(c.validate(), Err(ConfigError::RelativeRootfs(_))));
        let c = ContainerConfig {
            args: vec![],
            ..valid()
        };
        assert!(matches!(c.validate(), Err(ConfigError::NoArgs(_))));
        let c = ContainerConfig {
            env: vec!["NOVALUE".into()],
            ..valid()
        };
        assert!(matches!(c.validate(), Err(ConfigError::InvalidEnv(_))));
        let mut c = valid();
        c.mounts.push(Mount {
            source: "/a".into(),
            destination: "b".into(),
            readonly: false,
        });
        assert!(matches!(
            c.validate(),
            Err(ConfigError::RelativeMountDestination(_))
        ));
        let mut c = valid();
        c.security.add_capabilities.push("FLY".into());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::UnknownCapability(_))
        ));
        let mut c = valid();
        c.security.drop_capabilities.push("all".into());
        c.security.add_capabilities.push("net_admin".into());
        assert_eq!(c.validate(), Ok(()));
        let mut c = valid();
        c.resources.memory_limit_bytes = Some(1024);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MemoryLimitTooLow(1024))
        ));
    }
}
