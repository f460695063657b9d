//! Validation of objects on create and update, reported as Kubernetes field errors with
//! upstream's exact wording (`spec.replicas: Invalid value: -1: must be greater than or equal
//! to 0`).
//!
//! Know before editing: clients, kubectl users and conformance-style tests match these
//! messages as text, so wording, value quoting (Go's `%q` / `%#v`) and field paths follow
//! `k8s.io/apimachinery/pkg/util/validation/field` byte for byte. Validate defaulted objects:
//! `apply_defaults` runs first, exactly as upstream.

mod apps;
mod batch;
mod cluster;
mod config;
mod format;
mod meta;
mod networking;
mod pod;
mod pod_update;
mod resources;

use serde_json::Value;

use crate::registry::ResourceType;

pub(crate) use format::go_quote;
pub use meta::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};

/// The kind of a field error; see `field.ErrorType` upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    Forbidden,
    Duplicate,
    NotSupported,
    TooLong,
    TooMany,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub ty: FieldErrorType,
    /// Path of the field, e.g. `spec.template.spec.containers[0].image` or `data[key]`.
    pub field: String,
    /// The offending value; None where upstream omits it from the message.
    pub value: Option<Value>,
    pub detail: String,
    /// For NotSupported: the accepted values, already in upstream's order.
    pub supported: Vec<String>,
}

impl FieldError {
    /// `spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }

    /// The message without the field (`Invalid value: -1: must be …`): what a Status cause
    /// carries in `message`, next to `field`.
    pub fn body(&self) -> String {
        let mut s = self.type_text().to_string();
        let shows_value = !matches!(
            self.ty,
            FieldErrorType::Required | FieldErrorType::Forbidden | FieldErrorType::TooLong
        );
        if let (true, Some(v)) = (shows_value, &self.value) {
            s.push_str(": ");
            s.push_str(&format::go_value(v));
        }
        let detail = if self.ty == FieldErrorType::NotSupported && !self.supported.is_empty() {
            let quoted: Vec<String> = self.supported.iter().map(|v| format::go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        } else {
            self.detail.clone()
        };
        if !detail.is_empty() {
            s.push_str(": ");
            s.push_str(&detail);
        }
        s
    }

    /// The Status cause type: `FieldValueRequired`, `FieldValueInvalid`, ….
    pub fn reason(&self) -> &'static str {
        match self.ty {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
        }
    }

    fn type_text(&self) -> &'static str {
        match self.ty {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
        }
    }
}

/// Validates an object about to be created (after defaulting).
pub fn validate_create(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut errs = meta::object_meta(rt, obj);
    kind_rules(rt, obj, &mut errs);
    errs
}

/// Validates an update of `old` to `new` (after defaulting `new`): everything create checks
/// plus the fields that may not change.
pub fn validate_update(rt: &ResourceType, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(rt, new, old);
    kind_rules(rt, new, &mut errs);
    match (rt.group, rt.kind) {
        ("", "Pod") => pod_update::pod_update(new, old, &mut errs),
        ("", "Service") => networking::service_update(new, old, &mut errs),
        ("", "ConfigMap") => config::config_map_update(new, old, &mut errs),
        ("", "Secret") => config::secret_update(new, old, &mut errs),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            apps::selector_update(new, old, &mut errs)
        }
        ("apps", "StatefulSet") => apps::stateful_set_update(new, old, &mut errs),
        ("batch", "Job") => batch::job_update(new, old, &mut errs),
        ("discovery.k8s.io", "EndpointSlice") => {
            networking::endpoint_slice_update(new, old, &mut errs)
        }
        _ => {}
    }
    errs
}

/// `Deployment.apps "web" is invalid: [a: …, b: …]` (one error: no brackets), the Status
/// message of a 422 Invalid response. Identical messages are reported once.
pub fn invalid_message(rt: &ResourceType, name: &str, errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.message();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    let head = format!("{} {} is invalid", rt.group_kind(), format::go_quote(name));
    match seen.len() {
        0 => head,
        1 => format!("{head}: {}", seen[0]),
        _ => format!("{head}: [{}]", seen.join(", ")),
    }
}

