use serde_json::Value;

use super::schemas::{kind_proto_name, SchemaSource};
use super::*;
use crate::schema::{Field, Message, Scalar, Shape, Type};

fn doc(path: &str) -> Value {
    let bytes = document(path).expect("group-version is served");
    serde_json::from_slice(bytes).expect("document is JSON")
}

/// Every PATCH operation of every document, with its path.
fn patch_ops() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (g, v) in crate::registry::group_versions() {
        let path = paths::api_prefix(g, v).trim_start_matches('/').to_string();
        let d = doc(&path);
        for (p, item) in d["paths"].as_object().expect("paths") {
            if let Some(op) = item.get("patch") {
                out.push((p.clone(), op.clone()));
            }
        }
    }
    out
}

fn has_query_param(op: &Value, name: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
}

#[test]
fn index_lists_every_group_version_with_its_hash() {
    let idx = index();
    let paths = idx["paths"].as_object().expect("paths object");
    let gvs = crate::registry::group_versions();
    assert_eq!(paths.len(), gvs.len());
    for (g, v) in gvs {
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        let h = hash(&key).expect("hash for served group-version");
        assert_eq!(
            paths[&key]["serverRelativeURL"],
            format!("/openapi/v3/{key}?hash={h}")
        );
        let bytes = document(&key).expect("document for served group-version");
        assert_eq!(content_hash(bytes), h, "hash must follow the bytes");
    }
    assert!(paths.contains_key("api/v1"));
    assert!(paths.contains_key("apis/apps/v1"));
}

#[test]
fn unknown_group_version_has_no_document() {
    assert!(document("apis/nope.example.com/v1").is_none());
    assert!(hash("apis/apps/v2").is_none());
    assert!(
        document("/apis/apps/v1").is_none(),
        "paths are given without a leading slash"
    );
}

#[test]
fn deployments_patch_advertises_field_validation_and_smp() {
    let d = doc("apis/apps/v1");
    assert_eq!(d["openapi"], "3.0.0");
    let item = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        serde_json::json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    for p in ["fieldValidation", "fieldManager", "dryRun", "force"] {
        assert!(has_query_param(patch, p), "deployment PATCH lacks {p}");
    }
    let content = patch["requestBody"]["content"]
        .as_object()
        .expect("content");
    for t in PATCH_CONTENT_TYPES {
        assert!(content.contains_key(*t), "deployment PATCH lacks {t}");
    }
    assert!(has_query_param(&item["put"], "fieldValidation"));
    assert!(item["put"].get("parameters").is_some());
    let params = item["parameters"].as_array().expect("path parameters");
    assert!(params
        .iter()
        .any(|p| p["name"] == "name" && p["in"] == "path"));
    assert!(params
        .iter()
        .any(|p| p["name"] == "namespace" && p["in"] == "path"));
}

