//! Strict field validation (`fieldValidation=Strict|Warn`): finds the JSON fields of an object
//! that its kind's wire schema does not declare, named by path as Kubernetes names them
//! (`spec.template.spec.containers[0].imagePullPolice`).
//!
//! Know before editing: the walk follows [`crate::schema`], so inlined Go structs (a probe's
//! `httpGet`, a volume's `configMap`) are found through `Message::field`; free-form values
//! (`Any`, e.g. `managedFields[].fieldsV1`) and map keys (labels, data) accept anything.
//! Duplicate fields are the decoder's concern.

use serde_json::{Map, Value};

use crate::schema::{message, Message, Shape, Type};
use crate::validation::go_quote;

/// Paths of the fields in `obj` that `root` (a kind's top-level message, from
/// `crate::schema::kind_message`) does not know, in document order. `apiVersion` and `kind`
/// are always known.
pub fn unknown_fields(root: &'static Message, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = obj.as_object() {
        walk_object(root, m, "", true, &mut out);
    }
    out
}

/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`: the message
/// of the 400 BadRequest a Strict request gets. (With `Warn`, each `unknown field "…"` is a
/// separate warning header instead.)
pub fn strict_error_message(paths: &[String]) -> String {
    let parts: Vec<String> = paths
        .iter()
        .map(|p| format!("unknown field {}", go_quote(p)))
        .collect();
    format!("strict decoding error: {}", parts.join(", "))
}

/// Removes the fields [`unknown_fields`] reports, as decoding into Kubernetes' typed structs
/// drops them under `fieldValidation=Warn` or `Ignore`.
pub fn prune_unknown(root: &'static Message, obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        prune_object(root, m, true);
    }
}

fn prune_object(msg: &'static Message, obj: &mut Map<String, Value>, top: bool) {
    obj.retain(|key, _| {
        (top && (key == "apiVersion" || key == "kind")) || msg.field(key).is_some()
    });
    for (key, value) in obj.iter_mut() {
        let Some(field) = msg.field(key) else {
            continue;
        };
        let Type::Message(name) = field.ty else {
            continue;
        };
        let Some(inner) = message(name) else { continue };
        match field.shape {
            Shape::Single => {
                if let Some(o) = value.as_object_mut() {
                    prune_object(inner, o, false);
                }
            }
            Shape::List => {
                for item in value.as_array_mut().into_iter().flatten() {
                    if let Some(o) = item.as_object_mut() {
                        prune_object(inner, o, false);
                    }
                }
            }
            Shape::Map => {
                for item in value.as_object_mut().into_iter().flatten().map(|(_, v)| v) {
                    if let Some(o) = item.as_object_mut() {
                        prune_object(inner, o, false);
                    }
                }
            }
        }
    }
}

fn walk_object(
    msg: &'static Message,
    obj: &Map<String, Value>,
    prefix: &str,
    top: bool,
    out: &mut Vec<String>,
) {
    for (key, value) in obj {
        if top && (key == "apiVersion" || key == "kind") {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match msg.field(key) {
            None => out.push(path),
            Some(field) => {
                let Type::Message(name) = field.ty else {
                    continue;
                };
                let Some(inner) = message(name) else {
                    continue;
                };
                match field.shape {
                    Shape::Single => {
                        if let Some(o) = value.as_object() {
                            walk_object(inner, o, &path, false, out);
                        }
                    }
                    Shape::List => {
                        for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                            if let Some(o) = item.as_object() {
                                walk_object(inner, o, &format!("{path}[{i}]"), false, out);
                            }
                        }
                    }
                    Shape::Map => {
                        for (k, item) in value.as_object().into_iter().flatten() {
                            if let Some(o) = item.as_object() {
                                walk_object(inner, o, &format!("{path}.{k}"), false, out);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::kind_message;
    use serde_json::json;

    fn deployment() -> &'static Message {
        kind_message("apps", "v1", "Deployment").expect("Deployment is in the schema")
    }

    #[test]
    fn pruning_drops_exactly_the_unknown_fields() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "bogus": 1,
            "metadata": {"name": "web", "labels": {"any-key": "ok"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "typo": 1}]}}}});
        prune_unknown(deployment(), &mut d);
        assert!(unknown_fields(deployment(), &d).is_empty());
        assert_eq!(d["metadata"]["labels"]["any-key"], "ok");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "c"})
        );
        assert_eq!(d["kind"], "Deployment");
        assert!(d.get("bogus").is_none());
    }

    #[test]
    fn typo_in_a_container_is_reported_with_its_path() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any-key": "ok"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx", "imagePullPolice": "Always"}]}}}});
        let paths = unknown_fields(deployment(), &d);
        assert_eq!(
            paths,
            vec!["spec.template.spec.containers[0].imagePullPolice"]
        );
        assert_eq!(
            strict_error_message(&paths),
            "strict decoding error: unknown field \"spec.template.spec.containers[0].imagePullPolice\""
        );
    }

    #[test]
    fn several_unknown_fields_in_document_order() {
        let d = json!({"metadata": {"name": "web", "nmae": "x"}, "spec": {"foo": 1,
            "template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "bar": true}]}}}, "extra": {}});
        let paths = unknown_fields(deployment(), &d);
        assert_eq!(
            paths,
            vec![
                "metadata.nmae",
                "spec.foo",
                "spec.template.spec.containers[1].bar",
                "extra"
            ]
        );
        assert_eq!(
            strict_error_message(&paths[..2]),
            "strict decoding error: unknown field \"metadata.nmae\", unknown field \"spec.foo\""
        );
    }

    #[test]
    fn inlined_and_free_form_fields_are_known() {
        let pod = kind_message("", "v1", "Pod").expect("Pod is in the schema");
        let p = json!({"metadata": {"name": "p", "annotations": {"a/b": "c"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"whatever": {}}}}]},
            "spec": {"containers": [{"name": "c", "image": "i",
                "livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": 5},
                "resources": {"limits": {"cpu": "1"}}}],
                "volumes": [{"name": "v", "configMap": {"name": "cm"}}]},
            "status": {"phase": "Running"}});
        assert!(unknown_fields(pod, &p).is_empty());
        let cm = kind_message("", "v1", "ConfigMap").expect("ConfigMap is in the schema");
        let c = json!({"data": {"any.key": "v"}, "immutable": true, "dta": {}});
        assert_eq!(unknown_fields(cm, &c), vec!["dta"]);
    }
}
