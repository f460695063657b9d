//! Apply and update scenarios on a small hand-built Deployment schema (`test.` messages).

use serde_json::{json, Value};

use super::*;
use crate::schema::{Field, Message, Scalar, Shape, Type};

const fn field(json: &'static str, ty: Type, shape: Shape) -> Field {
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

const STR: Type = Type::Scalar(Scalar::String);
const INT: Type = Type::Scalar(Scalar::Int32);

static DEPLOYMENT: Message = Message {
    name: "test.Deployment",
    fields: &[
        field("apiVersion", STR, Shape::Single),
        field("kind", STR, Shape::Single),
        field("metadata", Type::Message("test.ObjectMeta"), Shape::Single),
        field("spec", Type::Message("test.DeploymentSpec"), Shape::Single),
        field(
            "status",
            Type::Message("test.DeploymentStatus"),
            Shape::Single,
        ),
    ],
};

static OBJECT_META: Message = Message {
    name: "test.ObjectMeta",
    fields: &[
        field("name", STR, Shape::Single),
        field("namespace", STR, Shape::Single),
        field("uid", STR, Shape::Single),
        field("resourceVersion", STR, Shape::Single),
        field("labels", STR, Shape::Map),
        field("annotations", STR, Shape::Map),
        Field {
            patch_strategy: Some("merge"),
            list_type: Some("set"),
            ..field("finalizers", STR, Shape::List)
        },
        field("managedFields", Type::Scalar(Scalar::Any), Shape::List),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "test.DeploymentSpec",
    fields: &[
        field("replicas", INT, Shape::Single),
        field(
            "selector",
            Type::Message("k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelector"),
            Shape::Single,
        ),
        field(
            "template",
            Type::Message("test.PodTemplateSpec"),
            Shape::Single,
        ),
    ],
};

static POD_TEMPLATE: Message = Message {
    name: "test.PodTemplateSpec",
    fields: &[
        field("metadata", Type::Message("test.ObjectMeta"), Shape::Single),
        field("spec", Type::Message("test.PodSpec"), Shape::Single),
    ],
};

static POD_SPEC: Message = Message {
    name: "test.PodSpec",
    fields: &[Field {
        merge_key: Some("name"),
        patch_strategy: Some("merge"),
        list_type: Some("map"),
        list_map_keys: &["name"],
        ..field("containers", Type::Message("test.Container"), Shape::List)
    }],
};

static CONTAINER: Message = Message {
    name: "test.Container",
    fields: &[
        field("name", STR, Shape::Single),
        field("image", STR, Shape::Single),
        field("args", STR, Shape::List),
        Field {
            list_type: Some("map"),
            list_map_keys: &["containerPort", "protocol"],
            ..field("ports", Type::Message("test.ContainerPort"), Shape::List)
        },
        // Only a patchMergeKey, no listType: still keyed by name.
        Field {
            merge_key: Some("name"),
            ..field("env", Type::Message("test.EnvVar"), Shape::List)
        },
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "test.ContainerPort",
    fields: &[
        field("containerPort", INT, Shape::Single),
        field("protocol", STR, Shape::Single),
    ],
};

static ENV_VAR: Message = Message {
    name: "test.EnvVar",
    fields: &[
        field("name", STR, Shape::Single),
        field("value", STR, Shape::Single),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "test.DeploymentStatus",
    fields: &[field("replicas", INT, Shape::Single)],
};

pub(super) fn fixture(name: &str) -> Option<&'static Message> {
    [
        &DEPLOYMENT,
        &OBJECT_META,
        &DEPLOYMENT_SPEC,
        &POD_TEMPLATE,
        &POD_SPEC,
        &CONTAINER,
        &CONTAINER_PORT,
        &ENV_VAR,
        &DEPLOYMENT_STATUS,
    ]
    .into_iter()
    .find(|m| m.name == name)
}

fn who<'a>(manager: &'a str, time: &'a str) -> ManagerInfo<'a> {
    ManagerInfo {
        manager,
        api_version: "apps/v1",
        time,
        subresource: None,
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

/// The live object as the API server would store it: with uid and resourceVersion.
fn stored(mut obj: Value) -> Value {
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["resourceVersion"] = json!("7");
    obj
}

fn entries(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields present")
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    entries(obj)
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .unwrap_or_else(|| panic!("no {operation} entry for {manager}: {obj:#}"))
}

fn owns(obj: &Value, manager: &str, operation: &str, pointer: &str) -> bool {
    entry(obj, manager, operation)["fieldsV1"]
        .pointer(pointer)
        .is_some()
}

fn conflicts(err: ApplyError) -> Vec<Conflict> {
    match err {
        ApplyError::Conflicts(c) => c,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn create_if_absent_records_an_apply_entry() {
    let cfg = deployment(3, "nginx:1.25");
    let out = apply(None, &cfg, &DEPLOYMENT, &who("kubectl", "T1"), false).expect("applies");
    assert_eq!(out["spec"], cfg["spec"]);
    assert_eq!(out["metadata"]["name"], "web");
    assert_eq!(
        entries(&out),
        &vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": "T1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {},
                                "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        })]
    );
}

#[test]
fn second_apply_by_same_manager_updates_the_object() {
    let kubectl = who("kubectl", "T1");
    let live = stored(
        apply(
            None,
            &deployment(3, "nginx:1.25"),
            &DEPLOYMENT,
            &kubectl,
            false,
        )
        .expect("create"),
    );
    let out = apply(
        Some(&live),
        &deployment(3, "nginx:1.26"),
        &DEPLOYMENT,
        &who("kubectl", "T2"),
        false,
    )
    .expect("applies");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(entries(&out).len(), 1);
    assert_eq!(entry(&out, "kubectl", "Apply")["time"], "T2");
    // Server-populated metadata survives the apply.
    assert_eq!(out["metadata"]["uid"], "u-1");
    assert_eq!(out["metadata"]["resourceVersion"], "7");
}

#[test]
fn reapplying_unchanged_config_keeps_the_time() {
    let live = stored(
        apply(
            None,
            &deployment(3, "a"),
            &DEPLOYMENT,
            &who("kubectl", "T1"),
            false,
        )
        .expect("create"),
    );
    let out = apply(
        Some(&live),
        &deployment(3, "a"),
        &DEPLOYMENT,
        &who("kubectl", "T2"),
        false,
    )
    .expect("applies");
    assert_eq!(out, live);
}

#[test]
fn field_dropped_from_config_is_removed() {
    let mut first = deployment(3, "a");
    first["metadata"]["labels"]["tier"] = json!("frontend");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("array")
        .push(json!({"name": "sidecar", "image": "envoy"}));
    let live =
        stored(apply(None, &first, &DEPLOYMENT, &who("kubectl", "T1"), false).expect("create"));

    let mut second = deployment(3, "a");
    second["spec"]
        .as_object_mut()
        .expect("object")
        .shift_remove("replicas");
    let out = apply(
        Some(&live),
        &second,
        &DEPLOYMENT,
        &who("kubectl", "T2"),
        false,
    )
    .expect("applies");
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert!(out["spec"].get("replicas").is_none());
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("array");
    assert_eq!(containers.len(), 1);
    assert!(!owns(&out, "kubectl", "Apply", "/f:spec/f:replicas"));
    assert!(!owns(
        &out,
        "kubectl",
        "Apply",
        "/f:metadata/f:labels/f:tier"
    ));
}

#[test]
fn dropped_field_stays_when_another_manager_owns_it() {
    let live = stored(
        apply(
            None,
            &deployment(3, "a"),
            &DEPLOYMENT,
            &who("kubectl", "T1"),
            false,
        )
        .expect("create"),
    );
    // Another applier also sets replicas to the same value: shared ownership, no conflict.
    let hpa_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let shared = stored(
        apply(Some(&live), &hpa_cfg, &DEPLOYMENT, &who("hpa", "T2"), false).expect("shared"),
    );
    assert!(owns(&shared, "kubectl", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&shared, "hpa", "Apply", "/f:spec/f:replicas"));

    let mut cfg = deployment(3, "a");
    cfg["spec"]
        .as_object_mut()
        .expect("object")
        .shift_remove("replicas");
    let out = apply(
        Some(&shared),
        &cfg,
        &DEPLOYMENT,
        &who("kubectl", "T3"),
        false,
    )
    .expect("applies");
    assert_eq!(out["spec"]["replicas"], 3);
    assert!(!owns(&out, "kubectl", "Apply", "/f:spec/f:replicas"));
}

#[test]
fn other_applier_changing_a_field_conflicts_and_force_takes_it() {
    let live = stored(
        apply(
            None,
            &deployment(3, "a"),
            &DEPLOYMENT,
            &who("kubectl", "T1"),
            false,
        )
        .expect("create"),
    );
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let err =
        apply(Some(&live), &cfg, &DEPLOYMENT, &who("hpa", "T2"), false).expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
    );
    assert_eq!(
        err.causes(),
        json!([{"type": "FieldManagerConflict", "message": "conflict with \"kubectl\"",
                "field": ".spec.replicas"}])
    );

    let out = apply(Some(&live), &cfg, &DEPLOYMENT, &who("hpa", "T2"), true).expect("forced");
    assert_eq!(out["spec"]["replicas"], 5);
    assert!(owns(&out, "hpa", "Apply", "/f:spec/f:replicas"));
    assert!(!owns(&out, "kubectl", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&out, "kubectl", "Apply", "/f:spec/f:selector"));
}

#[test]
fn update_then_apply_conflicts_with_the_updater() {
    let mut created = stored(deployment(3, "a"));
    record_update(
        None,
        &mut created,
        &DEPLOYMENT,
        &who("kubectl-client-side-apply", "T1"),
    );
    assert!(owns(
        &created,
        "kubectl-client-side-apply",
        "Update",
        "/f:spec/f:replicas"
    ));
    assert!(owns(
        &created,
        "kubectl-client-side-apply",
        "Update",
        "/f:metadata/f:labels/."
    ));

    // `kubectl scale` as a merge patch by manager `kubectl`.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(4);
    record_update(
        Some(&created),
        &mut scaled,
        &DEPLOYMENT,
        &who("kubectl", "T2"),
    );
    assert!(owns(&scaled, "kubectl", "Update", "/f:spec/f:replicas"));
    assert!(!owns(
        &scaled,
        "kubectl-client-side-apply",
        "Update",
        "/f:spec/f:replicas"
    ));

    let cfg = deployment(6, "a");
    let err = apply(
        Some(&scaled),
        &cfg,
        &DEPLOYMENT,
        &who("kubectl-client-side-apply", "T3"),
        false,
    )
    .expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
    // Same replicas as live: no conflict, both own it.
    let ok = apply(
        Some(&scaled),
        &deployment(4, "a"),
        &DEPLOYMENT,
        &who("kubectl-client-side-apply", "T3"),
        false,
    )
    .expect("no conflict");
    assert!(owns(&ok, "kubectl", "Update", "/f:spec/f:replicas"));
    assert!(owns(
        &ok,
        "kubectl-client-side-apply",
        "Apply",
        "/f:spec/f:replicas"
    ));
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let mut live = stored(deployment(3, "a"));
    record_update(None, &mut live, &DEPLOYMENT, &who("kubectl-edit", "T1"));
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(2);
    let sub = ManagerInfo {
        subresource: Some("scale"),
        ..who("kubectl", "T2")
    };
    record_update(Some(&live), &mut scaled, &DEPLOYMENT, &sub);
    let err = apply(
        Some(&scaled),
        &deployment(9, "b"),
        &DEPLOYMENT,
        &who("ci", "T3"),
        false,
    )
    .expect_err("conflicts");
    assert_eq!(
        err.message(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl\" with subresource \"scale\" using apps/v1:\n\
         - .spec.replicas\n\
         conflicts with \"kubectl-edit\" using apps/v1:\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let list = conflicts(err);
    assert_eq!(
        list[1].field,
        ".spec.template.spec.containers[name=\"nginx\"].image"
    );
    assert_eq!(list[1].api_version, "apps/v1");
}

#[test]
fn status_is_ignored_on_the_main_resource() {
    let mut live = stored(deployment(3, "a"));
    live["status"] = json!({"replicas": 1});
    record_update(None, &mut live, &DEPLOYMENT, &who("kubectl-create", "T1"));
    assert!(!owns(&live, "kubectl-create", "Update", "/f:status"));

    let mut cfg = deployment(3, "a");
    cfg["status"] = json!({"replicas": 42});
    let out = apply(Some(&live), &cfg, &DEPLOYMENT, &who("kubectl", "T2"), false).expect("applies");
    assert_eq!(out["status"]["replicas"], 1);
    assert!(!owns(&out, "kubectl", "Apply", "/f:status"));

    let ctrl = ManagerInfo {
        subresource: Some("status"),
        ..who("controller", "T3")
    };
    let mut next = out.clone();
    next["status"]["replicas"] = json!(3);
    record_update(Some(&out), &mut next, &DEPLOYMENT, &ctrl);
    let e = entry(&next, "controller", "Update");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn live_object_without_managed_fields_belongs_to_before_first_apply() {
    let live = stored(deployment(3, "a"));
    let err = apply(
        Some(&live),
        &deployment(5, "a"),
        &DEPLOYMENT,
        &who("kubectl", "T1"),
        false,
    )
    .expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn fields_of_other_managers_survive_and_lists_merge_by_key() {
    let live = stored(
        apply(
            None,
            &deployment(3, "a"),
            &DEPLOYMENT,
            &who("kubectl", "T1"),
            false,
        )
        .expect("create"),
    );
    // An injector adds a container and an env var to nginx.
    let mut injected = live.clone();
    let containers = injected["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("array");
    containers[0]["env"] = json!([{"name": "MODE", "value": "x"}]);
    containers.push(json!({"name": "proxy", "image": "envoy"}));
    record_update(
        Some(&live),
        &mut injected,
        &DEPLOYMENT,
        &who("injector", "T2"),
    );
    assert!(owns(
        &injected,
        "injector",
        "Update",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"proxy\"}/."
    ));
    assert!(owns(&injected, "injector", "Update",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"nginx\"}/f:env/k:{\"name\":\"MODE\"}/f:value"));

    let out = apply(
        Some(&injected),
        &deployment(3, "b"),
        &DEPLOYMENT,
        &who("kubectl", "T3"),
        false,
    )
    .expect("applies");
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("array");
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "b");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "x"}])
    );
    assert_eq!(containers[1]["name"], "proxy");
}

#[test]
fn update_removing_a_field_takes_it_from_its_owner() {
    let live = stored(
        apply(
            None,
            &deployment(3, "a"),
            &DEPLOYMENT,
            &who("kubectl", "T1"),
            false,
        )
        .expect("create"),
    );
    let mut edited = live.clone();
    edited["metadata"]["labels"]
        .as_object_mut()
        .expect("object")
        .shift_remove("app");
    edited["metadata"]["finalizers"] = json!(["x/y"]);
    record_update(
        Some(&live),
        &mut edited,
        &DEPLOYMENT,
        &who("kubectl-edit", "T2"),
    );
    assert!(!owns(&edited, "kubectl", "Apply", "/f:metadata/f:labels"));
    assert!(owns(
        &edited,
        "kubectl-edit",
        "Update",
        "/f:metadata/f:finalizers/v:\"x~1y\""
    ));
}

#[test]
fn invalid_configurations_are_rejected() {
    let mut cfg = deployment(1, "a");
    cfg["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &cfg, &DEPLOYMENT, &who("kubectl", "T1"), false).expect_err("invalid");
    assert_eq!(err.message(), "metadata.managedFields must be nil");

    let mut dup = deployment(1, "a");
    dup["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]);
    let err = apply(None, &dup, &DEPLOYMENT, &who("kubectl", "T1"), false).expect_err("invalid");
    assert_eq!(err.message(), "duplicate entries for key [name=\"a\"]");
    assert_eq!(err.causes(), json!([]));
}

fn real(group: &str, kind: &str) -> &'static Message {
    crate::schema::kind_message(group, "v1", kind).expect("kind in the generated schema")
}

#[test]
fn real_deployment_schema_owns_containers_by_name_and_selector_atomically() {
    let root = real("apps", "Deployment");
    let mut cfg = deployment(2, "nginx:1.25");
    cfg["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    let out = apply(None, &cfg, root, &who("kubectl", "T1"), false).expect("applies");
    assert_eq!(
        entry(&out, "kubectl", "Apply")["fieldsV1"]["f:spec"],
        json!({
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    ".": {},
                    "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {},
                        "f:containerPort": {}
                    }}
                }}}
            }
        })
    );

    // A second manager changing the image of that container conflicts on the element path.
    let live = stored(out);
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}});
    let err = apply(Some(&live), &patch, root, &who("ci", "T2"), false).expect_err("conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": \
         .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn real_service_schema_keys_ports_by_port_and_protocol() {
    let root = real("", "Service");
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    let out = apply(None, &cfg, root, &who("kubectl", "T1"), false).expect("applies");
    assert_eq!(
        entry(&out, "kubectl", "Apply")["fieldsV1"],
        json!({"f:spec": {
            "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
                ".": {}, "f:port": {}, "f:targetPort": {}
            }},
            "f:selector": {}
        }})
    );
    // Adding a port keeps the first one; dropping it later removes it from the object.
    let live = stored(out);
    let mut two = cfg.clone();
    two["spec"]["ports"] =
        json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]);
    let live2 =
        stored(apply(Some(&live), &two, root, &who("kubectl", "T2"), false).expect("applies"));
    assert_eq!(live2["spec"]["ports"].as_array().map(Vec::len), Some(2));
    let mut only443 = cfg;
    only443["spec"]["ports"] = json!([{"port": 443, "targetPort": 8443}]);
    let out = apply(Some(&live2), &only443, root, &who("kubectl", "T3"), false).expect("applies");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 443, "targetPort": 8443}])
    );
}

#[test]
fn unstructured_objects_are_tracked_field_by_field() {
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 3, "tags": ["a", "b"], "nested": {"x": 1}}});
    let live =
        stored(apply(None, &cfg, &UNSTRUCTURED, &who("kubectl", "T1"), false).expect("create"));
    assert_eq!(
        entry(&live, "kubectl", "Apply")["fieldsV1"],
        json!({"f:spec": {"f:nested": {"f:x": {}}, "f:size": {}, "f:tags": {}}})
    );
    let mut next = cfg.clone();
    next["spec"]
        .as_object_mut()
        .expect("object")
        .shift_remove("nested");
    let out = apply(
        Some(&live),
        &next,
        &UNSTRUCTURED,
        &who("kubectl", "T2"),
        false,
    )
    .expect("applies");
    assert!(out["spec"].get("nested").is_none());
    assert_eq!(out["spec"]["tags"], json!(["a", "b"]));
}
