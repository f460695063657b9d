//! ConfigMap and Secret validation: keys, sizes, secret types and `immutable: true`.
//!
//! Know before editing: Secret `data` values arrive base64-encoded (the JSON wire form);
//! sizes count decoded bytes, as upstream counts the `[]byte` values.

use serde_json::Value;

use super::{field_of, str_of, FieldError, Path};

/// Total bytes of a ConfigMap's or Secret's data (`MaxSecretSize`).
const MAX_DATA_BYTES: usize = 1024 * 1024;
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

pub(super) fn config_map(obj: &Value, errs: &mut Vec<FieldError>) {
    let data = field_of(obj, "data").as_object();
    let binary = field_of(obj, "binaryData").as_object();
    let mut total = 0;
    for (field, own, other, other_name) in [
        ("data", data, binary, "binaryData"),
        ("binaryData", binary, data, "data"),
    ] {
        for (k, v) in own.into_iter().flatten() {
            let kp = Path::root(field).key(k);
            for m in config_key(k) {
                errs.push(kp.invalid(k.as_str(), &m));
            }
            if other.is_some_and(|o| o.contains_key(k)) {
                errs.push(kp.invalid(
                    k.as_str(),
                    &format!("duplicate of key present in {other_name}"),
                ));
            }
            total += match (field, v.as_str()) {
                ("data", Some(s)) => s.len(),
                (_, Some(s)) => decoded_len(s),
                _ => 0,
            };
        }
    }
    if total > MAX_DATA_BYTES {
        // Upstream reports the whole object on an empty root path, which prints as `[]`.
        errs.push(Path::root("[]").too_long(MAX_DATA_BYTES));
    }
}

pub(super) fn secret(obj: &Value, errs: &mut Vec<FieldError>) {
    let data = field_of(obj, "data").as_object();
    let dp = Path::root("data");
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        for m in config_key(k) {
            errs.push(dp.key(k).invalid(k.as_str(), &m));
        }
        total += v.as_str().map_or(0, decoded_len);
    }
    if total > MAX_DATA_BYTES {
        errs.push(dp.too_long(MAX_DATA_BYTES));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let require = |k: &str, errs: &mut Vec<FieldError>| {
        if !has(k) {
            errs.push(dp.key(k).required(""));
        }
    };
    match str_of(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let annotations = field_of(field_of(obj, "metadata"), "annotations");
            if str_of(annotations, "kubernetes.io/service-account.name").is_empty() {
                errs.push(
                    Path::root("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name")
                        .required(""),
                );
            }
        }
        "kubernetes.io/dockercfg" => docker_config(data, ".dockercfg", &dp, errs),
        "kubernetes.io/dockerconfigjson" => docker_config(data, ".dockerconfigjson", &dp, errs),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            require("username", errs);
            require("password", errs);
        }
        "kubernetes.io/ssh-auth" => {
            let key = data
                .and_then(|d| d.get("ssh-privatekey"))
                .and_then(Value::as_str);
            if key.is_none_or(str::is_empty) {
                errs.push(dp.key("ssh-privatekey").required(""));
            }
        }
        "kubernetes.io/tls" => {
            require("tls.crt", errs);
            require("tls.key", errs);
        }
        _ => {}
    }
}

pub(super) fn config_map_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    immutable_data(new, old, &["data", "binaryData"], errs);
}

pub(super) fn secret_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (nt, ot) = (str_of(new, "type"), str_of(old, "type"));
    if nt != ot {
        errs.push(Path::root("type").invalid(nt, "field is immutable"));
    }
    immutable_data(new, old, &["data"], errs);
}

/// Once `immutable: true`, neither the flag nor the data may change.
fn immutable_data(new: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    const MSG: &str = "field is immutable when `immutable` is set";
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(Path::root("immutable").forbidden(MSG));
    }
    for f in fields {
        if !super::semantic_eq(field_of(new, f), field_of(old, f)) {
            errs.push(Path::root(f).forbidden(MSG));
        }
    }
}