fn kind_rules(rt: &ResourceType, obj: &Value, errs: &mut Vec<FieldError>) {
    match (rt.group, rt.kind) {
        ("", "Pod") => pod::pod(obj, errs),
        ("", "Service") => networking::service(obj, errs),
        ("", "Endpoints") => networking::endpoints(obj, errs),
        ("", "ConfigMap") => config::config_map(obj, errs),
        ("", "Secret") => config::secret(obj, errs),
        ("", "Event") => cluster::core_event(obj, errs),
        ("", "Namespace") => cluster::namespace(obj, errs),
        ("apps", "Deployment") => apps::deployment(obj, errs),
        ("apps", "ReplicaSet") => apps::replica_set(obj, errs),
        ("apps", "DaemonSet") => apps::daemon_set(obj, errs),
        ("apps", "StatefulSet") => apps::stateful_set(obj, errs),
        ("batch", "Job") => batch::job(obj, errs),
        ("coordination.k8s.io", "Lease") => cluster::lease(obj, errs),
        ("discovery.k8s.io", "EndpointSlice") => networking::endpoint_slice(obj, errs),
        ("events.k8s.io", "Event") => cluster::events_event(obj, errs),
        _ => {}
    }
}

/// A field path under construction: `spec`, `.child("ports")`, `.index(0)`, `.key("k")`.
#[derive(Debug, Clone)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root(name: &str) -> Path {
        Path(name.to_string())
    }

    pub(crate) fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    pub(crate) fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }

    fn err(&self, ty: FieldErrorType, value: Option<Value>, detail: &str) -> FieldError {
        FieldError {
            ty,
            field: self.0.clone(),
            value,
            detail: detail.to_string(),
            supported: Vec::new(),
        }
    }

    pub(crate) fn required(&self, detail: &str) -> FieldError {
        self.err(FieldErrorType::Required, None, detail)
    }

    pub(crate) fn invalid(&self, value: impl Into<Value>, detail: &str) -> FieldError {
        self.err(FieldErrorType::Invalid, Some(value.into()), detail)
    }

    pub(crate) fn forbidden(&self, detail: &str) -> FieldError {
        self.err(FieldErrorType::Forbidden, None, detail)
    }

    pub(crate) fn duplicate(&self, value: impl Into<Value>) -> FieldError {
        self.err(FieldErrorType::Duplicate, Some(value.into()), "")
    }

    pub(crate) fn not_supported(&self, value: impl Into<Value>, supported: &[&str]) -> FieldError {
        let mut e = self.err(FieldErrorType::NotSupported, Some(value.into()), "");
        e.supported = supported.iter().map(|s| s.to_string()).collect();
        e
    }

    pub(crate) fn too_long(&self, max: usize) -> FieldError {
        let unit = if max == 1 { "byte" } else { "bytes" };
        self.err(
            FieldErrorType::TooLong,
            None,
            &format!("may not be more than {max} {unit}"),
        )
    }

    pub(crate) fn too_many(&self, actual: usize, max: usize) -> FieldError {
        let unit = if max == 1 { "item" } else { "items" };
        self.err(
            FieldErrorType::TooMany,
            Some(Value::from(actual)),
            &format!("must have at most {max} {unit}"),
        )
    }
}

/// `must be greater than or equal to 0` when `v` is a negative integer.
pub(crate) fn non_negative(obj: &Value, key: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(n) = obj.get(key).and_then(Value::as_i64) {
        if n < 0 {
            errs.push(
                path.child(key)
                    .invalid(n, "must be greater than or equal to 0"),
            );
        }
    }
}

/// The string under `key`, `""` when absent.
pub(crate) fn str_of<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The array under `key`, empty when absent.
pub(crate) fn list_of<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The same value with null and absent treated alike.
pub(crate) fn field_of<'a>(obj: &'a Value, key: &str) -> &'a Value {
    obj.get(key).unwrap_or(&Value::Null)
}

