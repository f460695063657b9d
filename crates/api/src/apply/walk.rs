//! Schema-aware walks over objects: the field set of a value, the apply merge, the diff of two
//! objects and pruning of abandoned fields.
//!
//! Every walk must agree on how a position is typed ([`Ty`]) and how list elements are named
//! ([`item_pe`]); otherwise sets computed by one walk will not line up with objects edited by
//! another. Unknown messages and unknown fields are "deduced" the way structured-merge-diff
//! treats untyped data: objects are granular, lists are atomic.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Pe};
use crate::schema::{self, Field, Message, Scalar, Shape, Type};

/// How one position of an object is tracked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// A message: each field tracked separately.
    Struct(&'static Message),
    /// Untyped JSON: objects granular, everything else atomic.
    Deduced,
    /// A scalar or an atomic struct: owned as a whole.
    Leaf,
    /// A repeated field.
    List(&'static Field),
    /// A `map<string, T>` field: each entry tracked separately.
    Map(&'static Field),
}

/// How the elements of a list are identified.
#[derive(Debug, Clone, Copy)]
enum ListKind {
    Atomic,
    Set,
    Assoc(&'static [&'static str]),
}

/// Messages Kubernetes declares `+structType=atomic`: replaced and owned as a whole.
const ATOMIC_STRUCTS: &[&str] = &[
    "k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "k8s.io.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "k8s.io.api.core.v1.ConfigMapKeySelector",
    "k8s.io.api.core.v1.LocalObjectReference",
    "k8s.io.api.core.v1.NodeSelector",
    "k8s.io.api.core.v1.NodeSelectorTerm",
    "k8s.io.api.core.v1.ObjectFieldSelector",
    "k8s.io.api.core.v1.ObjectReference",
    "k8s.io.api.core.v1.ResourceFieldSelector",
    "k8s.io.api.core.v1.SecretKeySelector",
    "k8s.io.api.core.v1.SecretReference",
    "k8s.io.api.core.v1.TopologySelectorTerm",
    "k8s.io.api.core.v1.TypedLocalObjectReference",
];

/// Map fields Kubernetes declares `+mapType=atomic`, as (message, field).
const ATOMIC_MAPS: &[(&str, &str)] = &[
    ("k8s.io.api.core.v1.PodSpec", "nodeSelector"),
    ("k8s.io.api.core.v1.ReplicationControllerSpec", "selector"),
    ("k8s.io.api.core.v1.ServiceSpec", "selector"),
];

/// Defaults of list-map key fields that clients may omit (Kubernetes' OpenAPI declares
/// `protocol` defaulting to `TCP` on every port list keyed by it).
const KEY_DEFAULTS: &[(&str, &str)] = &[("protocol", "TCP")];

/// The differences between two objects, as sets of paths.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

/// Inserts every path `v` sets into `out` (leaves, atomic values, list elements, empty maps).
pub(crate) fn to_set(v: &Value, ty: Ty, path: &mut Vec<Pe>, out: &mut FieldSet) {
    match (ty, v) {
        (Ty::Struct(_) | Ty::Map(_) | Ty::Deduced, Value::Object(map)) if !map.is_empty() => {
            for (k, child) in map {
                if child.is_null() {
                    continue;
                }
                path.push(Pe::Field(k.clone()));
                to_set(child, child_ty(ty, k), path, out);
                path.pop();
            }
        }
        (Ty::List(f), Value::Array(items)) if !items.is_empty() && granular_list(f) => {
            let kind = list_kind(f);
            for (i, item) in items.iter().enumerate() {
                path.push(item_pe(kind, item, i));
                out.insert(path);
                if let ListKind::Assoc(_) = kind {
                    to_set(item, value_ty(f), path, out);
                }
                path.pop();
            }
        }
        _ => out.insert(path),
    }
}

/// Merges an apply configuration into the live object: granular parts merge, atomic parts
/// are replaced, `null` in the configuration removes the field.
pub(crate) fn merge(live: Option<&Value>, cfg: &Value, ty: Ty) -> Result<Value, String> {
    match (ty, cfg) {
        (Ty::Struct(_) | Ty::Map(_) | Ty::Deduced, Value::Object(c)) => {
            let empty = Map::new();
            let l = live.and_then(Value::as_object).unwrap_or(&empty);
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.shift_remove(k);
                    continue;
                }
                let merged = merge(l.get(k), cv, child_ty(ty, k))?;
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Ty::List(f), Value::Array(c)) if granular_list(f) => {
            let l = live
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            merge_list(l, c, f).map(Value::Array)
        }
        _ => Ok(cfg.clone()),
    }
}

