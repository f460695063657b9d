use serde_json::{json, Value};

use super::*;
use crate::schema::{Field, Message, Scalar, Shape, Type};

// A hand-built slice of the Kubernetes schema with the patch metadata the real types carry.

const fn plain(json: &'static str, ty: Type, shape: Shape) -> Field {
    Field {
        json,
        tag: 0,
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

const fn merged(
    json: &'static str,
    ty: Type,
    key: Option<&'static str>,
    strategy: &'static str,
) -> Field {
    Field {
        json,
        tag: 0,
        ty,
        shape: Shape::List,
        merge_key: key,
        patch_strategy: Some(strategy),
        list_type: None,
        list_map_keys: &[],
        inline: false,
        omit_zero: false,
    }
}

const STRING: Type = Type::Scalar(Scalar::String);
const INT: Type = Type::Scalar(Scalar::Int32);

static OBJECT_META: Message = Message {
    name: "t.ObjectMeta",
    fields: &[
        plain("name", STRING, Shape::Single),
        plain("labels", STRING, Shape::Map),
        plain("annotations", STRING, Shape::Map),
        merged("finalizers", STRING, None, "merge"),
    ],
};
static DEPLOYMENT: Message = Message {
    name: "t.Deployment",
    fields: &[
        plain("metadata", Type::Message("t.ObjectMeta"), Shape::Single),
        plain("spec", Type::Message("t.DeploymentSpec"), Shape::Single),
    ],
};
static DEPLOYMENT_SPEC: Message = Message {
    name: "t.DeploymentSpec",
    fields: &[
        plain("replicas", INT, Shape::Single),
        plain(
            "template",
            Type::Message("t.PodTemplateSpec"),
            Shape::Single,
        ),
        Field {
            patch_strategy: Some("retainKeys"),
            ..plain(
                "strategy",
                Type::Message("t.DeploymentStrategy"),
                Shape::Single,
            )
        },
    ],
};
static DEPLOYMENT_STRATEGY: Message = Message {
    name: "t.DeploymentStrategy",
    fields: &[
        plain("type", STRING, Shape::Single),
        plain(
            "rollingUpdate",
            Type::Message("t.RollingUpdateDeployment"),
            Shape::Single,
        ),
    ],
};
static POD_TEMPLATE_SPEC: Message = Message {
    name: "t.PodTemplateSpec",
    fields: &[
        plain("metadata", Type::Message("t.ObjectMeta"), Shape::Single),
        plain("spec", Type::Message("t.PodSpec"), Shape::Single),
    ],
};
static POD_SPEC: Message = Message {
    name: "t.PodSpec",
    fields: &[
        merged(
            "containers",
            Type::Message("t.Container"),
            Some("name"),
            "merge",
        ),
        merged(
            "volumes",
            Type::Message("t.Volume"),
            Some("name"),
            "merge,retainKeys",
        ),
        plain("nodeSelector", STRING, Shape::Map),
        plain("tolerations", Type::Message("t.Toleration"), Shape::List),
    ],
};
static CONTAINER: Message = Message {
    name: "t.Container",
    fields: &[
        plain("name", STRING, Shape::Single),
        plain("image", STRING, Shape::Single),
        plain("args", STRING, Shape::List),
        merged(
            "ports",
            Type::Message("t.ContainerPort"),
            Some("containerPort"),
            "merge",
        ),
        merged("env", Type::Message("t.EnvVar"), Some("name"), "merge"),
    ],
};
static CONTAINER_PORT: Message = Message {
    name: "t.ContainerPort",
    fields: &[
        plain("containerPort", INT, Shape::Single),
        plain("protocol", STRING, Shape::Single),
    ],
};
static SERVICE: Message = Message {
    name: "t.Service",
    fields: &[
        plain("metadata", Type::Message("t.ObjectMeta"), Shape::Single),
        plain("spec", Type::Message("t.ServiceSpec"), Shape::Single),
    ],
};
static SERVICE_SPEC: Message = Message {
    name: "t.ServiceSpec",
    fields: &[
        merged(
            "ports",
            Type::Message("t.ServicePort"),
            Some("port"),
            "merge",
        ),
        plain("selector", STRING, Shape::Map),
    ],
};
static SERVICE_PORT: Message = Message {
    name: "t.ServicePort",
    fields: &[
        plain("port", INT, Shape::Single),
        plain("name", STRING, Shape::Single),
    ],
};
static BAD_LIST: Message = Message {
    name: "t.BadList",
    fields: &[merged(
        "items",
        Type::Message("t.ServicePort"),
        None,
        "merge",
    )],
};

static TABLE: &[&Message] = &[
    &OBJECT_META,
    &DEPLOYMENT,
    &DEPLOYMENT_SPEC,
    &DEPLOYMENT_STRATEGY,
    &POD_TEMPLATE_SPEC,
    &POD_SPEC,
    &CONTAINER,
    &CONTAINER_PORT,
    &SERVICE,
    &SERVICE_SPEC,
    &SERVICE_PORT,
    &BAD_LIST,
];

fn resolve(name: &str) -> Option<&'static Message> {
    TABLE.iter().copied().find(|m| m.name == name)
}

fn patch(doc: &Value, body: &str, root: &'static Message) -> Result<Value, PatchError> {
    let body: Value = serde_json::from_str(body).expect("test patch is JSON");
    let mut out = doc.clone();
    match apply_with(&mut out, &body, root, &resolve) {
        Ok(()) => Ok(out),
        Err(err) => {
            assert_eq!(&out, doc, "a failed patch changes nothing");
            Err(err)
        }
    }
}

fn patched(doc: &Value, body: &str, root: &'static Message) -> Value {
    patch(doc, body, root).expect("patch applies")
}

fn deployment() -> Value {
    json!({
        "metadata": {"name": "api", "labels": {"app": "api", "tier": "be"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": "busybox:1.41", "args": ["serve", "--v=1"],
                         "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "envoy:1"}
                    ],
                    "nodeSelector": {"disk": "hdd", "zone": "a"}
                }
            }
        }
    })
}

