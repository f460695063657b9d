//! Name rules (DNS-1123, DNS-1035, qualified names, label values) and ObjectMeta validation
//! shared by every kind.
//!
//! Know before editing: the name checkers return upstream's message strings, each becoming
//! one `Invalid value` error; several may fire for one name (length and charset).

use serde_json::Value;

use super::{str_of, FieldError, Path};
use crate::registry::ResourceType;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// Total bytes of all annotation keys and values (`TotalAnnotationSizeLimitB`).
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Problems with `s` as a DNS-1123 subdomain (most object names); empty when valid.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if !is_subdomain_syntax(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with `s` as a DNS-1123 label (namespace and port names); empty when valid.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !is_label_syntax(s) {
        if is_subdomain_syntax(s) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Problems with `s` as a DNS-1035 label (Service names); empty when valid.
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    let starts_alpha = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !(is_label_syntax(s) && starts_alpha) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Problems with `s` as a qualified name (label and annotation keys, finalizers):
/// an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    if !is_qualified_syntax(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Problems with `s` as a label value (empty is valid); empty when valid.
pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !s.is_empty() && !is_qualified_syntax(s) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Metadata checks of a create: name (or generateName), namespace, labels, annotations,
/// owner references and finalizers.
pub(super) fn object_meta(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    let path = Path::root("metadata");
    let name_rule = name_rule(rt);
    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for m in name_rule(&mask_trailing_dash(generate_name)) {
            errs.push(path.child("generateName").invalid(generate_name, &m));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(
            path.child("name")
                .required("name or generateName is required"),
        );
    } else {
        for m in name_rule(name) {
            errs.push(path.child("name").invalid(name, &m));
        }
    }
    let namespace = str_of(meta, "namespace");
    if rt.namespaced {
        if namespace.is_empty() {
            errs.push(path.child("namespace").required(""));
        } else {
            for m in is_dns1123_label(namespace) {
                errs.push(path.child("namespace").invalid(namespace, &m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(
            path.child("namespace")
                .forbidden("not allowed on this type"),
        );
    }
    common_meta(meta, &path, &mut errs);
    errs
}

/// Metadata checks of an update: identity fields may not change, the rest as on create.
pub(super) fn object_meta_update(_rt: &ResourceType, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (nm, om) = (
        new.get("metadata").unwrap_or(&Value::Null),
        old.get("metadata").unwrap_or(&Value::Null),
    );
    let path = Path::root("metadata");
    for key in ["name", "namespace"] {
        if str_of(nm, key) != str_of(om, key) {
            errs.push(
                path.child(key)
                    .invalid(str_of(nm, key), "field is immutable"),
            );
        }
    }
    let (new_uid, old_uid) = (str_of(nm, "uid"), str_of(om, "uid"));
    if !new_uid.is_empty() && !old_uid.is_empty() && new_uid != old_uid {
        errs.push(path.child("uid").invalid(new_uid, "field is immutable"));
    }
    common_meta(nm, &path, &mut errs);
    errs
}

/// Labels (keys and values) at `path`, as `ValidateLabels` reports them: on the map's path,
/// not the key's.
pub(super) fn labels(labels: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(m) = labels.as_object() else {
        return;
    };
    for (k, v) in m {
        for msg in is_qualified_name(k) {
            errs.push(path.invalid(k.as_str(), &msg));
        }
        let v = v.as_str().unwrap_or("");
        for msg in is_valid_label_value(v) {
            errs.push(path.invalid(v, &msg));
        }
    }
}

/// Annotation keys (case-insensitive qualified names) and their total size.
pub(super) fn annotations(annotations: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(m) = annotations.as_object() else {
        return;
    };
    let mut total = 0;
    for (k, v) in m {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(path.invalid(k.as_str(), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.push(path.too_long(ANNOTATIONS_MAX_BYTES));
    }
}

/// The name rule of a kind, taking an already prefix-masked name.
fn name_rule(rt: &ResourceType) -> fn(&str) -> Vec<String> {
    match (rt.group, rt.kind) {
        ("", "Namespace") | ("apps", "StatefulSet") => is_dns1123_label,
        ("", "Service") => is_dns1035_label,
        _ => is_dns1123_subdomain,
    }
}

fn common_meta(meta: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    labels(
        meta.get("labels").unwrap_or(&Value::Null),
        &path.child("labels"),
        errs,
    );
    annotations(
        meta.get("annotations").unwrap_or(&Value::Null),
        &path.child("annotations"),
        errs,
    );
    owner_references(meta, &path.child("ownerReferences"), errs);
    let finalizers = path.child("finalizers");
    for (i, f) in super::list_of(meta, "finalizers").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        for msg in is_qualified_name(f) {
            errs.push(finalizers.invalid(f, &msg));
        }
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(finalizers.index(i).invalid(
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

fn owner_references(meta: &Value, path: &Path, errs: &mut Vec<FieldError>) {
    let refs = super::list_of(meta, "ownerReferences");
    let mut controller: Option<String> = None;
    for r in refs {
        let api_version = str_of(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(
                path.child("apiVersion")
                    .invalid(api_version, "version must not be empty"),
            );
        }
        let checks = [
            ("kind", "kind must not be empty"),
            ("name", "name must not be empty"),
            ("uid", "uid must not be empty"),
        ];
        for (key, msg) in checks {
            if str_of(r, key).is_empty() {
                errs.push(path.child(key).invalid("", msg));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", str_of(r, "kind"), str_of(r, "name"));
            match &controller {
                Some(first) => errs.push(path.invalid(
                    Value::Array(refs.to_vec()),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => controller = Some(this),
            }
        }
    }
}

/// `MaxLenError`.
fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `RegexError`, including upstream's double space between examples.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

/// Prefix names may end in `-` (a suffix follows); validate them as if they did not.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        if name.is_char_boundary(cut) {
            return format!("{}a", &name[..cut]);
        }
    }
    name.to_string()
}

fn is_label_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

fn is_subdomain_syntax(s: &str) -> bool {
    s.split('.').all(is_label_syntax)
}

fn is_qualified_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::super::{messages, rt, validate_create, validate_update};
    use super::*;
    use serde_json::json;

    #[test]
    fn subdomain_message_matches_upstream() {
        let errs = validate_create(
            rt("", "ConfigMap"),
            &json!({"metadata": {"name": "Web", "namespace": "default"}}),
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
    }

    #[test]
    fn label_rules() {
        assert!(is_dns1123_label("my-name").is_empty());
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("-x"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
        assert!(is_dns1035_label("web").is_empty());
        assert_eq!(is_dns1035_label("1web").len(), 1);
        assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
        assert_eq!(is_dns1123_subdomain("a..b").len(), 1);
    }

    #[test]
    fn qualified_names_and_label_values() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("Team_1").is_empty());
        assert_eq!(
            is_qualified_name("/x"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert_eq!(is_qualified_name("").len(), 2);
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_x").is_empty());
        assert_eq!(
            is_valid_label_value("-bad"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
    }

    #[test]
    fn names_follow_the_kind() {
        let ns = validate_create(rt("", "Namespace"), &json!({"metadata": {"name": "a.b"}}));
        assert_eq!(
            messages(&ns),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let svc = validate_create(
            rt("", "Service"),
            &json!({"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"clusterIP": "None"}}),
        );
        assert!(messages(&svc)[0]
            .starts_with("metadata.name: Invalid value: \"1svc\": a DNS-1035 label"));
        let cm = validate_create(
            rt("", "ConfigMap"),
            &json!({"metadata": {"name": "a.b", "namespace": "d"}}),
        );
        assert!(cm.is_empty());
    }

    #[test]
    fn name_namespace_and_generate_name() {
        let errs = validate_create(rt("", "ConfigMap"), &json!({"metadata": {}}));
        assert_eq!(
            messages(&errs),
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
        let errs = validate_create(
            rt("", "Namespace"),
            &json!({"metadata": {"name": "x", "namespace": "y"}}),
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let ok = validate_create(
            rt("", "ConfigMap"),
            &json!({"metadata": {"name": "web-x1", "generateName": "web-", "namespace": "d"}}),
        );
        assert!(ok.is_empty());
        let bad = validate_create(
            rt("", "ConfigMap"),
            &json!({"metadata": {"name": "x", "generateName": "Web-", "namespace": "d"}}),
        );
        assert_eq!(bad[0].field, "metadata.generateName");
    }

    #[test]
    fn labels_annotations_finalizers_owners() {
        let obj = json!({"metadata": {"name": "c", "namespace": "d",
            "labels": {"ok": "fine", "bad key": "v", "k": "-v"},
            "annotations": {"Example.com/Note": "x", "a/b/c": "y"},
            "finalizers": ["example.com/f", "custom"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}]}});
        let errs = validate_create(rt("", "ConfigMap"), &obj);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.labels",
                "metadata.labels",
                "metadata.annotations",
                "metadata.ownerReferences.uid",
                "metadata.finalizers[1]"
            ]
        );
        assert!(errs[0]
            .message()
            .starts_with("metadata.labels: Invalid value: \"bad key\": name part must consist of"));
        assert_eq!(
            errs[4].message(),
            "metadata.finalizers[1]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
        assert_eq!(
            errs[3].message(),
            "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"
        );
    }

    #[test]
    fn oversized_annotations_are_too_long() {
        let obj = json!({"metadata": {"name": "c", "namespace": "d", "annotations": {"big": "x".repeat(256 * 1024)}}});
        let errs = validate_create(rt("", "ConfigMap"), &obj);
        assert_eq!(
            messages(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn identity_is_immutable_on_update() {
        let old = json!({"metadata": {"name": "c", "namespace": "d", "uid": "1"}});
        let new = json!({"metadata": {"name": "c2", "namespace": "d", "uid": "2"}});
        let errs = validate_update(rt("", "ConfigMap"), &new, &old);
        assert_eq!(
            messages(&errs)[..2],
            [
                "metadata.name: Invalid value: \"c2\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable"
            ]
        );
    }
}