/// Records in `d` what changed between `old` and `new` under `path`.
pub(crate) fn compare(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty,
    path: &mut Vec<Pe>,
    d: &mut Diff,
) {
    let old = old.filter(|v| !v.is_null());
    let new = new.filter(|v| !v.is_null());
    if old.is_none() && new.is_none() {
        return;
    }
    if !is_granular(ty, old, new) {
        match (old, new) {
            (None, Some(_)) => d.added.insert(path),
            (Some(_), None) => d.removed.insert(path),
            (Some(a), Some(b)) if a != b => d.modified.insert(path),
            _ => {}
        }
        return;
    }
    // The container itself appears or disappears. Top-level fields (metadata, spec, status)
    // always exist on Kubernetes' typed objects, so they are never owned as such.
    if path.len() > 1 {
        match (old, new) {
            (None, Some(_)) => d.added.insert(path),
            (Some(_), None) => d.removed.insert(path),
            _ => {}
        }
    }
    match ty {
        Ty::List(f) => {
            let kind = list_kind(f);
            let index = |v: Option<&Value>| -> Vec<(Pe, Value)> {
                v.and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .enumerate()
                            .map(|(i, item)| (item_pe(kind, item, i), item.clone()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (o, n) = (index(old), index(new));
            let find = |items: &[(Pe, Value)], pe: &Pe| {
                items.iter().find(|(p, _)| p == pe).map(|(_, v)| v.clone())
            };
            let mut seen: Vec<Pe> = Vec::new();
            for (pe, _) in o.iter().chain(n.iter()) {
                if seen.contains(pe) {
                    continue;
                }
                seen.push(pe.clone());
                let (ov, nv) = (find(&o, pe), find(&n, pe));
                path.push(pe.clone());
                if let ListKind::Assoc(_) = kind {
                    compare_item(ov.as_ref(), nv.as_ref(), value_ty(f), path, d);
                } else {
                    match (ov, nv) {
                        (None, Some(_)) => d.added.insert(path),
                        (Some(_), None) => d.removed.insert(path),
                        _ => {}
                    }
                }
                path.pop();
            }
        }
        _ => {
            let empty = Map::new();
            let o = old.and_then(Value::as_object).unwrap_or(&empty);
            let n = new.and_then(Value::as_object).unwrap_or(&empty);
            let keys = o.keys().chain(n.keys().filter(|k| !o.contains_key(*k)));
            for k in keys {
                path.push(Pe::Field(k.clone()));
                compare(o.get(k), n.get(k), child_ty(ty, k), path, d);
                path.pop();
            }
        }
    }
}

/// Removes from `obj` every member of `remove` that no path in `keep` (the other managers)
/// reaches; containers emptied by the removal go too.
pub(crate) fn prune(obj: &mut Value, remove: &FieldSet, keep: Option<&FieldSet>, ty: Ty) {
    match obj {
        Value::Object(map) => {
            for (pe, sub) in &remove.children {
                let Pe::Field(name) = pe else { continue };
                let kept = keep.and_then(|k| k.child(pe));
                if sub.owned && kept.is_none_or(FieldSet::is_empty) {
                    map.shift_remove(name);
                } else if let Some(child) = map.get_mut(name) {
                    let was_empty = is_empty_container(child);
                    prune(child, sub, kept, child_ty(ty, name));
                    if !was_empty && is_empty_container(child) && !kept.is_some_and(|k| k.owned) {
                        map.shift_remove(name);
                    }
                }
            }
        }
        Value::Array(items) => {
            let Ty::List(f) = ty else { return };
            let kind = list_kind(f);
            for (pe, sub) in &remove.children {
                let Some(i) = items
                    .iter()
                    .enumerate()
                    .position(|(i, item)| item_pe(kind, item, i) == *pe)
                else {
                    continue;
                };
                let kept = keep.and_then(|k| k.child(pe));
                if sub.owned && kept.is_none_or(FieldSet::is_empty) {
                    items.remove(i);
                } else {
                    prune(&mut items[i], sub, kept, value_ty(f));
                }
            }
        }
        _ => {}
    }
}

/// The type of the field of a message, or of any object's member.
pub(crate) fn child_ty(ty: Ty, key: &str) -> Ty {
    match ty {
        Ty::Struct(m) => match m.field(key) {
            Some(f) if ATOMIC_MAPS.contains(&(m.name, f.json)) => Ty::Leaf,
            Some(f) => field_ty(f),
            None => Ty::Deduced,
        },
        Ty::Map(f) => value_ty(f),
        Ty::Deduced => Ty::Deduced,
        Ty::Leaf | Ty::List(_) => Ty::Leaf,
    }
}

fn field_ty(f: &'static Field) -> Ty {
    match f.shape {
        Shape::Single => value_ty(f),
        Shape::List => Ty::List(f),
        Shape::Map => Ty::Map(f),
    }
}

/// The type of one value of a field (the element type for lists and maps).
fn value_ty(f: &'static Field) -> Ty {
    match f.ty {
        Type::Scalar(Scalar::Any) => Ty::Deduced,
        Type::Scalar(_) => Ty::Leaf,
        Type::Message(name) if ATOMIC_STRUCTS.contains(&name) => Ty::Leaf,
        Type::Message(name) => lookup(name).map_or(Ty::Deduced, Ty::Struct),
    }
}

fn lookup(name: &str) -> Option<&'static Message> {
    // Unit tests describe small hand-built schemas under the `test.` prefix.
    #[cfg(test)]
    if let Some(m) = super::tests::fixture(name) {
        return Some(m);
    }
    schema::message(name)
}

fn list_kind(f: &'static Field) -> ListKind {
    let merge_key = f.merge_key.as_ref().map(std::slice::from_ref);
    let scalar = matches!(f.ty, Type::Scalar(_));
    match f.list_type {
        Some("map") if !f.list_map_keys.is_empty() => ListKind::Assoc(f.list_map_keys),
        Some("map") => merge_key.map_or(ListKind::Atomic, ListKind::Assoc),
        Some("set") => ListKind::Set,
        Some(_) => ListKind::Atomic,
        None => match merge_key {
            Some(keys) => ListKind::Assoc(keys),
            None if scalar && f.patch_strategy.is_some_and(|s| s.contains("merge")) => {
                ListKind::Set
            }
            None => ListKind::Atomic,
        },
    }
}

fn granular_list(f: &'static Field) -> bool {
    !matches!(list_kind(f), ListKind::Atomic)
}

/// Names a list element: by its key fields, by value, or (when keys are missing) by index.
fn item_pe(kind: ListKind, item: &Value, index: usize) -> Pe {
    match kind {
        ListKind::Assoc(keys) => key_of(item, keys).map_or(Pe::Index(index), Pe::Key),
        ListKind::Set => Pe::Value(item.clone()),
        ListKind::Atomic => Pe::Index(index),
    }
}

fn key_of(item: &Value, keys: &[&str]) -> Option<Vec<(String, Value)>> {
    let obj = item.as_object()?;
    keys.iter()
        .map(|k| {
            let v = obj.get(*k).filter(|v| !v.is_null()).cloned().or_else(|| {
                KEY_DEFAULTS
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, d)| Value::String((*d).to_owned()))
            })?;
            Some(((*k).to_owned(), v))
        })
        .collect()
}

