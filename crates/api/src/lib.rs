//! Gantry's API layer without I/O: which resources exist, their wire schema, and the pure
//! functions the API server applies to objects (defaulting, validation, selectors, patches,
//! tables, protobuf decoding).
//!
//! Objects travel as `serde_json::Value` in exactly the JSON shape Kubernetes serialises; the
//! [`schema`] tables describe every field so that strict decoding, protobuf, strategic merge
//! and OpenAPI all agree on one source of truth.
//! Invariant: nothing in this crate performs I/O, spawns tasks or reads the clock; callers
//! pass the current time in.

pub mod apply;
pub mod defaults;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod strict;
pub mod table;
pub mod time;
pub mod validation;
