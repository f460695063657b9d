//! The wire schema of every served kind: field names, protobuf tags, types, and the patch
//! metadata (`patchMergeKey`, `patchStrategy`, `listType`, `listMapKeys`) that Kubernetes
//! declares on its Go types. One table feeds protobuf decoding, strict field validation,
//! strategic merge patch, server-side apply and the OpenAPI documents.
//!
//! Message names are the fully qualified protobuf names without the leading dot, e.g.
//! `k8s.io.api.core.v1.PodSpec`, `k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta`.

/// Scalar and well-known types that have a special JSON or protobuf encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// `resource.Quantity`: a string in JSON (`"100m"`), message `{string string = 1}` in protobuf.
    Quantity,
    /// `intstr.IntOrString`: a number or a string in JSON; message `{type=1, intVal=2, strVal=3}`.
    IntOrString,
    /// `metav1.Time`: RFC 3339 seconds in JSON; message `{seconds=1, nanos=2}`.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds in JSON; same message as Time.
    MicroTime,
    /// `metav1.Duration`: a Go duration string in JSON (`"1m0s"`); message `{duration=1}` (int64 ns).
    Duration,
    /// Free-form JSON (`runtime.RawExtension`, `FieldsV1`, `apiextensions JSON`): any JSON value;
    /// message `{bytes raw = 1}` holding JSON.
    Any,
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Scalar(Scalar),
    /// A nested message, by fully qualified name.
    Message(&'static str),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Single,
    /// `repeated`: a JSON array.
    List,
    /// `map<string, T>`: a JSON object.
    Map,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// JSON name (also the protobuf field name in Kubernetes' generated.proto).
    pub json: &'static str,
    /// Protobuf field number.
    pub tag: u32,
    pub ty: Type,
    pub shape: Shape,
    /// `+patchMergeKey`: the key that identifies list elements in a strategic merge patch.
    pub merge_key: Option<&'static str>,
    /// `+patchStrategy`: `merge`, `retainKeys`, `merge,retainKeys` or `replace`.
    pub patch_strategy: Option<&'static str>,
    /// `+listType`: `atomic`, `set` or `map` (server-side apply).
    pub list_type: Option<&'static str>,
    /// `+listMapKey`: the keys of a `listType=map` list.
    pub list_map_keys: &'static [&'static str],
}

/// A message type.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    /// The field with this JSON name.
    pub fn field(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json == json)
    }

    /// The field with this protobuf number.
    pub fn field_by_tag(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

mod data;

/// Looks up a message by fully qualified name.
pub fn message(name: &str) -> Option<&'static Message> {
    data::MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &data::MESSAGES[i])
}

/// The top-level message of a kind, e.g. (`apps`, `v1`, `Deployment`).
pub fn kind_message(group: &str, version: &str, kind: &str) -> Option<&'static Message> {
    data::KINDS
        .iter()
        .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
        .and_then(|(_, _, _, name)| message(name))
}
