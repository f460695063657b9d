//! Encoding answers in the form the client asked for: the object, a Table, or
//! PartialObjectMetadata; lists with their resourceVersion and continue token.

use base64::Engine as _;
use bytes::Bytes;
use gantry_api::registry::ResourceType;
use gantry_api::selector::{FieldSelector, LabelSelector};
use gantry_api::table::{self, IncludeObject, TableOptions};
use http::Response;
use serde_json::{json, Map, Value};

use crate::codec::{self, Body};
use crate::object;
use crate::request::Output;
use crate::status::ApiError;

/// One object, with warnings as `Warning: 299 - "…"` headers.
pub fn respond(
    rt: &ResourceType,
    output: Output,
    code: u16,
    obj: &Value,
    warnings: &[String],
) -> Result<Response<Body>, ApiError> {
    let mut resp = match output {
        Output::Json => codec::json_response(code, obj),
        Output::Yaml => codec::yaml_response(code, obj),
        Output::Table => {
            let list_meta =
                json!({"resourceVersion": object::meta_str(obj, "resourceVersion").unwrap_or("")});
            codec::json_response(
                code,
                &table::table(rt, std::slice::from_ref(obj), list_meta, &table_options()),
            )
        }
        Output::PartialMetadata => codec::json_response(code, &partial(obj)),
    };
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("Warning", v);
        }
    }
    Ok(resp)
}

/// A list of objects.
pub fn respond_list(
    rt: &ResourceType,
    output: Output,
    items: Vec<Value>,
    revision: i64,
    continue_token: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let mut list_meta = Map::new();
    list_meta.insert("resourceVersion".into(), json!(revision.to_string()));
    if let Some(c) = continue_token {
        list_meta.insert("continue".into(), json!(c));
    }
    let list_meta = Value::Object(list_meta);
    Ok(match output {
        Output::Table => {
            codec::json_response(200, &table::table(rt, &items, list_meta, &table_options()))
        }
        Output::PartialMetadata => {
            let items: Vec<Value> = items.iter().map(partial).collect();
            codec::json_response(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items}),
            )
        }
        Output::Json | Output::Yaml => {
            let list = json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": list_meta, "items": items});
            if output == Output::Yaml {
                codec::yaml_response(200, &list)
            } else {
                codec::json_response(200, &list)
            }
        }
    })
}

pub fn table_options() -> TableOptions {
    TableOptions {
        include_object: IncludeObject::Metadata,
        now_unix: object::now_unix(),
    }
}

/// Bytes gathered before a chunk of a streamed list is sent.
const CHUNK: usize = 256 * 1024;

/// A whole-collection JSON list streamed item by item, so that listing 150,000 objects never
/// holds more than one chunk of encoded output. Objects are spliced from their stored bytes
/// unless a selector needs them decoded.
pub fn stream_list(
    rt: &'static ResourceType,
    kvs: Vec<gantry_store::KeyValue>,
    revision: i64,
    filter: Option<(LabelSelector, FieldSelector)>,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{revision}\"}},\"items\":[",
            rt.list_kind(),
            rt.api_version()
        )
        .into_bytes();
        let mut first = true;
        for kv in &kvs {
            let encoded = match (
                &filter,
                object::with_resource_version(&kv.value, kv.mod_revision),
            ) {
                (None, Some(bytes)) => bytes,
                _ => {
                    let Ok(obj) = object::decode(kv) else {
                        continue;
                    };
                    if let Some((labels, fields)) = &filter {
                        if !(labels.matches(&object::labels(&obj)) && fields.matches(rt, &obj)) {
                            continue;
                        }
                    }
                    serde_json::to_vec(&obj).expect("a Value always serialises")
                }
            };
            if !first {
                buf.push(b',');
            }
            first = false;
            buf.extend_from_slice(&encoded);
            if buf.len() >= CHUNK
                && tx
                    .blocking_send(Bytes::from(std::mem::take(&mut buf)))
                    .is_err()
            {
                return;
            }
        }
        buf.extend_from_slice(b"]}\n");
        let _ = tx.blocking_send(Bytes::from(buf));
    });
    let mut resp = Response::new(codec::channel_body(rx));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// `PartialObjectMetadata` of an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A continue token: where the next page starts and the revision of the first page.
pub fn encode_continue(last_key: &str, revision: i64) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

/// The key a continue token resumes after.
pub fn decode_continue(token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest(format!("invalid continue token \"{token}\""));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v.get("start")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue("/registry/core/pods/shop/web-1", 42);
        assert_eq!(
            decode_continue(&t).expect("valid"),
            "/registry/core/pods/shop/web-1"
        );
        assert!(decode_continue("not-a-token!").is_err());
    }
}
