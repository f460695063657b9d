//! `components.schemas` of one group-version document, generated from [`crate::schema`].
//! Invariant: a top-level kind carries `x-kubernetes-group-version-kind` only when every
//! message reachable from it is known. kubectl's client-side apply picks the schema by that
//! extension and fails on any field it cannot find, so an incomplete schema must stay
//! anonymous; kubectl then falls back to its compiled-in Go structs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Map, Value};

use crate::schema::{Field, Message, Scalar, Shape, Type};

/// Where schema tables come from: the generated tables in production, fixtures in tests.
pub(crate) trait SchemaSource {
    fn message(&self, name: &str) -> Option<&'static Message>;
    fn kind_message(&self, group: &str, version: &str, kind: &str) -> Option<&'static Message>;
}

/// The crate's generated tables.
pub(crate) struct Tables;

impl SchemaSource for Tables {
    fn message(&self, name: &str) -> Option<&'static Message> {
        crate::schema::message(name)
    }

    fn kind_message(&self, group: &str, version: &str, kind: &str) -> Option<&'static Message> {
        crate::schema::kind_message(group, version, kind)
    }
}

/// A schema the document must contain: a kind (with its GVK) or a plain meta type.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    /// (group, version, kind) to advertise; None for helper types such as `Status`.
    pub gvk: Option<(&'static str, &'static str, String)>,
    /// Protobuf name the schema is generated from and named after.
    pub proto: String,
}

impl Root {
    pub(crate) fn kind(group: &'static str, version: &'static str, kind: &str) -> Root {
        Root {
            gvk: Some((group, version, kind.to_string())),
            proto: kind_proto_name(group, version, kind),
        }
    }

    pub(crate) fn meta(kind: &str) -> Root {
        Root {
            gvk: None,
            proto: format!("{META_V1}.{kind}"),
        }
    }
}

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// `components.schemas` for these roots, sorted by name.
pub(crate) fn components(roots: &[Root], src: &dyn SchemaSource) -> Map<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for root in roots {
        let message = match &root.gvk {
            Some((g, v, k)) => src
                .kind_message(g, v, k)
                .or_else(|| src.message(&root.proto)),
            None => src.message(&root.proto),
        };
        let name = openapi_name(&root.proto);
        let Some(message) = message else {
            match synthesized_list(root, src) {
                Some(list) => {
                    out.insert(name, list);
                    out.insert(openapi_name(&format!("{META_V1}.ListMeta")), list_meta());
                }
                None => {
                    out.entry(name).or_insert_with(placeholder);
                }
            }
            continue;
        };
        let (reachable, complete) = reachable(message, src);
        for m in &reachable {
            let n = openapi_name(m.name);
            out.entry(n).or_insert_with(|| message_schema(m, src));
        }
        let mut top = message_schema(message, src);
        with_type_meta(&mut top);
        if let (Some((g, v, k)), true) = (&root.gvk, complete) {
            let gvk = json!([{ "group": g, "kind": k, "version": v }]);
            if let Some(obj) = top.as_object_mut() {
                obj.insert("x-kubernetes-group-version-kind".into(), gvk);
            }
        }
        out.insert(name, top);
        for missing in missing_names(message, src) {
            out.entry(openapi_name(&missing))
                .or_insert_with(placeholder);
        }
        for scalar in used_scalars(&reachable) {
            if let Some(schema) = scalar_component(scalar) {
                out.entry(scalar.to_string()).or_insert(schema);
            }
        }
    }
    out.into_iter().collect()
}

/// `io.k8s.api.apps.v1.Deployment` for `k8s.io.api.apps.v1.Deployment`.
pub(crate) fn openapi_name(proto: &str) -> String {
    match proto.strip_prefix("k8s.io.") {
        Some(rest) => format!("io.k8s.{rest}"),
        None => proto.to_string(),
    }
}

/// The protobuf name Kubernetes gives a kind: `k8s.io.api.<group's first label or core>.<v>.<Kind>`.
pub(crate) fn kind_proto_name(group: &str, version: &str, kind: &str) -> String {
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("k8s.io.api.{short}.{version}.{kind}")
}

/// `#/components/schemas/<openapi name of proto>`.
pub(crate) fn schema_ref(proto: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", openapi_name(proto)) })
}

/// `FooList` for a kind whose list message the tables leave out: the generic list shape,
/// advertised with its GVK when the item kind is complete.
fn synthesized_list(root: &Root, src: &dyn SchemaSource) -> Option<Value> {
    let (g, v, k) = root.gvk.as_ref()?;
    let item = k.strip_suffix("List")?;
    let message = src.kind_message(g, v, item)?;
    let (_, complete) = reachable(message, src);
    let mut list = json!({
        "properties": {
            "apiVersion": { "type": "string" },
            "items": { "items": schema_ref(&kind_proto_name(g, v, item)), "type": "array" },
            "kind": { "type": "string" },
            "metadata": { "allOf": [schema_ref(&format!("{META_V1}.ListMeta"))] },
        },
        "required": ["items"],
        "type": "object",
    });
    if complete {
        list["x-kubernetes-group-version-kind"] = json!([{ "group": g, "kind": k, "version": v }]);
    }
    Some(list)
}

/// `metav1.ListMeta`, which protobuf tables of served kinds do not reach.
fn list_meta() -> Value {
    json!({
        "properties": {
            "continue": { "type": "string" },
            "remainingItemCount": { "format": "int64", "type": "integer" },
            "resourceVersion": { "type": "string" },
            "selfLink": { "type": "string" },
        },
        "type": "object",
    })
}

fn placeholder() -> Value {
    json!({ "type": "object" })
}

