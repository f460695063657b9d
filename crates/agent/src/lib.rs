//! The node agent (see docs/dev/pod-lifecycle.md).
