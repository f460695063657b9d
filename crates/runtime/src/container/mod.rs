//! OCI containers: the runtime spec ([`spec`]), runc driven through a per-container shim
//! ([`runc`], [`shim`]) and pod sandboxes holding shared namespaces ([`sandbox`]).
//! Invariant: every container lives in `<state_dir>/<id>/`; that directory (written by the
//! shim) is the source of truth, so the agent can restart and re-adopt containers.

pub mod config;
pub mod spec;

pub use config::{
    ConfigError, ContainerConfig, Mount, NamespaceMode, Namespaces, Resources, SandboxConfig,
    Seccomp, Security,
};