#[test]
fn every_patch_operation_accepts_field_validation() {
    // kubectl stops at the first PATCH operation whose GVK matches, in Go map order.
    let ops = patch_ops();
    assert!(ops.len() > 20);
    for (path, op) in ops {
        assert!(has_query_param(&op, "fieldValidation"), "{path}");
        assert!(
            op["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object(),
            "{path}"
        );
        assert!(op["x-kubernetes-group-version-kind"].is_object(), "{path}");
    }
}

#[test]
fn every_served_kind_has_a_patch_operation_with_its_gvk() {
    let ops = patch_ops();
    for r in crate::registry::RESOURCES {
        let found = ops.iter().any(|(_, op)| {
            let gvk = &op["x-kubernetes-group-version-kind"];
            gvk["group"] == r.group && gvk["version"] == r.version && gvk["kind"] == r.kind
        });
        assert!(found, "no PATCH operation for {}", r.group_kind());
    }
}

#[test]
fn subresources_carry_their_own_kinds() {
    let apps = doc("apis/apps/v1");
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["group"],
        "autoscaling"
    );
    let status = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentStatus"
    );

    let core = doc("api/v1");
    let binding = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
    assert_eq!(
        binding["post"]["x-kubernetes-group-version-kind"]["kind"],
        "Binding"
    );
    assert_eq!(binding["post"]["x-kubernetes-action"], "post");
    let eviction = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"];
    assert_eq!(
        eviction["post"]["x-kubernetes-group-version-kind"]["group"],
        "policy"
    );
    let nodes = &core["paths"]["/api/v1/nodes/{name}"];
    assert_eq!(nodes["patch"]["operationId"], "patchCoreV1Node");
    let all_pods = &core["paths"]["/api/v1/pods"];
    assert_eq!(
        all_pods["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    let list = &core["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(
        list["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert!(has_query_param(&list["get"], "watch"));
}

#[test]
fn every_schema_reference_resolves() {
    for (g, v) in crate::registry::group_versions() {
        let path = paths::api_prefix(g, v).trim_start_matches('/').to_string();
        let text = String::from_utf8(document(&path).expect("doc").to_vec()).expect("utf-8");
        let d: Value = serde_json::from_str(&text).expect("json");
        let schemas = d["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{path}: dangling reference to {name}"
            );
        }
    }
}

// Fixture tables: a Deployment down to its containers, as the generated tables describe it.

const fn field(json: &'static str, tag: u32, ty: Type, shape: Shape) -> Field {
    Field {
        json,
        tag,
        ty,
        shape,
        merge_key: None,
        patch_strategy: None,
        list_type: None,
        list_map_keys: &[],
        inline: false,
        omit_zero: false,
    }
}

const STR: Type = Type::Scalar(Scalar::String);

static FIXTURE: &[Message] = &[
    Message {
        name: "k8s.io.api.apps.v1.Deployment",
        fields: &[
            field(
                "metadata",
                1,
                Type::Message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                Shape::Single,
            ),
            field(
                "spec",
                2,
                Type::Message("k8s.io.api.apps.v1.DeploymentSpec"),
                Shape::Single,
            ),
        ],
    },
    Message {
        name: "k8s.io.api.apps.v1.DeploymentSpec",
        fields: &[
            field("replicas", 1, Type::Scalar(Scalar::Int32), Shape::Single),
            field(
                "template",
                3,
                Type::Message("k8s.io.api.core.v1.PodTemplateSpec"),
                Shape::Single,
            ),
            field(
                "maxSurge",
                9,
                Type::Scalar(Scalar::IntOrString),
                Shape::Single,
            ),
        ],
    },
    Message {
        name: "k8s.io.api.core.v1.Container",
        fields: &[
            field("name", 1, STR, Shape::Single),
            field("image", 2, STR, Shape::Single),
        ],
    },
    Message {
        name: "k8s.io.api.core.v1.PodSpec",
        fields: &[
            Field {
                merge_key: Some("name"),
                patch_strategy: Some("merge"),
                list_type: Some("map"),
                list_map_keys: &["name"],
                ..field(
                    "containers",
                    2,
                    Type::Message("k8s.io.api.core.v1.Container"),
                    Shape::List,
                )
            },
            field("nodeSelector", 7, STR, Shape::Map),
            Field {
                merge_key: Some("name"),
                patch_strategy: Some("merge,retainKeys"),
                ..field(
                    "volumes",
                    1,
                    Type::Message("k8s.io.api.core.v1.Volume"),
                    Shape::List,
                )
            },
        ],
    },
    Message {
        name: "k8s.io.api.core.v1.Volume",
        fields: &[
            field("name", 1, STR, Shape::Single),
            Field {
                inline: true,
                ..field(
                    "volumeSource",
                    2,
                    Type::Message("k8s.io.api.core.v1.VolumeSource"),
                    Shape::Single,
                )
            },
        ],
    },
    Message {
        name: "k8s.io.api.core.v1.VolumeSource",
        fields: &[field("hostPath", 1, STR, Shape::Single)],
    },
    Message {
        name: "k8s.io.api.core.v1.PodTemplateSpec",
        fields: &[
            field(
                "metadata",
                1,
                Type::Message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                Shape::Single,
            ),
            field(
                "spec",
                2,
                Type::Message("k8s.io.api.core.v1.PodSpec"),
                Shape::Single,
            ),
        ],
    },
    Message {
        name: "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        fields: &[
            field("name", 1, STR, Shape::Single),
            field("labels", 11, STR, Shape::Map),
            field(
                "creationTimestamp",
                8,
                Type::Scalar(Scalar::Time),
                Shape::Single,
            ),
        ],
    },
];

/// The fixture tables, less the messages named in `drop`.
struct Fixture {
    drop: &'static [&'static str],
}

impl SchemaSource for Fixture {
    fn message(&self, name: &str) -> Option<&'static Message> {
        if self.drop.contains(&name) {
            return None;
        }
        FIXTURE.iter().find(|m| m.name == name)
    }

    fn kind_message(&self, group: &str, version: &str, kind: &str) -> Option<&'static Message> {
        self.message(&kind_proto_name(group, version, kind))
    }
}

/// Walks `path` from `schema` the way kubectl's strategic-merge lookup does: property, then
/// `allOf[0]` or `$ref`, then `items` for lists. Returns the last property's schema.
fn walk<'a>(schemas: &'a Value, root: &str, path: &[&str]) -> &'a Value {
    let mut current = &schemas[root];
    let mut prop = current;
    for key in path {
        prop = &current["properties"][*key];
        assert!(prop.is_object(), "no property {key} under {root}");
        let mut target = prop;
        if let Some(items) = target.get("items") {
            target = items;
        }
        if let Some(first) = target.get("allOf").and_then(|a| a.get(0)) {
            target = first;
        }
        if let Some(r) = target.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            target = &schemas[name];
        }
        current = target;
    }
    prop
}

