//! The one place where failures become Kubernetes `Status` objects.
//!
//! Upstream writes Status as compact JSON in Go struct field order with a trailing newline;
//! clients (and the acceptance tests) compare bytes, so the field order here is fixed by hand
//! rather than left to a map.

use gantry_api::registry::ResourceType;
use serde_json::{json, Map, Value};

/// A failure to answer a request, shaped after Kubernetes' `StatusReason`s.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound {
        message: String,
        name: String,
        group: String,
        kind: String,
    },
    #[error("{message}")]
    AlreadyExists {
        message: String,
        name: String,
        group: String,
        kind: String,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        name: String,
        group: String,
        kind: String,
        causes: Vec<Value>,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        name: String,
        group: String,
        kind: String,
        causes: Vec<Value>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("Request entity too large: limit is {0}")]
    TooLarge(usize),
    #[error("{message}")]
    Gone { message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::NotFound {
            message: format!("{} \"{}\" not found", rt.group_resource(), name),
            name: name.to_string(),
            group: rt.group.to_string(),
            kind: rt.plural.to_string(),
        }
    }

    pub fn namespace_not_found(namespace: &str) -> ApiError {
        ApiError::NotFound {
            message: format!("namespaces \"{namespace}\" not found"),
            name: namespace.to_string(),
            group: String::new(),
            kind: "namespaces".to_string(),
        }
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::AlreadyExists {
            message: format!("{} \"{}\" already exists", rt.group_resource(), name),
            name: name.to_string(),
            group: rt.group.to_string(),
            kind: rt.plural.to_string(),
        }
    }

    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub fn modified(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::conflict(
            rt,
            name,
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.group_resource(),
                name
            ),
            Vec::new(),
        )
    }

    pub fn conflict(
        rt: &ResourceType,
        name: &str,
        message: String,
        causes: Vec<Value>,
    ) -> ApiError {
        ApiError::Conflict {
            message,
            name: name.to_string(),
            group: rt.group.to_string(),
            kind: rt.plural.to_string(),
            causes,
        }
    }

    /// A 422 whose message names the kind (`Deployment.apps "web" is invalid: …`).
    pub fn invalid(rt: &ResourceType, name: &str, message: String, causes: Vec<Value>) -> ApiError {
        ApiError::Invalid {
            message,
            name: name.to_string(),
            group: rt.group.to_string(),
            kind: rt.kind.to_string(),
            causes,
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::NotAcceptable(_) => 406,
            ApiError::TooLarge(_) => 413,
            ApiError::Gone { .. } => 410,
            ApiError::Forbidden(_) => 403,
            ApiError::Unauthorized => 401,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::Gone { .. } => "Expired",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The Status object, fields in upstream's order.
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        status.insert("kind".into(), json!("Status"));
        status.insert("apiVersion".into(), json!("v1"));
        status.insert("metadata".into(), json!({}));
        status.insert("status".into(), json!("Failure"));
        status.insert("message".into(), json!(self.to_string()));
        status.insert("reason".into(), json!(self.reason()));
        let details = match self {
            ApiError::NotFound {
                name, group, kind, ..
            }
            | ApiError::AlreadyExists {
                name, group, kind, ..
            } => Some(details(name, group, kind, &[])),
            ApiError::Conflict {
                name,
                group,
                kind,
                causes,
                ..
            }
            | ApiError::Invalid {
                name,
                group,
                kind,
                causes,
                ..
            } => Some(details(name, group, kind, causes)),
            _ => None,
        };
        if let Some(d) = details {
            status.insert("details".into(), d);
        }
        status.insert("code".into(), json!(self.code()));
        Value::Object(status)
    }

    /// The Status serialised exactly as upstream: compact JSON plus a newline.
    pub fn to_body(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec(&self.to_status()).expect("a Value always serialises");
        body.push(b'\n');
        body
    }
}

fn details(name: &str, group: &str, kind: &str, causes: &[Value]) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    if !causes.is_empty() {
        d.insert("causes".into(), Value::Array(causes.to_vec()));
    }
    Value::Object(d)
}

/// The Status of a successful delete of a kind that answers with Status rather than the object.
pub fn success(name: &str, group: &str, kind: &str, uid: &str) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    d.insert("uid".into(), json!(uid));
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":Value::Object(d)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::registry;

    #[test]
    fn already_exists_matches_upstream_bytes() {
        let svc = registry::by_plural("", "v1", "services").expect("services are served");
        let body = ApiError::already_exists(svc, "web").to_body();
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"services \\\"web\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"web\",\"kind\":\"services\"},\"code\":409}\n"
        );
    }

    #[test]
    fn group_resources_name_their_group() {
        let deploy = registry::by_plural("apps", "v1", "deployments").expect("served");
        let status = ApiError::not_found(deploy, "web").to_status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["code"], 404);
    }
}
