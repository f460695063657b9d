//! The node's container machinery, with no knowledge of the Kubernetes API: OCI images
//! ([`image`]: pull, verify, content store, unpacked snapshots) and OCI containers
//! ([`container`]: runtime spec, runc, the per-container shim, pod sandboxes).
//! See `docs/dev/pod-lifecycle.md`.

pub mod container;
pub mod image;
