//! `paths` of one group-version document: collection, item and subresource operations for
//! every served resource, shaped like the Kubernetes API server's own.
//! Invariant: every PATCH operation lists `fieldValidation` and
//! `application/strategic-merge-patch+json`. kubectl takes the first PATCH operation whose
//! `x-kubernetes-group-version-kind` matches (map order, so effectively any of them) to decide
//! whether to send `fieldValidation=Strict` and whether client-side apply may use these schemas.

use serde_json::{json, Map, Value};

use super::schemas::{kind_proto_name, schema_ref, Root};
use crate::registry::{ResourceType, Subresource};

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Content types the patch endpoints accept.
pub const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// `paths` for the resources of one group-version, which share `group` and `version`.
pub(crate) fn paths(group: &str, version: &str, resources: &[&ResourceType]) -> Map<String, Value> {
    let prefix = api_prefix(group, version);
    let names = OpNames::new(group, version);
    let mut out = Map::new();
    out.insert(
        format!("{prefix}/"),
        json!({
            "get": {
                "description": "get available resources",
                "operationId": format!("get{}APIResources", names.group),
                "responses": ok(&meta("APIResourceList"), false),
                "tags": [names.tag],
            }
        }),
    );
    for r in resources {
        resource_paths(&prefix, &names, r, &mut out);
    }
    out
}

/// Schemas the paths of these resources refer to.
pub(crate) fn roots(resources: &[&ResourceType]) -> Vec<Root> {
    let mut out = vec![
        Root::meta("APIResourceList"),
        Root::meta("DeleteOptions"),
        Root::meta("Patch"),
        Root::meta("Status"),
    ];
    for r in resources {
        out.push(Root::kind(r.group, r.version, r.kind));
        out.push(Root::kind(r.group, r.version, &r.list_kind()));
        for sub in r.subresources {
            if let Some((g, v, k)) = sub.kind() {
                out.push(Root::kind(g, v, k));
            }
        }
    }
    out
}

