//! Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Running`) and the
//! per-resource set of fields they may name, mirroring each upstream strategy's
//! `ToSelectableFields`.
//! The one thing to know: values are compared as the strings upstream derives (`"true"`,
//! `"3"`, `""` for absent), and `check_supported` must run first, since matching treats an
//! unknown field as the empty string.

use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::registry::ResourceType;

/// A conjunction of `field=value` / `field!=value` terms. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

impl FieldSelector {
    /// Parses `a=b`, `a==b`, `a!=b` terms joined by `,`. A backslash escapes `\`, `,` and `=`
    /// inside values.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldSyntax(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            terms.push(Term {
                field: lhs.to_string(),
                value: unescape_value(rhs)?,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, rt: &ResourceType, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = field_value(rt, obj, &t.field).unwrap_or_default();
            (actual == t.value) != t.negated
        })
    }

    /// Rejects terms naming a field this resource cannot be filtered by.
    pub fn check_supported(&self, rt: &ResourceType) -> Result<(), SelectorError> {
        match self
            .terms
            .iter()
            .find(|t| !supported_fields(rt).contains(&t.field.as_str()))
        {
            Some(t) => Err(SelectorError::FieldNotSupported(t.field.clone())),
            None => Ok(()),
        }
    }

    /// The name a `metadata.name=X` (or `==`) term pins, letting a list become a get.
    pub fn single_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// The namespace a `metadata.namespace=X` term pins, if any.
    pub fn single_namespace(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.namespace" && !t.negated)
            .map(|t| t.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl fmt::Display for FieldSelector {
    /// Canonical form: terms sorted, values re-escaped (`a=b\,c,d!=e`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// The field labels upstream accepts for this resource.
fn supported_fields(rt: &ResourceType) -> &'static [&'static str] {
    const META: &[&str] = &["metadata.name", "metadata.namespace"];
    match (rt.group, rt.kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("" | "events.k8s.io", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "Node") => &["metadata.name", "metadata.namespace", "spec.unschedulable"],
        ("", "Secret") => &["metadata.name", "metadata.namespace", "type"],
        ("", "Namespace") => &["metadata.name", "metadata.namespace", "status.phase"],
        ("apps", "ReplicaSet") => &["metadata.name", "metadata.namespace", "status.replicas"],
        ("batch", "Job") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => META,
    }
}

/// The string upstream compares for `field` on `obj`, or `None` if unsupported.
fn field_value(rt: &ResourceType, obj: &Value, field: &str) -> Option<String> {
    if !supported_fields(rt).contains(&field) {
        return None;
    }
    let s = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let b = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    let n = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    };
    Some(match field {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "spec.nodeName" => s("/spec/nodeName"),
        "spec.restartPolicy" => s("/spec/restartPolicy"),
        "spec.schedulerName" => s("/spec/schedulerName"),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "spec.hostNetwork" => b("/spec/hostNetwork"),
        "spec.unschedulable" => b("/spec/unschedulable"),
        "status.phase" => s("/status/phase"),
        "status.nominatedNodeName" => s("/status/nominatedNodeName"),
        "status.podIP" => match obj.pointer("/status/podIPs/0/ip").and_then(Value::as_str) {
            Some(ip) => ip.to_string(),
            None => s("/status/podIP"),
        },
        "status.replicas" => n("/status/replicas"),
        "status.successful" => n("/status/succeeded"),
        "type" => s("/type"),
        _ => return Some(event_field(rt, obj, field)),
    })
}

/// Event fields; `events.k8s.io/v1` stores the same data under its newer names.
fn event_field(rt: &ResourceType, obj: &Value, field: &str) -> String {
    let events_api = rt.group == "events.k8s.io";
    let get = |core: &str, new: &str| {
        let ptr = if events_api { new } else { core };
        obj.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let reporting = get("/reportingComponent", "/reportingController");
    match field {
        "reason" => get("/reason", "/reason"),
        "reportingComponent" => reporting,
        "source" => {
            let component = get("/source/component", "/deprecatedSource/component");
            if component.is_empty() {
                reporting
            } else {
                component
            }
        }
        _ => match field.strip_prefix("involvedObject.") {
            Some(sub) => get(
                &format!("/involvedObject/{sub}"),
                &format!("/regarding/{sub}"),
            ),
            None => String::new(),
        },
    }
}

/// Splits on commas not preceded by a backslash escape.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator, preferring `!=`, then `==`, then `=`.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for i in 0..term.len() {
        let rest = &term.as_bytes()[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op.as_bytes()) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::FieldSyntax(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(SelectorError::FieldSyntax(format!(
                    "invalid field selector: unescaped character in value: {c}"
                )))
            }
            _ => out.push(c),
        }
    }
    if escaped {
        return Err(SelectorError::FieldSyntax(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{by_kind, by_plural};
    use serde_json::json;

    fn rt(plural: &str) -> &'static ResourceType {
        let (group, plural) = plural.split_once('/').unwrap_or(("", plural));
        by_plural(group, "v1", plural).expect("test resource is registered")
    }

    fn fs(s: &str) -> FieldSelector {
        FieldSelector::parse(s).expect("test field selector parses")
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
        })
    }

    #[test]
    fn pod_fields_select_by_node_phase_and_ip() {
        let pods = rt("pods");
        assert!(fs("spec.nodeName=n1").matches(pods, &pod()));
        assert!(!fs("spec.nodeName=n2").matches(pods, &pod()));
        assert!(fs("status.phase!=Pending,metadata.namespace=shop").matches(pods, &pod()));
        assert!(fs("status.podIP==10.0.0.5").matches(pods, &pod()));
        assert!(fs("spec.hostNetwork=true").matches(pods, &pod()));
        // Unscheduled pods have an empty nodeName, which is how schedulers find them.
        assert!(fs("spec.nodeName=").matches(pods, &json!({"spec": {}})));
        assert!(!fs("spec.nodeName=").matches(pods, &pod()));
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = fs("");
        assert!(s.is_empty());
        assert!(s.matches(rt("pods"), &pod()));
    }

    #[test]
    fn unsupported_fields_are_rejected_with_upstream_message() {
        let err = fs("spec.foo=x")
            .check_supported(rt("pods"))
            .expect_err("spec.foo is not selectable");
        assert_eq!(err.to_string(), "field label not supported: spec.foo");
        assert!(fs("spec.nodeName=x")
            .check_supported(rt("configmaps"))
            .is_err());
        assert!(fs("metadata.name=x")
            .check_supported(rt("configmaps"))
            .is_ok());
        assert!(fs("type=Opaque").check_supported(rt("secrets")).is_ok());
        assert!(fs("spec.unschedulable=true")
            .check_supported(rt("nodes"))
            .is_ok());
        assert!(fs("status.replicas=1")
            .check_supported(rt("apps/replicasets"))
            .is_ok());
        assert!(fs("status.successful=1")
            .check_supported(rt("batch/jobs"))
            .is_ok());
    }

    #[test]
    fn numeric_and_boolean_fields_compare_as_strings() {
        let rs = json!({"status": {"replicas": 3}});
        assert!(fs("status.replicas=3").matches(rt("apps/replicasets"), &rs));
        assert!(fs("status.replicas!=0").matches(rt("apps/replicasets"), &rs));
        let job = json!({"status": {}});
        assert!(fs("status.successful=0").matches(rt("batch/jobs"), &job));
        let node = json!({"spec": {"unschedulable": true}});
        assert!(fs("spec.unschedulable=true").matches(rt("nodes"), &node));
        assert!(fs("spec.unschedulable=false").matches(rt("nodes"), &json!({})));
    }

    #[test]
    fn event_fields_cover_both_event_apis() {
        let core = json!({
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
            "reason": "Scheduled", "type": "Normal",
            "source": {}, "reportingComponent": "default-scheduler"
        });
        let events = rt("events");
        assert!(fs("involvedObject.kind=Pod,involvedObject.name=web-1").matches(events, &core));
        // An empty source.component falls back to the reporting controller.
        assert!(fs("source=default-scheduler").matches(events, &core));
        assert!(fs("reason=Scheduled,type=Normal").matches(events, &core));
        let new_api = by_kind("events.k8s.io", "v1", "Event").expect("registered");
        let ev =
            json!({"regarding": {"kind": "Node", "name": "n1"}, "reportingController": "kubelet"});
        assert!(fs("involvedObject.name=n1,reportingComponent=kubelet").matches(new_api, &ev));
    }

    #[test]
    fn single_name_shortcut() {
        assert_eq!(fs("metadata.name=web").single_name(), Some("web"));
        assert_eq!(fs("metadata.name==web").single_name(), Some("web"));
        assert_eq!(fs("metadata.name!=web").single_name(), None);
        assert_eq!(fs("spec.nodeName=n1").single_name(), None);
    }

    #[test]
    fn escapes_and_syntax_errors() {
        let s = fs(r"metadata.name=a\,b\=c");
        assert_eq!(s.single_name(), Some("a,b=c"));
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c");
        let err = FieldSelector::parse("metadata.name").expect_err("no operator");
        assert_eq!(
            err.to_string(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        let err = FieldSelector::parse(r"a=b\x").expect_err("bad escape");
        assert_eq!(
            err.to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        let err = FieldSelector::parse("a=b=c").expect_err("bare =");
        assert_eq!(
            err.to_string(),
            "invalid field selector: unescaped character in value: ="
        );
    }

    #[test]
    fn display_sorts_terms() {
        assert_eq!(
            fs("status.phase!=Running,spec.nodeName=n1").to_string(),
            "spec.nodeName=n1,status.phase!=Running"
        );
    }
}