#[test]
fn deployment_schema_merges_containers_by_name() {
    let d = build("apps", "v1", &Fixture { drop: &[] });
    let schemas = &d["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert_eq!(deployment["properties"]["apiVersion"]["type"], "string");
    let containers = walk(
        schemas,
        "io.k8s.api.apps.v1.Deployment",
        &["spec", "template", "spec", "containers"],
    );
    assert_eq!(containers["type"], "array");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        containers["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
    let image = walk(
        schemas,
        "io.k8s.api.apps.v1.Deployment",
        &["spec", "template", "spec", "containers", "image"],
    );
    assert_eq!(image["type"], "string");
    let labels = walk(
        schemas,
        "io.k8s.api.apps.v1.Deployment",
        &["metadata", "labels"],
    );
    assert_eq!(labels["additionalProperties"]["type"], "string");
}

#[test]
fn inlined_messages_contribute_their_fields() {
    let d = build("apps", "v1", &Fixture { drop: &[] });
    let schemas = &d["components"]["schemas"];
    let path = ["spec", "template", "spec", "volumes", "hostPath"];
    let host_path = walk(schemas, "io.k8s.api.apps.v1.Deployment", &path);
    assert_eq!(host_path["type"], "string");
    let volume = &schemas["io.k8s.api.core.v1.Volume"]["properties"];
    assert!(
        volume.get("volumeSource").is_none(),
        "Go inline fields have no JSON name"
    );
    let volumes = walk(schemas, "io.k8s.api.apps.v1.Deployment", &path[..4]);
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
}

#[test]
fn list_kinds_are_lists_of_their_items() {
    let d = build("apps", "v1", &Fixture { drop: &[] });
    let schemas = &d["components"]["schemas"];
    let list = &schemas["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    let list_meta = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"];
    assert_eq!(list_meta["properties"]["continue"]["type"], "string");
}

#[test]
fn well_known_types_are_modelled_as_kubernetes_does() {
    let d = build("apps", "v1", &Fixture { drop: &[] });
    let schemas = &d["components"]["schemas"];
    let surge = walk(
        schemas,
        "io.k8s.api.apps.v1.Deployment",
        &["spec", "maxSurge"],
    );
    assert_eq!(
        surge["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    );
    let ios = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    let time = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
    assert_eq!(time["format"], "date-time");
}

#[test]
fn incomplete_kind_schema_is_left_anonymous() {
    // Without Container, kubectl's lookup of `image` would fail; no GVK means it uses its
    // compiled-in structs instead.
    let d = build(
        "apps",
        "v1",
        &Fixture {
            drop: &["k8s.io.api.core.v1.Container"],
        },
    );
    let schemas = &d["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert!(deployment.get("x-kubernetes-group-version-kind").is_none());
    assert_eq!(schemas["io.k8s.api.core.v1.Container"]["type"], "object");
    // The paths, and so fieldValidation support, do not depend on the schema tables.
    let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(has_query_param(patch, "fieldValidation"));
}

#[test]
fn content_hash_changes_with_content() {
    assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
    assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
    assert_eq!(content_hash(b"").len(), 32);
}

/// (field number, bytes) of each length-delimited field; panics on anything else.
fn proto_fields(mut b: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let [key, rest @ ..] = b {
        assert_eq!(key & 7, 2, "only length-delimited fields are written");
        let (len, rest) = (rest[0] as usize, &rest[1..]);
        assert!(len < 0x80);
        out.push((key >> 3, &rest[..len]));
        b = &rest[len..];
    }
    out
}

#[test]
fn v2_document_is_an_empty_swagger_document() {
    let fields = proto_fields(v2_document());
    let numbers: Vec<u8> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 8, 9]);
    assert_eq!(fields[0].1, b"2.0");
    assert_eq!(proto_fields(fields[1].1)[0], (1, &b"Gantry"[..]));
    assert!(
        fields[2].1.is_empty() && fields[3].1.is_empty(),
        "no paths, no definitions"
    );
    assert!(!V2_CONTENT_TYPE.contains('@'));
}

#[test]
fn served_kinds_are_advertised_for_client_side_apply() {
    // A kind left without its GVK makes kubectl fall back to its built-in structs and makes
    // `kubectl explain` fail; it means the schema tables lost a message.
    for r in crate::registry::RESOURCES {
        let path = paths::api_prefix(r.group, r.version)
            .trim_start_matches('/')
            .to_string();
        let name = schemas::openapi_name(&kind_proto_name(r.group, r.version, r.kind));
        let d = doc(&path);
        let gvk = &d["components"]["schemas"][&name]["x-kubernetes-group-version-kind"][0];
        assert_eq!(gvk["kind"], r.kind, "{name} is not advertised");
    }
    let d = doc("apis/apps/v1");
    let containers = walk(
        &d["components"]["schemas"],
        "io.k8s.api.apps.v1.Deployment",
        &["spec", "template", "spec", "containers"],
    );
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
}