fn docker_config(
    data: Option<&serde_json::Map<String, Value>>,
    key: &str,
    dp: &Path,
    errs: &mut Vec<FieldError>,
) {
    let Some(encoded) = data.and_then(|d| d.get(key)).and_then(Value::as_str) else {
        errs.push(dp.key(key).required(""));
        return;
    };
    let parsed = decode(encoded)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok());
    if parsed.is_none() {
        errs.push(
            dp.key(key)
                .invalid("<secret contents redacted>", "must be valid JSON"),
        );
    }
}

/// `IsConfigMapKey`.
fn config_key(k: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if k.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let charset = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if k.is_empty() || !k.bytes().all(charset) {
        errs.push(CONFIG_KEY_MSG.to_string());
    }
    if k == "." {
        errs.push("must not be '.'".to_string());
    } else if k == ".." {
        errs.push("must not be '..'".to_string());
    } else if k.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn decoded_len(s: &str) -> usize {
    decode(s).map_or(s.len(), |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create, validate_update};
    use crate::defaults::apply_defaults;
    use serde_json::{json, Value};

    fn obj(kind: &str, body: Value) -> Value {
        let mut o = json!({"metadata": {"name": "c", "namespace": "d"}});
        for (k, v) in body.as_object().into_iter().flatten() {
            o[k] = v.clone();
        }
        apply_defaults(rt("", kind), &mut o);
        o
    }

    #[test]
    fn config_map_keys() {
        let cm = obj(
            "ConfigMap",
            json!({"data": {"good.key": "v", "bad/key": "v", "..x": "v", "dup": "v"}, "binaryData": {"dup": "eA=="}}),
        );
        assert_eq!(
            messages(&validate_create(rt("", "ConfigMap"), &cm)),
            vec![
                "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[..x]: Invalid value: \"..x\": must not start with '..'",
                "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
                "binaryData[dup]: Invalid value: \"dup\": duplicate of key present in data",
            ]
        );
    }

    #[test]
    fn config_map_size_limit() {
        let cm = obj(
            "ConfigMap",
            json!({"data": {"big": "x".repeat(1024 * 1024 + 1)}}),
        );
        assert_eq!(
            messages(&validate_create(rt("", "ConfigMap"), &cm)),
            vec!["[]: Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn secret_types_require_their_keys() {
        let tls = obj(
            "Secret",
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
        );
        assert_eq!(
            messages(&validate_create(rt("", "Secret"), &tls)),
            vec!["data[tls.key]: Required value"]
        );
        let sa = obj(
            "Secret",
            json!({"type": "kubernetes.io/service-account-token"}),
        );
        assert_eq!(
            messages(&validate_create(rt("", "Secret"), &sa)),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        let docker = obj(
            "Secret",
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "bm90IGpzb24="}}),
        );
        assert_eq!(
            validate_create(rt("", "Secret"), &docker)[0].field,
            "data[.dockerconfigjson]"
        );
        let opaque = obj("Secret", json!({"stringData": {"password": "s3cret"}}));
        assert!(validate_create(rt("", "Secret"), &opaque).is_empty());
    }

    #[test]
    fn immutable_objects_keep_their_data_and_type() {
        let old = obj("ConfigMap", json!({"immutable": true, "data": {"a": "1"}}));
        let new = obj("ConfigMap", json!({"immutable": true, "data": {"a": "2"}}));
        assert_eq!(
            messages(&validate_update(rt("", "ConfigMap"), &new, &old)),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let relabeled = obj(
            "ConfigMap",
            json!({"immutable": true, "data": {"a": "1"}, "metadata": {"name": "c", "namespace": "d", "labels": {"x": "y"}}}),
        );
        assert!(validate_update(rt("", "ConfigMap"), &relabeled, &old).is_empty());
        let old = obj("Secret", json!({"data": {"a": "eA=="}}));
        let new = obj(
            "Secret",
            json!({"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}),
        );
        assert_eq!(
            messages(&validate_update(rt("", "Secret"), &new, &old)),
            vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
        );
    }
}
