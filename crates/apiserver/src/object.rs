//! Small accessors over objects held as JSON, and the storage encoding: objects are stored
//! without `metadata.resourceVersion`, which is always the store's `mod_revision` and is put
//! back on every read.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gantry_store::KeyValue;
use serde_json::{Map, Value};

use crate::status::ApiError;

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let m = meta_mut(obj);
    if finalizers.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

pub fn owner_uids(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> Map<String, Value> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time as Kubernetes writes `metav1.Time`.
pub fn now_rfc3339() -> String {
    gantry_api::time::format_rfc3339(now_unix())
}

/// Decodes a stored value and sets its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

pub fn set_resource_version(obj: &mut Value, rev: i64) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
}

/// Encodes an object for storage: without resourceVersion, and with `apiVersion`, `kind` and
/// `metadata` first (as upstream orders them). The fixed order is what lets
/// [`with_resource_version`] splice the version into stored bytes without parsing them.
pub fn encode(obj: &Value) -> Bytes {
    let mut out = Map::new();
    if let Some(o) = obj.as_object() {
        for k in ["apiVersion", "kind", "metadata"] {
            if let Some(v) = o.get(k) {
                out.insert(k.to_string(), v.clone());
            }
        }
        for (k, v) in o {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&Value::Object(out)).expect("a Value always serialises"))
}

/// The stored JSON of an object with its resourceVersion put back, without decoding it.
/// Returns `None` for bytes not laid out by [`encode`].
pub fn with_resource_version(stored: &[u8], rev: i64) -> Option<Vec<u8>> {
    const META: &[u8] = b"\"metadata\":{";
    if !stored.starts_with(b"{\"apiVersion\":\"") {
        return None;
    }
    let at = stored.windows(META.len()).position(|w| w == META)? + META.len();
    let field = format!("\"resourceVersion\":\"{rev}\"");
    let mut out = Vec::with_capacity(stored.len() + field.len() + 1);
    out.extend_from_slice(&stored[..at]);
    out.extend_from_slice(field.as_bytes());
    if stored.get(at) != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(&stored[at..]);
    Some(out)
}

/// The resourceVersion a client put in an object, if any.
pub fn resource_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse::<i64>().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid resourceVersion \"{rv}\": must be an integer"
            ))
        }),
    }
}

/// Lowercase letters and digits Kubernetes uses for generated name suffixes (no vowels, so
/// no words).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random 5-character suffix for `generateName`.
pub fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| SUFFIX_ALPHABET[*b as usize % SUFFIX_ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spliced_resource_version_equals_decoding() {
        for obj in [
            json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}, "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "resourceVersion": "3"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        ] {
            let stored = encode(&obj);
            let spliced: Value =
                serde_json::from_slice(&with_resource_version(&stored, 42).expect("encode layout"))
                    .expect("valid JSON");
            let kv = gantry_store::KeyValue {
                key: "k".into(),
                value: stored,
                create_revision: 1,
                mod_revision: 42,
            };
            assert_eq!(spliced, decode(&kv).expect("decodes"));
            assert_eq!(spliced["metadata"]["resourceVersion"], "42");
        }
        assert!(with_resource_version(b"{\"kind\":\"X\"}", 1).is_none());
    }
}
