//! Request bodies in (JSON, YAML, Kubernetes protobuf) and responses out.

use bytes::Bytes;
use gantry_api::registry::ResourceType;
use http::{header, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::status::ApiError;

pub type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The largest request body accepted, as upstream (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Media type of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
}

impl BodyType {
    pub fn from_content_type(ct: Option<&str>) -> Result<BodyType, ApiError> {
        let media = ct.map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        match media.as_deref() {
            None | Some("") | Some("application/json") | Some("*/*") => Ok(BodyType::Json),
            Some("application/yaml") | Some("application/apply-patch+yaml") => Ok(BodyType::Yaml),
            Some("application/vnd.kubernetes.protobuf") => Ok(BodyType::Protobuf),
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
            ))),
        }
    }
}

/// Decodes an object body into JSON for the resource `rt` (used in messages).
pub fn decode_object(ty: BodyType, body: &[u8], expected_kind: &str) -> Result<Value, ApiError> {
    let value = match ty {
        BodyType::Json => serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the object provided is unrecognized (must be of type {expected_kind}): couldn't get version/kind; json parse error: {e}"
            ))
        })?,
        BodyType::Yaml => yaml_to_json(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the object provided is unrecognized (must be of type {expected_kind}): couldn't get version/kind; yaml parse error: {e}"
            ))
        })?,
        BodyType::Protobuf => gantry_api::protobuf::decode(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the object provided is unrecognized (must be of type {expected_kind}): {e}"
            ))
        })?,
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the object provided is unrecognized (must be of type {expected_kind}): body is not a JSON object"
        )));
    }
    Ok(value)
}

/// Parses YAML (a single document) into JSON values.
pub fn yaml_to_json(body: &[u8]) -> Result<Value, String> {
    let yaml: serde_yaml::Value = serde_yaml::from_slice(body).map_err(|e| e.to_string())?;
    serde_json::to_value(yaml).map_err(|e| e.to_string())
}

/// Checks that a decoded body is the kind the URL addresses.
pub fn check_kind(
    obj: &Value,
    rt: &ResourceType,
    kind: &str,
    api_version: &str,
) -> Result<(), ApiError> {
    let got_kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let got_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if got_kind.is_empty() && got_version.is_empty() {
        return Ok(());
    }
    if got_kind != kind || (!got_version.is_empty() && got_version != api_version) {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({got_version}) does not match the expected API version ({api_version}) or kind ({got_kind}) does not match the expected kind ({kind}) for {}",
            rt.group_resource()
        )));
    }
    Ok(())
}

pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).expect("a Value always serialises");
    body.push(b'\n');
    bytes_response(code, "application/json", body)
}

pub fn yaml_response(code: u16, value: &Value) -> Response<Body> {
    let body = serde_yaml::to_string(value).unwrap_or_default();
    bytes_response(code, "application/yaml", body.into_bytes())
}

pub fn bytes_response(code: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    bytes_response(err.code(), "application/json", err.to_body())
}

pub fn full(body: Vec<u8>) -> Body {
    Full::new(Bytes::from(body)).boxed_unsync()
}

/// A streamed body fed by a channel; the stream ends when the sender is dropped.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    }))
    .boxed_unsync()
}
