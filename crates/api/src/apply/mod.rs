//! Server-side apply and `metadata.managedFields` bookkeeping (KEP-555), reimplemented on
//! `serde_json::Value` after `sigs.k8s.io/structured-merge-diff`.
//!
//! [`apply`] handles `PATCH` with `application/apply-patch+yaml`; [`record_update`] runs after
//! every other write so that ownership follows changes. Both strip the fields the API server
//! owns (name, uid, resourceVersion, managedFields, …) from every set and ignore `status` on
//! the main resource (and everything but `status` on the status subresource), as Kubernetes'
//! reset strategies do. Before editing: the walks in `walk` must type a position the same way,
//! or computed sets stop lining up with objects.

mod entries;
mod fieldset;
mod walk;

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::schema::Message;
use entries::{decode_entries, find_entry, upsert_entry, write_entries, Entry};
use fieldset::{path_string, FieldSet, Pe};
use walk::{compare, merge, prune, to_set, Diff, Ty};

/// A root for objects without a schema (custom resources): objects are tracked field by
/// field, lists as a whole.
pub static UNSTRUCTURED: Message = Message {
    name: "",
    fields: &[],
};

/// Who is writing, as recorded in a managedFields entry.
#[derive(Debug, Clone, Copy)]
pub struct ManagerInfo<'a> {
    /// `fieldManager` query parameter, or the default derived from the user agent.
    pub manager: &'a str,
    /// `group/version` of the request, e.g. `apps/v1`.
    pub api_version: &'a str,
    /// The current time, RFC 3339 (this crate reads no clock).
    pub time: &'a str,
    /// `status`, `scale`, … or `None` for the main resource.
    pub subresource: Option<&'a str>,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers (HTTP 409).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be applied (HTTP 422 / 400).
    #[error("{0}")]
    Invalid(String),
}

/// One field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    /// The path as Kubernetes prints it, e.g. `.spec.replicas`.
    pub field: String,
    /// `Apply` or `Update`: only `Update` managers are printed with their apiVersion.
    pub operation: String,
    pub subresource: Option<String>,
}

impl ApplyError {
    /// The `Status.message` Kubernetes returns, e.g. `Apply failed with 1 conflict: conflict
    /// with "kubectl" using apps/v1: .spec.replicas` (the capital "A" is on the wire).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// `Status.details.causes`: one `FieldManagerConflict` per conflicting field.
    pub fn causes(&self) -> Value {
        match self {
            ApplyError::Conflicts(list) => Value::Array(
                list.iter()
                    .map(|c| {
                        json!({
                            "type": "FieldManagerConflict",
                            "message": format!("conflict with {}", describe(c)),
                            "field": c.field,
                        })
                    })
                    .collect(),
            ),
            ApplyError::Invalid(_) => Value::Array(Vec::new()),
        }
    }
}

