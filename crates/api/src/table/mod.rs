//! `meta.k8s.io/v1` Table responses: what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. Columns and cells follow
//! kube-apiserver's printers (pkg/printers/internalversion) for every registered kind.
//! The one thing to know: like kube-apiserver, rows always carry every column, the
//! `-o wide` ones (priority 1) included; `kubectl` hides those itself. Cells therefore line
//! up one-to-one with [`column_definitions`], and a column's declared `type` is copied from
//! upstream even where upstream then emits a number into a `string` column.

mod cluster;
mod events;
mod network;
mod pods;
mod workloads;

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;
use crate::selector::LabelSelector;

/// Which form of each object a row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter (`None`, `Metadata`, `Object`); empty means
    /// the default. Unknown values are `None` so the caller can reject them.
    pub fn parse(s: &str) -> Option<IncludeObject> {
        match s {
            "None" => Some(IncludeObject::None),
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// How to render a table. `now_unix` drives every AGE and duration cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    pub include_object: IncludeObject,
    pub now_unix: i64,
}

/// A `meta.k8s.io/v1` Table for objects of one resource. `list_meta` becomes the table's
/// `metadata` (`resourceVersion`, `continue`, `remainingItemCount`).
pub fn table(rt: &ResourceType, objects: &[Value], list_meta: Value, opts: &TableOptions) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(rt),
        "rows": rows(rt, objects, opts),
    })
}

