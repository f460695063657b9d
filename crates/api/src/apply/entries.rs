//! `metadata.managedFields` entries: decoding, lookup by manager identity, and writing them
//! back in Kubernetes' order. An entry is identified by (manager, operation, subresource);
//! an entry whose set became empty is dropped when written.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;
use super::ManagerInfo;

/// One managedFields entry, decoded.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) manager: String,
    pub(super) operation: String,
    pub(super) api_version: String,
    pub(super) time: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) set: FieldSet,
}

/// Decodes `metadata.managedFields`; entries that cannot be decoded are dropped.
pub(super) fn decode_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
    list.iter()
        .filter_map(|e| {
            let set = match e.get("fieldsV1") {
                Some(v) => FieldSet::from_fields_v1(v).ok()?,
                None => FieldSet::default(),
            };
            Some(Entry {
                manager: text(e, "manager").unwrap_or_default(),
                operation: text(e, "operation")?,
                api_version: text(e, "apiVersion").unwrap_or_default(),
                time: text(e, "time"),
                subresource: text(e, "subresource").filter(|s| !s.is_empty()),
                set,
            })
        })
        .collect()
}

pub(super) fn find_entry(
    entries: &[Entry],
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
) -> Option<usize> {
    entries.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource.as_deref() == subresource
    })
}

/// Stores `who`'s new set; the time moves only when something changed.
pub(super) fn upsert_entry(
    entries: &mut Vec<Entry>,
    me: Option<usize>,
    operation: &str,
    who: &ManagerInfo,
    set: FieldSet,
    object_changed: bool,
) {
    match me {
        Some(i) => {
            let e = &mut entries[i];
            if object_changed || e.set != set || e.api_version != who.api_version {
                e.time = Some(who.time.to_owned());
            }
            e.api_version = who.api_version.to_owned();
            e.set = set;
        }
        None => entries.push(Entry {
            manager: who.manager.to_owned(),
            operation: operation.to_owned(),
            api_version: who.api_version.to_owned(),
            time: Some(who.time.to_owned()),
            subresource: who.subresource.map(str::to_owned),
            set,
        }),
    }
}

/// Writes the entries back in Kubernetes' order (operation, time, manager, apiVersion,
/// subresource), dropping managers that own nothing any more.
pub(super) fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
        return;
    }
    let list = entries
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), Value::String(e.manager));
            m.insert("operation".into(), Value::String(e.operation));
            m.insert("apiVersion".into(), Value::String(e.api_version));
            if let Some(t) = e.time {
                m.insert("time".into(), Value::String(t));
            }
            m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            m.insert("fieldsV1".into(), e.set.to_fields_v1());
            if let Some(s) = e.subresource {
                m.insert("subresource".into(), Value::String(s));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}