/// Server-side apply: merges `config` into `live` (or creates it when `live` is `None`),
/// makes `who` the owner of every field in `config` and removes fields `who` applied before
/// but no longer sets, unless another manager owns them. Changing a field another manager
/// owns is a conflict unless `force`, which moves the ownership instead.
///
/// Server-populated metadata (uid, resourceVersion, creationTimestamp, generation) is taken
/// from `live`, never from `config`; the caller still sets it for new objects.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    root: &'static Message,
    who: &ManagerInfo,
    force: bool,
) -> Result<Value, ApplyError> {
    let ty = Ty::Struct(root);
    let config_map = config
        .as_object()
        .ok_or_else(|| ApplyError::Invalid("apply configuration must be an object".into()))?;
    if let Some(mf) = config.pointer("/metadata/managedFields") {
        if !mf.is_null() {
            return Err(ApplyError::Invalid(
                "metadata.managedFields must be nil".into(),
            ));
        }
    }
    let live_obj = live.map(without_managed_fields);
    let mut entries = match live {
        Some(l) => decode_entries(l),
        None => Vec::new(),
    };
    if let (Some(l), true) = (&live_obj, entries.is_empty()) {
        // Objects that predate field tracking: everything already there belongs to a
        // placeholder manager, so the first apply cannot silently take it over.
        let mut set = FieldSet::default();
        to_set(l, ty, &mut Vec::new(), &mut set);
        filter(&mut set, who.subresource);
        if !set.is_empty() {
            entries.push(Entry {
                manager: "before-first-apply".into(),
                operation: "Update".into(),
                api_version: who.api_version.into(),
                time: None,
                subresource: None,
                set,
            });
        }
    }

    // Only the part of the configuration this endpoint may write takes part.
    let mut cfg = config_map.clone();
    cfg.shift_remove("status");
    let cfg = match who.subresource {
        Some("status") => {
            let mut only = Map::new();
            if let Some(s) = config_map.get("status") {
                only.insert("status".into(), s.clone());
            }
            Value::Object(only)
        }
        _ => Value::Object(cfg),
    };
    if who.subresource == Some("status") && live.is_none() {
        return Err(ApplyError::Invalid(
            "cannot apply the status of an object that does not exist".into(),
        ));
    }
    let mut merged = merge(live_obj.as_ref(), &cfg, ty).map_err(ApplyError::Invalid)?;
    restore_server_fields(&mut merged, live_obj.as_ref());

    let mut config_set = FieldSet::default();
    to_set(&cfg, ty, &mut Vec::new(), &mut config_set);
    filter(&mut config_set, who.subresource);

    let me = find_entry(&entries, who.manager, "Apply", who.subresource);
    let last_set = me.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut others = FieldSet::default();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            others.union_with(&e.set);
        }
    }
    let abandoned = last_set.difference(&config_set);
    prune(&mut merged, &abandoned, Some(&others), ty);

    let empty = Value::Object(Map::new());
    let diff = diff_of(live_obj.as_ref().unwrap_or(&empty), &merged, ty, who);
    let changed = diff.modified.clone().union_of(&diff.added);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == me {
            continue;
        }
        let clash = e.set.intersection(&changed);
        for path in clash.paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                api_version: e.api_version.clone(),
                field: path_string(&path),
                operation: e.operation.clone(),
                subresource: e.subresource.clone(),
            });
        }
        e.set = e.set.difference(&clash).difference(&diff.removed);
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| {
            (&a.manager, &a.operation, &a.api_version, &a.subresource).cmp(&(
                &b.manager,
                &b.operation,
                &b.api_version,
                &b.subresource,
            ))
        });
        return Err(ApplyError::Conflicts(conflicts));
    }

    let object_changed = live_obj.as_ref() != Some(&merged);
    upsert_entry(&mut entries, me, "Apply", who, config_set, object_changed);
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// After a create, update or non-apply patch by `who`: gives `who` the fields it changed,
/// takes them from every other manager and drops fields that disappeared from every set.
/// `new` gets its `metadata.managedFields` rewritten in place.
///
/// Entries come from `new` when the client sent a non-empty `managedFields` to the main
/// resource (so clients can edit them), otherwise from `old`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    root: &'static Message,
    who: &ManagerInfo,
) {
    let ty = Ty::Struct(root);
    // Writes through a subresource cannot edit managedFields (as in Kubernetes).
    let mut entries = match who.subresource {
        None => decode_entries(new),
        Some(_) => Vec::new(),
    };
    if entries.is_empty() {
        entries = old.map(decode_entries).unwrap_or_default();
    }
    let empty = Value::Object(Map::new());
    let old_obj = old.map(without_managed_fields).unwrap_or(empty);
    let new_obj = without_managed_fields(new);
    let diff = diff_of(&old_obj, &new_obj, ty, who);
    let changed = diff.modified.clone().union_of(&diff.added);

    let me = find_entry(&entries, who.manager, "Update", who.subresource);
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.set = e.set.difference(&changed).difference(&diff.removed);
        }
    }
    let mut mine = me.map(|i| entries[i].set.clone()).unwrap_or_default();
    mine.union_with(&changed);
    let mine = mine.difference(&diff.removed);
    upsert_entry(&mut entries, me, "Update", who, mine, old_obj != new_obj);
    write_entries(new, entries);
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            describe(c),
            c.field
        );
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for c in conflicts {
        let who = describe(c);
        match groups.iter_mut().find(|(w, _)| *w == who) {
            Some((_, fields)) => fields.push(&c.field),
            None => groups.push((who, vec![&c.field])),
        }
    }
    let mut lines = Vec::new();
    for (who, fields) in groups {
        lines.push(format!("conflicts with {who}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// `"kubectl"`, `"kube-controller-manager" with subresource "status" using apps/v1`.
fn describe(c: &Conflict) -> String {
    let mut s = quote(&c.manager);
    if let Some(sub) = &c.subresource {
        let _ = write!(s, " with subresource {}", quote(sub));
    }
    if c.operation == "Update" {
        let _ = write!(s, " using {}", c.api_version);
    }
    s
}

fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// The changes between two objects that count for ownership through this endpoint.
fn diff_of(old: &Value, new: &Value, ty: Ty, who: &ManagerInfo) -> Diff {
    let mut d = Diff::default();
    compare(Some(old), Some(new), ty, &mut Vec::new(), &mut d);
    for set in [&mut d.added, &mut d.modified, &mut d.removed] {
        filter(set, who.subresource);
    }
    d
}

/// Removes paths nobody owns through field management: server-populated metadata, and
/// `status` (main resource) or everything but `status` (status subresource).
fn filter(set: &mut FieldSet, subresource: Option<&str>) {
    set.owned = false;
    for top in ["apiVersion", "kind"] {
        set.children.remove(&Pe::Field(top.into()));
    }
    if let Some(meta) = set.children.get_mut(&Pe::Field("metadata".into())) {
        meta.owned = false;
        for f in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            meta.children.remove(&Pe::Field(f.into()));
        }
    }
    match subresource {
        None => {
            set.children.remove(&Pe::Field("status".into()));
        }
        Some("status") => set
            .children
            .retain(|pe, _| *pe == Pe::Field("status".into())),
        Some(_) => {}
    }
    set.normalise();
}

/// Server-populated metadata never comes from a configuration.
fn restore_server_fields(merged: &mut Value, live: Option<&Value>) {
    const SERVER_META: [&str; 5] = [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
    ];
    let Some(obj) = merged.as_object_mut() else {
        return;
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_META {
            match live.and_then(|l| l.get("metadata")).and_then(|m| m.get(f)) {
                Some(v) => {
                    meta.insert(f.into(), v.clone());
                }
                None => {
                    meta.shift_remove(f);
                }
            }
        }
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    copy
}

#[cfg(test)]
mod tests;