/// The column definitions alone (for watch streams, sent with the first event only).
pub fn column_definitions(rt: &ResourceType) -> Value {
    let columns = printer(rt).columns;
    Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.ty,
                    "format": c.format,
                    "description": c.describe(),
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// The rows for these objects, as a JSON array of `TableRow`.
pub fn rows(rt: &ResourceType, objects: &[Value], opts: &TableOptions) -> Value {
    let printer = printer(rt);
    Value::Array(
        objects
            .iter()
            .map(|obj| {
                let printed = (printer.print)(obj, opts.now_unix);
                let mut row = Map::new();
                row.insert("cells".into(), Value::Array(printed.cells));
                if !printed.conditions.is_empty() {
                    row.insert("conditions".into(), Value::Array(printed.conditions));
                }
                row.insert("object".into(), row_object(obj, opts.include_object));
                Value::Object(row)
            })
            .collect(),
    )
}

/// One column of a table, as `TableColumnDefinition`.
pub(crate) struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

/// The cells (and `TableRowCondition`s) of one row.
struct Printed {
    cells: Vec<Value>,
    conditions: Vec<Value>,
}

impl Printed {
    fn cells(cells: Vec<Value>) -> Printed {
        Printed {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// Renders one object's row at a given "now".
type PrintFn = fn(&Value, i64) -> Printed;

struct Printer {
    columns: &'static [Column],
    print: PrintFn,
}

fn printer(rt: &ResourceType) -> Printer {
    let (columns, print): (&'static [Column], PrintFn) = match (rt.group, rt.kind) {
        ("", "Pod") => (pods::POD_COLUMNS, pods::pod),
        ("apps", "Deployment") => (workloads::DEPLOYMENT_COLUMNS, workloads::deployment),
        ("apps", "ReplicaSet") => (workloads::REPLICASET_COLUMNS, workloads::replicaset),
        ("apps", "DaemonSet") => (workloads::DAEMONSET_COLUMNS, workloads::daemonset),
        ("apps", "StatefulSet") => (workloads::STATEFULSET_COLUMNS, workloads::statefulset),
        ("batch", "Job") => (workloads::JOB_COLUMNS, workloads::job),
        ("", "Service") => (network::SERVICE_COLUMNS, network::service),
        ("", "Node") => (cluster::NODE_COLUMNS, cluster::node),
        ("", "Namespace") => (cluster::NAMESPACE_COLUMNS, cluster::namespace),
        ("", "ConfigMap") => (cluster::CONFIGMAP_COLUMNS, cluster::configmap),
        ("", "Secret") => (cluster::SECRET_COLUMNS, cluster::secret),
        ("", "ServiceAccount") => (cluster::SERVICEACCOUNT_COLUMNS, cluster::serviceaccount),
        ("", "Endpoints") => (network::ENDPOINTS_COLUMNS, network::endpoints),
        ("discovery.k8s.io", "EndpointSlice") => {
            (network::ENDPOINTSLICE_COLUMNS, network::endpointslice)
        }
        ("", "Event") => (events::EVENT_COLUMNS, events::core_event),
        ("events.k8s.io", "Event") => (events::EVENT_COLUMNS, events::events_api_event),
        ("coordination.k8s.io", "Lease") => (cluster::LEASE_COLUMNS, cluster::lease),
        _ => (DEFAULT_COLUMNS, default_row),
    };
    Printer { columns, print }
}

/// `metav1.ObjectMeta`'s documentation of `name`, used by every Name column.
const NAME_DESC: &str = "Unique name of the object within its namespace.";

/// `metav1.ObjectMeta`'s documentation of `creationTimestamp`, used by every Age column.
const AGE_DESC: &str = "Time since the object was created, from metadata.creationTimestamp.";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: NAME_DESC,
};

const AGE: Column = Column {
    name: "Age",
    ty: "string",
    format: "",
    priority: 0,
    description: AGE_DESC,
};

impl Column {
    /// The description, or a generic one naming the column when none is given.
    fn describe(&self) -> String {
        if self.description.is_empty() {
            format!("The {} column of kubectl get.", self.name.to_lowercase())
        } else {
            self.description.to_string()
        }
    }
}

/// A plain column (no format) at priority 0, or 1 for `-o wide`; an empty description
/// becomes a generic one when rendered.
const fn col(
    name: &'static str,
    ty: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority,
        description,
    }
}

const DEFAULT_COLUMNS: &[Column] = &[NAME, AGE];

fn default_row(obj: &Value, now: i64) -> Printed {
    Printed::cells(vec![name(obj).into(), age(obj, now).into()])
}

fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

// Field access helpers shared by the printers. Absent fields read as Go's zero values.

fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn array_at<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn len_at(obj: &Value, ptr: &str) -> i64 {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

fn age(obj: &Value, now: i64) -> String {
    since(str_at(obj, "/metadata/creationTimestamp"), now)
}

/// Upstream's `translateTimestampSince`: `<unknown>` for a zero (absent) time.
fn since(timestamp: &str, now: i64) -> String {
    let ts = (!timestamp.is_empty()).then_some(timestamp);
    crate::time::age(ts, now)
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by `,`, or `<none>`.
fn format_labels(map: Option<&Value>) -> String {
    let Some(Value::Object(m)) = map else {
        return "<none>".to_string();
    };
    if m.is_empty() {
        return "<none>".to_string();
    }
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `metav1.FormatLabelSelector`: the canonical selector string, `<none>` when it selects
/// everything or nothing, `<error>` when it is invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match LabelSelector::from_json(sel.unwrap_or(&Value::Null)) {
        Ok(s) => {
            let text = s.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

/// Container names and images of a pod template, each joined by `,`.
fn container_cells(spec: &Value) -> (String, String) {
    let containers = array_at(spec, "/containers");
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{by_kind, RESOURCES};

    pub(super) fn opts(now: i64) -> TableOptions {
        TableOptions {
            include_object: IncludeObject::Metadata,
            now_unix: now,
        }
    }

    /// 2024-05-01T12:00:00Z
    pub(super) const T0: i64 = 1_714_564_800;

    #[test]
    fn every_registered_kind_has_cells_matching_its_columns() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:00Z"}});
        for rt in RESOURCES {
            let cols = column_definitions(rt);
            let cols = cols.as_array().expect("columns are an array");
            let rows = rows(rt, std::slice::from_ref(&obj), &opts(T0 + 60));
            let cells = rows[0]["cells"].as_array().expect("cells are an array");
            assert_eq!(cols.len(), cells.len(), "{}", rt.kind);
            let name_col = cols
                .iter()
                .position(|c| c["name"] == "Name")
                .expect("every table has a Name column");
            assert_eq!(cols[name_col]["format"], "name", "{}", rt.kind);
            assert_eq!(cells[name_col], "x", "{}", rt.kind);
        }
    }

    #[test]
    fn table_envelope_and_partial_metadata_rows() {
        let rt = by_kind("", "v1", "ConfigMap").expect("registered");
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": "2024-05-01T12:00:00Z"},
            "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}
        });
        let t = table(
            rt,
            std::slice::from_ref(&cm),
            json!({"resourceVersion": "7"}),
            &opts(T0 + 3 * 3600),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("column name"))
            .collect();
        assert_eq!(names, ["Name", "Data", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["cfg", 3, "3h"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "cfg");
        assert!(t["rows"][0]["object"].get("data").is_none());

        let full = rows(
            rt,
            std::slice::from_ref(&cm),
            &TableOptions {
                include_object: IncludeObject::Object,
                now_unix: T0,
            },
        );
        assert_eq!(full[0]["object"], cm);
        let none = rows(
            rt,
            &[cm],
            &TableOptions {
                include_object: IncludeObject::None,
                now_unix: T0,
            },
        );
        assert_eq!(none[0]["object"], Value::Null);
    }

    #[test]
    fn include_object_parses_query_values() {
        assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("everything"), None);
    }

    #[test]
    fn missing_creation_timestamp_ages_as_unknown() {
        let rt = by_kind("coordination.k8s.io", "v1", "Lease").expect("registered");
        let r = rows(rt, &[json!({"metadata": {"name": "l"}})], &opts(T0));
        assert_eq!(r[0]["cells"], json!(["l", "", "<unknown>"]));
    }

    #[test]
    fn column_definition_shape() {
        let rt = by_kind("", "v1", "Namespace").expect("registered");
        let cols = column_definitions(rt);
        assert_eq!(cols[0]["name"], "Name");
        assert_eq!(cols[0]["type"], "string");
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[0]["priority"], 0);
        assert!(cols[0]["description"]
            .as_str()
            .expect("description")
            .starts_with("Unique name"));
        assert_eq!(cols[1]["name"], "Status");
        assert_eq!(cols[1]["format"], "");
    }

    #[test]
    fn label_helpers_format_like_kubectl() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(
            format_label_selector(Some(&json!({"matchLabels": {"app": "web"}}))),
            "app=web"
        );
        assert_eq!(
            format_label_selector(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
            )),
            "<error>"
        );
    }
}
