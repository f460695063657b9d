//! The plugins of the default profile, one file each; `registry.rs` wires them together.

pub mod default_binder;
pub mod node_affinity;
pub mod node_name;
pub mod node_ready;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;
