//! OpenAPI v3 documents served at `/openapi/v3` and `/openapi/v3/<api/v1|apis/G/V>`, generated
//! from [`crate::registry::RESOURCES`] and [`crate::schema`]; see `docs/dev/openapi.md` for what
//! kubectl reads from them.
//! Invariant: documents are built once per process and their bytes never change, so `hash`
//! (the `?hash=` of the index, also fit for `ETag`) stays valid for the life of the server.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

mod paths;
mod schemas;

use schemas::SchemaSource;

pub use paths::PATCH_CONTENT_TYPES;

/// The `/openapi/v3` index: `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=…"}}}`.
pub fn index() -> Value {
    let mut paths = Map::new();
    for doc in documents() {
        paths.insert(
            doc.path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{}?hash={}", doc.path, doc.hash) }),
        );
    }
    json!({ "paths": paths })
}

/// The serialized JSON document for `api/v1` or `apis/apps/v1` (no leading slash); None for a
/// group-version that is not served.
pub fn document(path: &str) -> Option<&'static [u8]> {
    find(path).map(|d| d.bytes.as_slice())
}

/// The content hash of a document: its `?hash=` in the index. Upper-case hex, stable across
/// runs of the same build.
pub fn hash(path: &str) -> Option<&'static str> {
    find(path).map(|d| d.hash.as_str())
}

/// Content type of [`v2_document`]. kubectl asks for `…spec.v2@v1.0+protobuf` but cannot parse
/// an `@` in a response media type, so answer with the dotted form, as Kubernetes does.
pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A protobuf OpenAPI v2 document with no paths and no definitions, for `GET /openapi/v2`.
/// kubectl validates `kind: List` manifests client-side against v2 and aborts when the
/// document cannot be fetched; with no definitions it finds no model and skips validation.
pub fn v2_document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        // gnostic openapi_v2.Document: swagger = 1, info = 2 {title = 1, version = 2},
        // paths = 8, definitions = 9.
        let mut info = Vec::new();
        proto_bytes(&mut info, 1, b"Gantry");
        proto_bytes(&mut info, 2, env!("CARGO_PKG_VERSION").as_bytes());
        let mut doc = Vec::new();
        proto_bytes(&mut doc, 1, b"2.0");
        proto_bytes(&mut doc, 2, &info);
        proto_bytes(&mut doc, 8, &[]);
        proto_bytes(&mut doc, 9, &[]);
        doc
    })
}

/// Appends a length-delimited protobuf field.
fn proto_bytes(out: &mut Vec<u8>, field: u8, value: &[u8]) {
    out.push(field << 3 | 2);
    let mut len = value.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(value);
}

/// One built group-version document.
struct Doc {
    path: String,
    bytes: Vec<u8>,
    hash: String,
}

fn documents() -> &'static [Doc] {
    static DOCS: OnceLock<Vec<Doc>> = OnceLock::new();
    DOCS.get_or_init(|| build_all(&schemas::Tables))
}

fn find(path: &str) -> Option<&'static Doc> {
    documents().iter().find(|d| d.path == path)
}

fn build_all(src: &dyn SchemaSource) -> Vec<Doc> {
    crate::registry::group_versions()
        .into_iter()
        .map(|(group, version)| {
            let bytes = build(group, version, src).to_string().into_bytes();
            Doc {
                path: paths::api_prefix(group, version)
                    .trim_start_matches('/')
                    .to_string(),
                hash: content_hash(&bytes),
                bytes,
            }
        })
        .collect()
}

/// The document of one group-version.
fn build(group: &str, version: &str, src: &dyn SchemaSource) -> Value {
    let resources: Vec<_> = crate::registry::RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let components = schemas::components(&paths::roots(&resources), src);
    json!({
        "components": {
            "schemas": components,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
        },
        "info": { "title": "Gantry", "version": env!("CARGO_PKG_VERSION") },
        "openapi": "3.0.0",
        "paths": paths::paths(group, version, &resources),
        "security": [{ "BearerToken": [] }],
    })
}

/// 128-bit FNV-1a of the bytes, as 32 upper-case hex digits. Clients treat the value as
/// opaque; only stability and change-on-change matter.
fn content_hash(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let h = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{h:032X}")
}

#[cfg(test)]
mod tests;