/// Go's semantic equality on JSON: absent, null, `""`, `false`, `[]` and `{}` are all the
/// zero value, so an apply that re-sends a defaulted object with or without them is no change.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys());
            keys.into_iter().all(|k| {
                semantic_eq(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        _ if is_zero(a) && is_zero(b) => true,
        _ => a == b,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
        Value::Number(_) => false,
    }
}

#[cfg(test)]
pub(crate) fn rt(group: &str, kind: &str) -> &'static ResourceType {
    crate::registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .expect("kind is registered")
}

#[cfg(test)]
pub(crate) fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(FieldError::message).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_match_upstream_wording() {
        let p = Path::root("spec").child("replicas");
        assert_eq!(
            p.invalid(-1, "must be greater than or equal to 0")
                .message(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let c = Path::root("spec").child("containers");
        assert_eq!(c.required("").message(), "spec.containers: Required value");
        assert_eq!(
            c.index(1).child("name").duplicate("app").message(),
            "spec.containers[1].name: Duplicate value: \"app\""
        );
        assert_eq!(
            Path::root("spec")
                .child("restartPolicy")
                .not_supported("Sometimes", &["Always", "OnFailure", "Never"])
                .message(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert_eq!(
            Path::root("data").too_long(1048576).message(),
            "data: Too long: may not be more than 1048576 bytes"
        );
        assert_eq!(
            Path::root("endpoints").too_many(1001, 1000).message(),
            "endpoints: Too many: 1001: must have at most 1000 items"
        );
        assert_eq!(
            Path::root("spec").forbidden("nope").message(),
            "spec: Forbidden: nope"
        );
        assert_eq!(Path::root("data").key("a b").0, "data[a b]");
    }

    #[test]
    fn reasons_are_status_cause_types() {
        let p = Path::root("x");
        assert_eq!(p.required("").reason(), "FieldValueRequired");
        assert_eq!(p.invalid(1, "").reason(), "FieldValueInvalid");
        assert_eq!(p.forbidden("").reason(), "FieldValueForbidden");
        assert_eq!(p.duplicate(1).reason(), "FieldValueDuplicate");
        assert_eq!(p.not_supported(1, &[]).reason(), "FieldValueNotSupported");
        assert_eq!(p.too_long(1).reason(), "FieldValueTooLong");
        assert_eq!(p.too_many(2, 1).reason(), "FieldValueTooMany");
    }

    #[test]
    fn invalid_message_brackets_only_several_errors() {
        let rt = rt("apps", "Deployment");
        let one = [Path::root("spec")
            .child("replicas")
            .invalid(-1, "must be greater than or equal to 0")];
        assert_eq!(
            invalid_message(rt, "web", &one),
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let two = [
            Path::root("metadata")
                .child("name")
                .required("name or generateName is required"),
            Path::root("spec").child("selector").required(""),
            Path::root("spec").child("selector").required(""),
        ];
        assert_eq!(
            invalid_message(rt, "", &two),
            "Deployment.apps \"\" is invalid: [metadata.name: Required value: name or generateName is required, spec.selector: Required value]"
        );
        assert_eq!(
            invalid_message(rt_core("Pod"), "p", &[]),
            "Pod \"p\" is invalid"
        );
    }

    fn rt_core(kind: &str) -> &'static ResourceType {
        rt("", kind)
    }

    #[test]
    fn every_registered_kind_validates_its_name() {
        for r in crate::registry::RESOURCES {
            let mut obj = json!({"metadata": {"name": "Bad_Name"}});
            if r.namespaced {
                obj["metadata"]["namespace"] = json!("default");
            }
            let errs = validate_create(r, &obj);
            assert!(
                errs.iter().any(|e| e.field == "metadata.name"),
                "{} accepted an invalid name: {:?}",
                r.kind,
                messages(&errs)
            );
        }
    }
}
