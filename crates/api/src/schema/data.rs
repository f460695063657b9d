//! Generated schema tables (sorted by name). Filled in from Kubernetes' generated.proto.

use super::Message;

/// All messages, sorted by `name` for binary search.
pub static MESSAGES: &[Message] = &[];

/// (group, version, kind, message name) for every top-level kind.
pub static KINDS: &[(&str, &str, &str, &str)] = &[];