fn containers(doc: &Value) -> &Value {
    &doc["spec"]["template"]["spec"]["containers"]
}

fn no_directives(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| !k.starts_with('$') && no_directives(v)),
        Value::Array(items) => items.iter().all(no_directives),
        _ => true,
    }
}

#[test]
fn kubectl_apply_image_change_keeps_other_container_fields() {
    // The body kubectl 1.32 `apply` sent after the manifest's image changed.
    let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"api"}],"containers":[{"image":"busybox:1.99","name":"api"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    let api = &containers(&out)[0];
    assert_eq!(api["name"], "api");
    assert_eq!(api["image"], "busybox:1.99");
    assert_eq!(
        api["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(api["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(
        containers(&out)[1]["name"],
        "sidecar",
        "server-only container stays"
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{}\n"
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "api", "tier": "be"})
    );
    assert!(no_directives(&out), "{out}");
}

#[test]
fn kubectl_set_image_patch_changes_only_that_image() {
    let body = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"}],"containers":[{"image":"envoy:2","name":"sidecar"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    let names: Vec<&Value> = containers(&out)
        .as_array()
        .expect("list")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("api"), &json!("sidecar")]);
    assert_eq!(containers(&out)[1]["image"], "envoy:2");
    assert_eq!(containers(&out)[0]["image"], "busybox:1.41");
}

#[test]
fn set_element_order_reorders_the_merged_list() {
    // The manifest now lists sidecar first; the live list follows it.
    let body = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"api"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(containers(&out)[0]["name"], "sidecar");
    assert_eq!(containers(&out)[1]["name"], "api");
    assert_eq!(containers(&out)[1]["image"], "busybox:1.41");
}

#[test]
fn set_element_order_places_new_elements_before_later_server_only_ones() {
    // As in Kubernetes: elements named by the patch win over live-only ones, which are only
    // placed first when they precede the patch element in the live list.
    let body = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"api"},{"name":"new"}],"containers":[{"name":"new","image":"x"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    let names: Vec<&str> = containers(&out)
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["api", "new", "sidecar"]);
}

#[test]
fn apply_removing_a_service_port_deletes_it() {
    let svc = json!({"spec": {"selector": {"app": "api"}, "ports": [
        {"name": "http", "port": 80}, {"name": "https", "port": 443}
    ]}});
    let body = r#"{"spec":{"$setElementOrder/ports":[{"port":80}],"ports":[{"$patch":"delete","port":443}]}}"#;
    let out = patched(&svc, body, &SERVICE);
    assert_eq!(out["spec"]["ports"], json!([{"name": "http", "port": 80}]));
    assert_eq!(out["spec"]["selector"], json!({"app": "api"}));
}