/// `/api/v1` or `/apis/apps/v1`.
pub(crate) fn api_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn resource_paths(prefix: &str, names: &OpNames, r: &ResourceType, out: &mut Map<String, Value>) {
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let gvk = (r.group, r.version, r.kind);
    let kind = kind_proto_name(r.group, r.version, r.kind);
    let list = kind_proto_name(r.group, r.version, &r.list_kind());
    let op = |verb: &str, suffix: &str| names.op_id(verb, scope, r.kind, suffix);

    let mut path_params = Vec::new();
    if r.namespaced {
        path_params.push(path_param("namespace"));
    }
    path_params.push(pretty());

    out.insert(
        collection.clone(),
        json!({
            "delete": operation(names, &op("delete", "Collection"), "deletecollection", gvk,
                delete_collection_params(), Some(body(&meta("DeleteOptions"))),
                ok(&meta("Status"), false)),
            "get": operation(names, &op("list", ""), "list", gvk, list_params(), None,
                ok(&list, true)),
            "parameters": path_params,
            "post": operation(names, &op("create", ""), "post", gvk, write_params(false),
                Some(body(&kind)), created(&kind, true)),
        }),
    );

    let item = format!("{collection}/{{name}}");
    let mut item_params = vec![path_param("name")];
    item_params.extend(path_params.iter().cloned());
    out.insert(
        item.clone(),
        json!({
            "delete": operation(names, &op("delete", ""), "delete", gvk, delete_params(),
                Some(body(&meta("DeleteOptions"))), accepted(&meta("Status"))),
            "get": operation(names, &op("read", ""), "get", gvk, vec![], None,
                ok(&kind, false)),
            "parameters": item_params.clone(),
            "patch": operation(names, &op("patch", ""), "patch", gvk, write_params(true),
                Some(patch_body()), created(&kind, false)),
            "put": operation(names, &op("replace", ""), "put", gvk, write_params(false),
                Some(body(&kind)), created(&kind, false)),
        }),
    );

    if r.namespaced {
        out.insert(
            format!("{prefix}/{}", r.plural),
            json!({
                "get": operation(names, &names.op_id("list", "", r.kind, "ForAllNamespaces"),
                    "list", gvk, list_params(), None, ok(&list, true)),
                "parameters": [pretty()],
            }),
        );
    }

    for sub in r.subresources {
        let suffix = capitalize(sub.name());
        let (g, v, k) = sub.kind().unwrap_or(gvk);
        let sub_kind = kind_proto_name(g, v, k);
        let sub_gvk = (g, v, k);
        let sub_op = |verb: &str| op(verb, &suffix);
        let ops = match sub {
            Subresource::Status | Subresource::Scale => json!({
                "get": operation(names, &sub_op("read"), "get", sub_gvk, vec![], None,
                    ok(&sub_kind, false)),
                "parameters": item_params.clone(),
                "patch": operation(names, &sub_op("patch"), "patch", sub_gvk,
                    write_params(true), Some(patch_body()), created(&sub_kind, false)),
                "put": operation(names, &sub_op("replace"), "put", sub_gvk,
                    write_params(false), Some(body(&sub_kind)), created(&sub_kind, false)),
            }),
            Subresource::Log => json!({
                "get": {
                    "operationId": format!("read{}Namespaced{}Log", names.group, k),
                    "tags": [names.tag],
                    "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k},
                },
                "parameters": item_params.clone(),
            }),
            Subresource::Exec => {
                let connect = |verb: &str, op: &str| {
                    json!({
                        "operationId": format!("{op}{}Namespaced{}Exec", names.group, k),
                        "tags": [names.tag],
                        "responses": {"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}},
                        "x-kubernetes-action": verb,
                        "x-kubernetes-group-version-kind": {"group": g, "version": "v1", "kind": "PodExecOptions"},
                    })
                };
                json!({
                    "get": connect("connect", "connectGet"),
                    "parameters": item_params.clone(),
                    "post": connect("connect", "connectPost"),
                })
            }
            Subresource::Binding | Subresource::Eviction => json!({
                "parameters": item_params.clone(),
                "post": operation(names, &sub_op("create"), "post", sub_gvk,
                    write_params(false), Some(body(&sub_kind)), created(&sub_kind, true)),
            }),
        };
        out.insert(format!("{item}/{}", sub.name()), ops);
    }
}

/// Operation ids and tags as Kubernetes spells them: `patchAppsV1NamespacedDeployment`, `apps_v1`.
struct OpNames {
    /// `CoreV1`, `AppsV1`, `CoordinationV1`.
    group: String,
    /// `core_v1`, `apps_v1`, `coordination_v1`.
    tag: String,
}

impl OpNames {
    fn new(group: &str, version: &str) -> OpNames {
        let short = if group.is_empty() {
            "core"
        } else {
            group.split('.').next().unwrap_or(group)
        };
        OpNames {
            group: format!("{}{}", capitalize(short), capitalize(version)),
            tag: format!("{short}_{version}"),
        }
    }

    fn op_id(&self, verb: &str, scope: &str, kind: &str, suffix: &str) -> String {
        // Collections read "deleteAppsV1CollectionNamespacedDeployment".
        if suffix == "Collection" {
            return format!("{verb}{}Collection{scope}{kind}", self.group);
        }
        format!("{verb}{}{scope}{kind}{suffix}", self.group)
    }
}

#[allow(clippy::too_many_arguments)]
fn operation(
    names: &OpNames,
    id: &str,
    action: &str,
    gvk: (&str, &str, &str),
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: Value,
) -> Value {
    let mut op = Map::new();
    op.insert("description".into(), json!(description(action, gvk.2)));
    op.insert("operationId".into(), json!(id));
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(b) = request_body {
        op.insert("requestBody".into(), b);
    }
    op.insert("responses".into(), responses);
    op.insert("tags".into(), json!([names.tag]));
    op.insert("x-kubernetes-action".into(), json!(action));
    op.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({ "group": gvk.0, "kind": gvk.2, "version": gvk.1 }),
    );
    Value::Object(op)
}

fn description(action: &str, kind: &str) -> String {
    match action {
        "list" => format!("list or watch objects of kind {kind}"),
        "post" => format!("create a {kind}"),
        "get" => format!("read the specified {kind}"),
        "put" => format!("replace the specified {kind}"),
        "patch" => format!("partially update the specified {kind}"),
        "delete" => format!("delete a {kind}"),
        _ => format!("delete collection of {kind}"),
    }
}