fn merge_list(live: &[Value], cfg: &[Value], f: &'static Field) -> Result<Vec<Value>, String> {
    let kind = list_kind(f);
    let mut cfg_pes: Vec<Pe> = Vec::with_capacity(cfg.len());
    for item in cfg {
        let pe = match kind {
            ListKind::Assoc(keys) => Pe::Key(key_of(item, keys).ok_or_else(|| {
                format!(
                    "associative list with keys has an element that omits key field {:?}",
                    keys.join(",")
                )
            })?),
            _ => item_pe(kind, item, 0),
        };
        if cfg_pes.contains(&pe) {
            return Err(format!("duplicate entries for key {pe}"));
        }
        cfg_pes.push(pe);
    }
    let live_pes: Vec<Pe> = live
        .iter()
        .enumerate()
        .map(|(i, item)| item_pe(kind, item, i))
        .collect();
    let mut used = vec![false; live.len()];
    let mut out = Vec::with_capacity(live.len() + cfg.len());
    let mut next = 0;
    // Configuration order wins; live-only elements stay next to their live neighbours.
    for (item, pe) in cfg.iter().zip(&cfg_pes) {
        let matched = live_pes.iter().position(|p| p == pe);
        let merged = match matched {
            Some(j) => {
                while next < j {
                    if !used[next] && !cfg_pes.contains(&live_pes[next]) {
                        out.push(live[next].clone());
                        used[next] = true;
                    }
                    next += 1;
                }
                used[j] = true;
                merge(Some(&live[j]), item, value_ty(f))?
            }
            None => merge(None, item, value_ty(f))?,
        };
        out.push(merged);
    }
    for (i, item) in live.iter().enumerate() {
        if !used[i] && !cfg_pes.contains(&live_pes[i]) {
            out.push(item.clone());
        }
    }
    Ok(out)
}

fn compare_item(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty,
    path: &mut Vec<Pe>,
    d: &mut Diff,
) {
    // An element of an associative list is itself a member whenever it appears or goes.
    match (old, new) {
        (None, Some(_)) => d.added.insert(path),
        (Some(_), None) => d.removed.insert(path),
        _ => {}
    }
    if is_granular(ty, old, new) {
        compare(old, new, ty, path, d);
    } else if let (Some(a), Some(b)) = (old, new) {
        if a != b {
            d.modified.insert(path);
        }
    }
}

/// Whether a position is compared member by member rather than as one value.
fn is_granular(ty: Ty, old: Option<&Value>, new: Option<&Value>) -> bool {
    let sides = [old, new];
    let present = sides.iter().flatten();
    match ty {
        Ty::Struct(_) | Ty::Map(_) | Ty::Deduced => {
            present.clone().all(|v| v.is_object())
                && present
                    .clone()
                    .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        }
        Ty::List(f) if granular_list(f) => {
            present.clone().all(|v| v.is_array())
                && present
                    .clone()
                    .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        }
        _ => false,
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