#[test]
fn nested_list_merges_by_its_own_key() {
    // New elements come before the live ones (Kubernetes orders patch elements first).
    let body = r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","ports":[{"containerPort":9090}],"env":[{"name":"A","value":"2"}]}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    let api = &containers(&out)[0];
    assert_eq!(
        api["ports"],
        json!([{"containerPort": 9090}, {"containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(api["env"], json!([{"name": "A", "value": "2"}]));
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let body = r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","args":["run"]}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(containers(&out)[0]["args"], json!(["run"]));
}

#[test]
fn patch_replace_directive_replaces_a_map() {
    let body =
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"$patch":"replace","disk":"ssd"}}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(
        out["spec"]["template"]["spec"]["nodeSelector"],
        json!({"disk": "ssd"})
    );
}

#[test]
fn patch_delete_directive_empties_a_map_and_removes_a_list_element() {
    let body = r#"{"spec":{"template":{"spec":{"nodeSelector":{"$patch":"delete"},"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(out["spec"]["template"]["spec"]["nodeSelector"], json!({}));
    assert_eq!(containers(&out).as_array().map(Vec::len), Some(1));
    assert_eq!(containers(&out)[0]["name"], "api");
}

#[test]
fn patch_replace_element_replaces_a_merging_list() {
    let body = r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"},{"$patch":"replace"}]}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(containers(&out), &json!([{"name": "only", "image": "x"}]));
}

#[test]
fn patch_merge_directive_in_a_map_is_the_default_merge() {
    let body = r#"{"metadata":{"labels":{"$patch":"merge","new":"1"}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "api", "tier": "be", "new": "1"})
    );
}

#[test]
fn retain_keys_drops_fields_the_patch_does_not_name() {
    // kubectl apply switching the strategy to Recreate sends this.
    let body =
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    let body = r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}}"#;
    let err = patch(&deployment(), body, &DEPLOYMENT).expect_err("rollingUpdate is not retained");
    assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn delete_from_primitive_list_removes_finalizers() {
    let body = r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn primitive_merge_lists_take_the_union() {
    let body = r#"{"metadata":{"finalizers":["b","c"]}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
}

#[test]
fn null_deletes_a_label_and_rollout_restart_adds_an_annotation() {
    let body = r#"{"metadata":{"labels":{"tier":null}},"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-27T01:29:25Z"}}}}}"#;
    let out = patched(&deployment(), body, &DEPLOYMENT);
    assert_eq!(out["metadata"]["labels"], json!({"app": "api"}));
    assert_eq!(
        out["spec"]["template"]["metadata"],
        json!({"labels": {"app": "api"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T01:29:25Z"}})
    );
}

#[test]
fn fields_unknown_to_the_schema_merge_like_a_merge_patch() {
    let doc = json!({"spec": {"extra": {"a": 1, "b": [1, 2], "c": 3}}});
    let out = patched(
        &doc,
        r#"{"spec":{"extra":{"b":[3],"c":null,"d":{"e":null,"f":1}}}}"#,
        &DEPLOYMENT,
    );
    assert_eq!(
        out["spec"]["extra"],
        json!({"a": 1, "b": [3], "d": {"f": 1}})
    );
}

#[test]
fn added_values_never_carry_directives() {
    let doc = json!({"spec": {"template": {"spec": {}}}});
    let body = r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"v"}],"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"c","$setElementOrder/env":[{"name":"X"}],"env":[{"name":"X","value":"1"}]}],"nodeSelector":{"$patch":"replace","disk":"ssd"}}}}}"#;
    let out = patched(&doc, body, &DEPLOYMENT);
    assert!(no_directives(&out), "{out}");
    assert_eq!(
        out["spec"]["template"]["spec"],
        json!({
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}],
            "nodeSelector": {"disk": "ssd"}
        })
    );
}

#[test]
fn malformed_strategic_patches_are_rejected() {
    let cases = [
        (
            r#"{"metadata":{"labels":{"$patch":"explode"}}}"#,
            "unknown patch type: explode",
        ),
        (
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
            "does not contain declared merge key: name",
        ),
        (
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","$patch":"merge"}]}}}}"#,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}"#,
            "invalid patch format of primitive list",
        ),
        (
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"api"}],"containers":[{"name":"other"}]}}}}"#,
            "doesn't match $setElementOrder list",
        ),
    ];
    for (body, want) in cases {
        let err = patch(&deployment(), body, &DEPLOYMENT).expect_err(body);
        assert!(err.to_string().contains(want), "{body}: {err}");
        assert_eq!(err.status_code(), 400);
    }
}

#[test]
fn list_of_lists_and_missing_merge_key_declaration_are_errors() {
    let doc = json!({"metadata": {"finalizers": ["a"]}});
    let err = patch(&doc, r#"{"metadata":{"finalizers":[["b"]]}}"#, &DEPLOYMENT)
        .expect_err("list of lists");
    assert_eq!(err, PatchError::ListOfLists);
    assert_eq!(err.status_code(), 422);

    let doc = json!({"items": [{"port": 1}]});
    let err =
        patch(&doc, r#"{"items":[{"port":2}]}"#, &BAD_LIST).expect_err("no merge key declared");
    assert_eq!(
        err.to_string(),
        "cannot merge lists without merge key for t.ServicePort"
    );
}

#[test]
fn patch_and_document_must_be_objects() {
    let err = patch(&json!({}), "[]", &DEPLOYMENT).expect_err("array patch");
    assert_eq!(err.to_string(), "invalid JSON document");
}