fn meta(kind: &str) -> String {
    format!("{META_V1}.{kind}")
}

fn body(proto: &str) -> Value {
    json!({ "content": media(&["application/json", "application/yaml"], proto), "required": true })
}

fn patch_body() -> Value {
    json!({ "content": media(PATCH_CONTENT_TYPES, &meta("Patch")), "required": true })
}

fn media(types: &[&str], proto: &str) -> Value {
    let mut out = Map::new();
    for t in types {
        out.insert((*t).to_string(), json!({ "schema": schema_ref(proto) }));
    }
    Value::Object(out)
}

fn response_content(proto: &str, watch: bool) -> Value {
    let mut types = vec!["application/json", "application/yaml"];
    if watch {
        types.push("application/json;stream=watch");
    }
    media(&types, proto)
}

fn ok(proto: &str, watch: bool) -> Value {
    json!({
        "200": { "content": response_content(proto, watch), "description": "OK" },
        "401": { "description": "Unauthorized" },
    })
}

fn created(proto: &str, with_accepted: bool) -> Value {
    let mut out = json!({
        "200": { "content": response_content(proto, false), "description": "OK" },
        "201": { "content": response_content(proto, false), "description": "Created" },
    });
    if with_accepted {
        out["202"] =
            json!({ "content": response_content(proto, false), "description": "Accepted" });
    }
    out["401"] = json!({ "description": "Unauthorized" });
    out
}

fn accepted(proto: &str) -> Value {
    json!({
        "200": { "content": response_content(proto, false), "description": "OK" },
        "202": { "content": response_content(proto, false), "description": "Accepted" },
        "401": { "description": "Unauthorized" },
    })
}

fn path_param(name: &str) -> Value {
    let description = match name {
        "namespace" => "namespace of the object",
        _ => "name of the object",
    };
    json!({
        "description": description,
        "in": "path",
        "name": name,
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn pretty() -> Value {
    query(
        "pretty",
        "string",
        "if 'true', the output is pretty printed",
    )
}

/// A query parameter; `uniqueItems` on scalars mirrors what Kubernetes publishes.
fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "query",
        "name": name,
        "schema": { "type": ty, "uniqueItems": true },
    })
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut out = vec![
        query(
            "dryRun",
            "string",
            "'All' runs every stage of the request without persisting it",
        ),
        query(
            "fieldManager",
            "string",
            "name of the actor making the change, for field ownership",
        ),
        query(
            "fieldValidation",
            "string",
            "how to treat unknown or duplicate fields: Ignore, Warn (default) or Strict",
        ),
    ];
    if patch {
        out.push(query(
            "force",
            "boolean",
            "apply requests only: take ownership of fields another manager owns",
        ));
    }
    out
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "watch only: ask for BOOKMARK events",
        ),
        query("continue", "string", "token from a previous paged list"),
        query(
            "fieldSelector",
            "string",
            "restrict the list by object fields",
        ),
        query("labelSelector", "string", "restrict the list by labels"),
        query("limit", "integer", "maximum number of items in one page"),
        query(
            "resourceVersion",
            "string",
            "resource version constraint of the read",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "how resourceVersion applies to a list",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "watch only: start with synthetic ADDED events",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "time limit of the list or watch call",
        ),
        query("watch", "boolean", "stream changes instead of listing"),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "'All' runs every stage of the request without persisting it",
        ),
        query(
            "gracePeriodSeconds",
            "integer",
            "seconds before the object is deleted",
        ),
        query(
            "orphanDependents",
            "boolean",
            "deprecated: use propagationPolicy",
        ),
        query(
            "propagationPolicy",
            "string",
            "Orphan, Background or Foreground",
        ),
    ]
}

fn delete_collection_params() -> Vec<Value> {
    let mut out = delete_params();
    out.extend(
        list_params()
            .into_iter()
            .filter(|p| !matches!(p["name"].as_str(), Some("watch" | "allowWatchBookmarks"))),
    );
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
