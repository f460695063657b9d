//! PATCH bodies: RFC 6902 JSON patch, RFC 7386 JSON merge patch and Kubernetes' strategic
//! merge patch, applied to an object in its JSON shape.
//!
//! Before editing: every entry point must leave the caller's object untouched when it fails
//! (the API server retries on conflicts and reuses the stored object), and each error maps to
//! one HTTP status through [`PatchError::status_code`].

mod json;
mod merge;
mod strategic;

pub use json::json_patch;
pub use merge::merge_patch;
pub use strategic::strategic_merge_patch;

use serde_json::Value;

use crate::schema::Message;

/// The three patch formats, named after their `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (Kubernetes).
    Strategic,
}

impl PatchType {
    /// The patch type of a request's `Content-Type`, ignoring parameters such as
    /// `; charset=utf-8`. `application/apply-patch+yaml` (server-side apply) is not a patch
    /// type here and yields `None`, like any unknown media type.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if media.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if media.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::Strategic)
        } else {
            None
        }
    }
}

/// Applies a raw PATCH body to `doc` and returns the patched object; `doc` is not modified.
///
/// `root` is the schema of the object's kind; a strategic merge patch needs it and is refused
/// with 415 without it (Kubernetes does the same for custom resources).
pub fn apply_patch(
    doc: &Value,
    patch: &[u8],
    ty: PatchType,
    root: Option<&'static Message>,
) -> Result<Value, PatchError> {
    if ty == PatchType::Strategic && root.is_none() {
        return Err(PatchError::StrategicUnsupported);
    }
    let patch: Value = serde_json::from_slice(patch).map_err(|e| PatchError::Invalid {
        detail: e.to_string(),
    })?;
    let mut out = doc.clone();
    match (ty, root) {
        (PatchType::Json, _) => json_patch(&mut out, &patch)?,
        (PatchType::Merge, _) => merge_patch(&mut out, &patch),
        (PatchType::Strategic, Some(root)) => strategic_merge_patch(&mut out, &patch, root)?,
        (PatchType::Strategic, None) => return Err(PatchError::StrategicUnsupported),
    }
    Ok(out)
}

/// Why a patch could not be applied. Messages follow the wording of Kubernetes' patch
/// libraries so that clients see familiar text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON, or a JSON patch is malformed (not an array, unknown `op`, bad
    /// pointer, missing `value`).
    #[error("invalid JSON patch: {detail}")]
    Invalid { detail: String },
    /// A JSON patch has more operations than Kubernetes accepts.
    #[error("the allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A JSON patch operation's `path` (or the parent of an `add`) does not exist.
    #[error("{op} operation does not apply: doc is missing path: {path}")]
    MissingPath { op: &'static str, path: String },
    /// A `move` or `copy` operation's `from` does not exist.
    #[error("{op} operation does not apply: doc is missing from path: {from}")]
    MissingFrom { op: &'static str, from: String },
    /// A `move` whose `path` lies inside its own `from`.
    #[error("move operation does not apply: cannot move {from} into its own child {path}")]
    MoveIntoChild { from: String, path: String },
    /// A `test` operation found a different value (`actual` is `missing` when absent).
    #[error("test operation failed: value at {path} is {actual}, not {expected}")]
    TestFailed {
        path: String,
        actual: String,
        expected: String,
    },
    /// A strategic merge patch that breaks the format's rules (bad directive, missing merge
    /// key, list element types that differ).
    #[error("{detail}")]
    Strategic { detail: String },
    /// A strategic merge patch containing a list of lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A strategic merge patch for a kind without a schema (custom resources).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    StrategicUnsupported,
}

impl PatchError {
    /// The HTTP status the API server answers with, as Kubernetes does: 400 for a malformed
    /// patch, 422 for a well-formed patch that does not apply, 413 for too many operations and
    /// 415 for a strategic merge patch on a kind without a schema.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Invalid { .. } | PatchError::Strategic { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::StrategicUnsupported => 415,
            PatchError::MissingPath { .. }
            | PatchError::MissingFrom { .. }
            | PatchError::MoveIntoChild { .. }
            | PatchError::TestFailed { .. }
            | PatchError::ListOfLists => 422,
        }
    }
}

/// JSON equality where numbers compare by value (`2` equals `2.0`), as Go's decoded
/// `float64`s do in Kubernetes.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn scale_merge_patch_from_kubectl_sets_replicas() {
        // kubectl scale deploy/web --replicas=3 sends this body to the scale subresource.
        let scale = json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"replicas": 1},
            "status": {"replicas": 1, "selector": "app=web"}
        });
        let out = apply_patch(
            &scale,
            br#"{"spec":{"replicas":3}}"#,
            PatchType::Merge,
            None,
        )
        .expect("merge patch applies");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["status"], scale["status"]);
        assert_eq!(scale["spec"]["replicas"], 1, "input is left untouched");
    }

    #[test]
    fn body_that_is_not_json_is_a_bad_request() {
        let err = apply_patch(&json!({}), b"{not json", PatchType::Merge, None)
            .expect_err("invalid JSON is rejected");
        assert!(err.to_string().starts_with("invalid JSON patch: "), "{err}");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn strategic_patch_without_schema_is_unsupported_media_type() {
        let err = apply_patch(&json!({}), b"{}", PatchType::Strategic, None)
            .expect_err("no schema, no strategic merge");
        assert_eq!(err.status_code(), 415);
        assert!(err.to_string().contains("application/merge-patch+json"));
    }

    #[test]
    fn failed_json_patch_leaves_nothing_half_applied() {
        let doc = json!({"spec": {"replicas": 2}});
        let body = br#"[{"op":"replace","path":"/spec/replicas","value":5},
                         {"op":"test","path":"/spec/replicas","value":3}]"#;
        let err = apply_patch(&doc, body, PatchType::Json, None).expect_err("test fails");
        assert_eq!(
            err.to_string(),
            "test operation failed: value at /spec/replicas is 5, not 3"
        );
        assert_eq!(err.status_code(), 422);
        assert_eq!(doc["spec"]["replicas"], 2);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!({"a": [2]}), &json!({"a": [2.0]})));
        assert!(!json_eq(&json!(2), &json!("2")));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }
}
