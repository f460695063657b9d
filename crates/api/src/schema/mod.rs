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
    /// Go `json:",inline"`: an embedded message (e.g. `Volume.volumeSource`,
    /// `Probe.handler`) whose fields appear directly in the parent's JSON object. `json` then
    /// holds the protobuf field name, which never appears in JSON.
    pub inline: bool,
    /// Go `omitempty` on a non-pointer scalar: JSON leaves the field out when it holds its zero
    /// value (`""`, `0`, `false`), although protobuf always carries it.
    pub omit_zero: bool,
}

/// A message type.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    /// The field with this JSON name, looking through inlined messages (so `Volume` has a
    /// `configMap` field).
    pub fn field(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find_map(|f| match (f.inline, f.ty) {
            (true, Type::Message(inner)) => message(inner).and_then(|m| m.field(json)),
            _ => (f.json == json).then_some(f),
        })
    }

    /// Every field as it appears in JSON, in declaration order, with inlined messages
    /// replaced by their own fields.
    pub fn json_fields(&self) -> Vec<&'static Field> {
        let mut out = Vec::with_capacity(self.fields.len());
        for f in self.fields {
            match (f.inline, f.ty) {
                (true, Type::Message(inner)) => {
                    if let Some(m) = message(inner) {
                        out.extend(m.json_fields());
                    }
                }
                _ => out.push(f),
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str) -> &'static Message {
        message(name).unwrap_or_else(|| panic!("{name} is in the schema"))
    }

    #[test]
    fn messages_are_sorted_and_unique() {
        for pair in data::MESSAGES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_referenced_message_exists() {
        for m in data::MESSAGES {
            for f in m.fields {
                if let Type::Message(name) = f.ty {
                    assert!(message(name).is_some(), "{}.{} -> {name}", m.name, f.json);
                }
            }
        }
    }

    #[test]
    fn pod_containers_merge_by_name() {
        let spec = msg("k8s.io.api.core.v1.PodSpec");
        let containers = spec.field("containers").expect("containers");
        assert_eq!(containers.tag, 2);
        assert_eq!(containers.shape, Shape::List);
        assert_eq!(containers.ty, Type::Message("k8s.io.api.core.v1.Container"));
        assert_eq!(containers.merge_key, Some("name"));
        assert_eq!(containers.patch_strategy, Some("merge"));
        assert_eq!(containers.list_type, Some("map"));
        assert_eq!(containers.list_map_keys, &["name"]);
        let volumes = spec.field("volumes").expect("volumes");
        assert_eq!(volumes.patch_strategy, Some("merge,retainKeys"));
    }

    #[test]
    fn service_ports_merge_by_port_and_map_by_port_and_protocol() {
        let ports = msg("k8s.io.api.core.v1.ServiceSpec")
            .field("ports")
            .expect("ports");
        assert_eq!(ports.merge_key, Some("port"));
        assert_eq!(ports.patch_strategy, Some("merge"));
        assert_eq!(ports.list_map_keys, &["port", "protocol"]);
        let target = msg("k8s.io.api.core.v1.ServicePort")
            .field("targetPort")
            .expect("targetPort");
        assert_eq!(target.ty, Type::Scalar(Scalar::IntOrString));
    }

    #[test]
    fn object_meta_fields() {
        let meta = msg("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let name = meta.field("name").expect("name");
        assert_eq!(
            (name.tag, name.ty, name.omit_zero),
            (1, Type::Scalar(Scalar::String), true)
        );
        let labels = meta.field("labels").expect("labels");
        assert_eq!((labels.tag, labels.shape), (11, Shape::Map));
        let created = meta.field("creationTimestamp").expect("creationTimestamp");
        assert_eq!(created.ty, Type::Scalar(Scalar::Time));
        let owners = meta.field("ownerReferences").expect("ownerReferences");
        assert_eq!(owners.merge_key, Some("uid"));
        let managed = meta.field("managedFields").expect("managedFields");
        assert_eq!(managed.tag, 17);
        assert_eq!(meta.field_by_tag(12).map(|f| f.json), Some("annotations"));
        assert!(meta.field("kind").is_none());
    }

    #[test]
    fn inlined_messages_show_their_fields() {
        let volume = msg("k8s.io.api.core.v1.Volume");
        let cm = volume
            .field("configMap")
            .expect("configMap through volumeSource");
        assert_eq!(
            cm.ty,
            Type::Message("k8s.io.api.core.v1.ConfigMapVolumeSource")
        );
        assert!(volume.field("volumeSource").is_none());
        let names: Vec<_> = volume.json_fields().iter().map(|f| f.json).collect();
        assert!(names.contains(&"name") && names.contains(&"emptyDir"));
        let probe = msg("k8s.io.api.core.v1.Probe");
        assert!(probe.field("httpGet").is_some());
        let cm_ref = msg("k8s.io.api.core.v1.ConfigMapVolumeSource");
        assert!(
            cm_ref.field("name").is_some(),
            "LocalObjectReference is inlined"
        );
    }

    #[test]
    fn pointer_fields_keep_zero_values() {
        let replicas = msg("k8s.io.api.apps.v1.DeploymentSpec")
            .field("replicas")
            .expect("replicas");
        assert!(!replicas.omit_zero, "replicas: 0 means zero, not unset");
        let port = msg("k8s.io.api.core.v1.ServicePort")
            .field("port")
            .expect("port");
        assert!(!port.omit_zero, "port has no omitempty");
    }

    #[test]
    fn secret_data_is_a_map_of_bytes() {
        let data = msg("k8s.io.api.core.v1.Secret")
            .field("data")
            .expect("data");
        assert_eq!(
            (data.ty, data.shape),
            (Type::Scalar(Scalar::Bytes), Shape::Map)
        );
        let limits = msg("k8s.io.api.core.v1.ResourceRequirements")
            .field("limits")
            .expect("limits");
        assert_eq!(
            (limits.ty, limits.shape),
            (Type::Scalar(Scalar::Quantity), Shape::Map)
        );
    }

    #[test]
    fn every_served_resource_has_a_message() {
        for r in crate::registry::RESOURCES {
            let m = kind_message(r.group, r.version, r.kind);
            assert!(m.is_some(), "{}/{} {}", r.group, r.version, r.kind);
            assert!(m.and_then(|m| m.field("metadata")).is_some(), "{}", r.kind);
        }
        for (g, v, k) in [
            ("", "v1", "Binding"),
            ("autoscaling", "v1", "Scale"),
            ("policy", "v1", "Eviction"),
        ] {
            assert!(kind_message(g, v, k).is_some(), "{g}/{v} {k}");
        }
        let delete = kind_message("meta.k8s.io", "v1", "DeleteOptions").expect("DeleteOptions");
        assert!(delete.field("propagationPolicy").is_some());
        assert!(kind_message("apps", "v1", "DeleteOptions").is_some());
        assert!(kind_message("apps", "v1", "Foo").is_none());
    }
}
