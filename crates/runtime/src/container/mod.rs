//! OCI containers: the runtime spec ([`spec`]), runc driven through a per-container shim
//! ([`runc`], [`shim`]) and pod sandboxes holding shared namespaces ([`sandbox`]).
//! Invariant: every container lives in `<state_dir>/<id>/`; that directory (written by the
//! shim) is the source of truth, so the agent can restart and re-adopt containers.

pub mod config;
mod files;
pub mod logs;
pub mod runc;
pub mod sandbox;
pub mod shim;
pub mod spec;
mod sys;
pub mod time;

pub use config::{
    ConfigError, ContainerConfig, Mount, NamespaceMode, Namespaces, Resources, SandboxConfig,
    Seccomp, Security,
};
pub use runc::{ContainerHandle, ContainerInfo, ContainerState, Runc, RuncConfig, RuncError};
pub use sandbox::{NamespaceKind, Sandbox, SandboxError};

/// Sends signal `sig` to process `pid` (used to stop a `runc exec`, which forwards it).
pub fn signal(pid: u32, sig: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    sys::kill(pid, sig)
}

/// Removes an (empty) cgroup from every hierarchy, e.g. a pod's parent cgroup once its
/// containers are removed (each container's own cgroup goes with [`Runc::remove`]). A failure
/// is logged, never fatal.
pub fn remove_cgroup(cgroups_path: &str) {
    runc::cgroup::remove(std::path::Path::new(files::CGROUP_ROOT), cgroups_path);
}
