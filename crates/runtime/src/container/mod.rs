//! OCI containers: runtime spec, runc, shim, pod sandboxes.
