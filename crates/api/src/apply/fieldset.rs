//! Field sets: which paths of an object a manager owns, and their `FieldsV1` JSON encoding.
//!
//! A set is a tree keyed by path element; a node is a member when `owned` is true (encoded as
//! `".": {}`, or `{}` for a node without children). Keep nodes normalised: a node that is
//! neither owned nor has children must not stay in the tree, or equality and emptiness break.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Debug, Clone)]
pub(crate) enum Pe {
    /// A struct field or map entry: `f:<name>`.
    Field(String),
    /// An element of an associative list, by its key fields: `k:{"name":"api"}`.
    Key(Vec<(String, Value)>),
    /// An element of a set list, by value: `v:<json>`.
    Value(Value),
    /// An element of a list by position: `i:<n>` (only when no key can be computed).
    Index(usize),
}

/// A set of paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    pub(crate) owned: bool,
    pub(crate) children: BTreeMap<Pe, FieldSet>,
}

impl FieldSet {
    pub(crate) fn is_empty(&self) -> bool {
        !self.owned && self.children.is_empty()
    }

    /// Marks `path` as a member.
    pub(crate) fn insert(&mut self, path: &[Pe]) {
        match path.split_first() {
            None => self.owned = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(crate) fn child(&self, pe: &Pe) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(crate) fn union_with(&mut self, other: &FieldSet) {
        self.owned |= other.owned;
        for (pe, sub) in &other.children {
            self.children.entry(pe.clone()).or_default().union_with(sub);
        }
    }

    pub(crate) fn union_of(mut self, other: &FieldSet) -> FieldSet {
        self.union_with(other);
        self
    }

    /// Members of `self` that are not members of `other` (not recursive: owning a parent in
    /// `other` does not remove the children from `self`).
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned && !other.owned,
            children: BTreeMap::new(),
        };
        for (pe, sub) in &self.children {
            let rest = match other.children.get(pe) {
                Some(o) => sub.difference(o),
                None => sub.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned && other.owned,
            children: BTreeMap::new(),
        };
        for (pe, sub) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let both = sub.intersection(o);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Every member path, parents before children, children in element order.
    pub(crate) fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        if self.owned && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (pe, sub) in &self.children {
            prefix.push(pe.clone());
            sub.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Drops empty nodes left behind by in-place edits.
    pub(crate) fn normalise(&mut self) {
        for sub in self.children.values_mut() {
            sub.normalise();
        }
        self.children.retain(|_, sub| !sub.is_empty());
    }

    /// The `FieldsV1` JSON of this set (the root's own membership is never encoded).
    pub(crate) fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode_children(false))
    }

    fn encode_children(&self, include_self: bool) -> Map<String, Value> {
        let mut map = Map::new();
        if include_self && self.owned && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (pe, sub) in &self.children {
            map.insert(pe.encode(), Value::Object(sub.encode_children(true)));
        }
        map
    }

    /// Parses `FieldsV1` JSON.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let mut set = FieldSet::decode(v)?;
        // A root never owns itself; `{}` at the root means the empty set.
        set.owned = false;
        Ok(set)
    }

    fn decode(v: &Value) -> Result<FieldSet, String> {
        let map = v
            .as_object()
            .ok_or_else(|| format!("expected an object, got {v}"))?;
        let mut set = FieldSet::default();
        if map.is_empty() {
            set.owned = true;
            return Ok(set);
        }
        for (k, sub) in map {
            if k == "." {
                set.owned = true;
                continue;
            }
            let child = FieldSet::decode(sub)?;
            set.children.insert(Pe::decode(k)?, child);
        }
        Ok(set)
    }
}

impl Pe {
    fn encode(&self) -> String {
        match self {
            Pe::Field(name) => format!("f:{name}"),
            Pe::Key(fields) => {
                let map: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(map))
            }
            Pe::Value(v) => format!("v:{v}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Result<Pe, String> {
        let (prefix, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("unknown path element {s:?}"))?;
        let json = |text: &str| -> Result<Value, String> {
            serde_json::from_str(text).map_err(|e| format!("invalid path element {s:?}: {e}"))
        };
        match prefix {
            "f" => Ok(Pe::Field(rest.to_owned())),
            "k" => match json(rest)? {
                Value::Object(map) => Ok(Pe::Key(map.into_iter().collect())),
                _ => Err(format!("invalid key path element {s:?}")),
            },
            "v" => Ok(Pe::Value(json(rest)?)),
            "i" => rest
                .parse()
                .map(Pe::Index)
                .map_err(|_| format!("invalid index path element {s:?}")),
            _ => Err(format!("unknown path element {s:?}")),
        }
    }
}

/// Formats a path the way structured-merge-diff prints it in conflict messages:
/// `.spec.containers[name="nginx"].image`, `[="x"]` for set values, `[0]` for indices.
pub(crate) fn path_string(path: &[Pe]) -> String {
    path.iter().map(|pe| pe.to_string()).collect()
}

impl fmt::Display for Pe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pe::Field(name) => write!(f, ".{name}"),
            Pe::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Pe::Value(v) => write!(f, "[={v}]"),
            Pe::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PartialEq for Pe {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pe {}

impl PartialOrd for Pe {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pe {
    /// Fields, then keys, then values, then indices — the order `FieldsV1` is written in.
    fn cmp(&self, other: &Self) -> Ordering {
        fn rank(pe: &Pe) -> u8 {
            match pe {
                Pe::Field(_) => 0,
                Pe::Key(_) => 1,
                Pe::Value(_) => 2,
                Pe::Index(_) => 3,
            }
        }
        match (self, other) {
            (Pe::Field(a), Pe::Field(b)) => a.cmp(b),
            (Pe::Key(a), Pe::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| value_cmp(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Pe::Value(a), Pe::Value(b)) => value_cmp(a, b),
            (Pe::Index(a), Pe::Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

/// A total order on JSON values: numbers, strings, booleans, lists, maps, null.
pub(crate) fn value_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = value_cmp(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((kp, p), (kq, q)) in x.iter().zip(y) {
                let c = kp.cmp(kq).then_with(|| value_cmp(p, q));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_dot_for_owned_parents() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}},
                       "f:finalizers": {"v:\"a\"": {}}}
        });
        let set = FieldSet::from_fields_v1(&v).expect("valid");
        assert_eq!(set.to_fields_v1(), v);
        let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
        assert!(paths.contains(&".spec.containers[name=\"nginx\"].image".to_owned()));
        assert!(paths.contains(&".spec.finalizers[=\"a\"]".to_owned()));
        assert!(paths.contains(&".metadata.labels".to_owned()));
    }

    #[test]
    fn rejects_unknown_path_elements() {
        assert!(FieldSet::from_fields_v1(&json!({"x:foo": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:notjson": {}})).is_err());
    }

    #[test]
    fn difference_keeps_children_of_removed_parent() {
        let a = FieldSet::from_fields_v1(&json!({"f:a": {".": {}, "f:b": {}}})).expect("valid");
        let b = FieldSet::from_fields_v1(&json!({"f:a": {}})).expect("valid");
        assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:a": {"f:b": {}}}));
        assert_eq!(a.intersection(&b).to_fields_v1(), json!({"f:a": {}}));
    }
}
