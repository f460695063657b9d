//! Gantry's Kubernetes-compatible API server: HTTPS with bearer-token authentication,
//! discovery and OpenAPI, CRUD with the upstream semantics (resourceVersion, generation,
//! finalizers, owner references), watch, all four patch types, subresources, and the
//! controllers that complete deletion (garbage collector, namespace lifecycle).
//!
//! Invariant: this crate is the only one that touches the store. Objects are JSON values in
//! Kubernetes' own shape; failures become `Status` objects in exactly one place (`status.rs`).

mod codec;
mod controllers;
mod crud;
mod delete;
mod discovery;
mod exec;
mod nodeproxy;
mod object;
pub mod pki;
mod request;
mod respond;
mod server;
mod status;
mod strategy;
mod watch;

pub use nodeproxy::NodeClient;
pub use pki::{Pki, PkiError};
pub use server::{ApiServer, ApiServerConfig};
pub use status::ApiError;