/// Every message reachable from `root` (itself included) and whether none was missing.
fn reachable(root: &'static Message, src: &dyn SchemaSource) -> (Vec<&'static Message>, bool) {
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    let mut out = Vec::new();
    let mut complete = true;
    let mut queue = VecDeque::from([root]);
    seen.insert(root.name);
    while let Some(m) = queue.pop_front() {
        out.push(m);
        for f in m.fields {
            if let Type::Message(name) = f.ty {
                if seen.insert(name) {
                    match src.message(name) {
                        Some(next) => queue.push_back(next),
                        None => complete = false,
                    }
                }
            }
        }
    }
    (out, complete)
}

/// Names referenced from `root`'s closure that the tables do not know.
fn missing_names(root: &'static Message, src: &dyn SchemaSource) -> Vec<String> {
    let (reached, _) = reachable(root, src);
    let mut out = Vec::new();
    for m in reached {
        for f in m.fields {
            if let Type::Message(name) = f.ty {
                if src.message(name).is_none() {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

fn used_scalars(messages: &[&'static Message]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for m in messages {
        for f in m.fields {
            if let Type::Scalar(s) = f.ty {
                out.extend(scalar_name(s));
            }
        }
    }
    out
}

/// The component name of a well-known type Kubernetes publishes as its own schema.
fn scalar_name(s: Scalar) -> Option<&'static str> {
    Some(match s {
        Scalar::Quantity => "io.k8s.apimachinery.pkg.api.resource.Quantity",
        Scalar::IntOrString => "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        Scalar::Time => "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
        Scalar::MicroTime => "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
        Scalar::Duration => "io.k8s.apimachinery.pkg.apis.meta.v1.Duration",
        _ => return None,
    })
}

/// The v3 shape of a well-known type, as Kubernetes' OpenAPI generator emits it.
fn scalar_component(name: &str) -> Option<Value> {
    Some(match name {
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
            json!({ "oneOf": [{ "type": "string" }, { "type": "number" }] })
        }
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
            json!({ "format": "int-or-string", "oneOf": [{ "type": "integer" }, { "type": "string" }] })
        }
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
        | "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            json!({ "format": "date-time", "type": "string" })
        }
        "io.k8s.apimachinery.pkg.apis.meta.v1.Duration" => json!({ "type": "string" }),
        _ => return None,
    })
}

/// An object schema with one property per JSON field, in table order.
fn message_schema(m: &Message, src: &dyn SchemaSource) -> Value {
    let mut props = Map::new();
    for f in json_fields(m, src) {
        props.insert(f.json.to_string(), field_schema(f));
    }
    json!({ "properties": props, "type": "object" })
}

/// The fields as JSON shows them: an inlined message (Go `json:",inline"`, e.g.
/// `Volume.volumeSource`) contributes its own fields instead of a property of its name.
fn json_fields(m: &Message, src: &dyn SchemaSource) -> Vec<&'static Field> {
    let mut out = Vec::with_capacity(m.fields.len());
    for f in m.fields {
        match (f.inline, f.ty) {
            (true, Type::Message(inner)) => {
                if let Some(inner) = src.message(inner) {
                    out.extend(json_fields(inner, src));
                }
            }
            _ => out.push(f),
        }
    }
    out
}

/// Adds `apiVersion` and `kind`, which protobuf messages leave to the envelope.
fn with_type_meta(schema: &mut Value) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let mut merged = Map::new();
    for key in ["apiVersion", "kind"] {
        merged.insert(key.to_string(), json!({ "type": "string" }));
    }
    for (k, v) in std::mem::take(props) {
        merged.insert(k, v);
    }
    *props = merged;
}

/// The schema of one property; patch and list metadata sit beside the type, as kubectl's
/// strategic-merge lookup reads them from the property before resolving `allOf`/`$ref`.
fn field_schema(f: &Field) -> Value {
    let element = type_schema(f.ty);
    let mut schema = match f.shape {
        Shape::Single if element.get("$ref").is_some() => json!({ "allOf": [element] }),
        Shape::Single => element,
        Shape::List => json!({ "items": element, "type": "array" }),
        Shape::Map => json!({ "additionalProperties": element, "type": "object" }),
    };
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    if !f.list_map_keys.is_empty() {
        obj.insert("x-kubernetes-list-map-keys".into(), json!(f.list_map_keys));
    }
    if let Some(t) = f.list_type {
        obj.insert("x-kubernetes-list-type".into(), json!(t));
    }
    if let Some(k) = f.merge_key {
        obj.insert("x-kubernetes-patch-merge-key".into(), json!(k));
    }
    if let Some(s) = f.patch_strategy {
        obj.insert("x-kubernetes-patch-strategy".into(), json!(s));
    }
    schema
}

fn type_schema(ty: Type) -> Value {
    match ty {
        Type::Message(name) => schema_ref(name),
        Type::Scalar(s) => match s {
            Scalar::String => json!({ "type": "string" }),
            Scalar::Bool => json!({ "type": "boolean" }),
            Scalar::Int32 => json!({ "format": "int32", "type": "integer" }),
            Scalar::Int64 => json!({ "format": "int64", "type": "integer" }),
            Scalar::Double => json!({ "format": "double", "type": "number" }),
            Scalar::Bytes => json!({ "format": "byte", "type": "string" }),
            Scalar::Any => {
                json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
            }
            Scalar::Quantity
            | Scalar::IntOrString
            | Scalar::Time
            | Scalar::MicroTime
            | Scalar::Duration => match scalar_name(s) {
                Some(name) => json!({ "$ref": format!("#/components/schemas/{name}") }),
                None => json!({ "type": "string" }),
            },
        },
    }
}
