//! Kubernetes strategic merge patch (apimachinery `strategicpatch`), server side: maps merge
//! key by key and `null` deletes; lists whose field declares `patchStrategy: merge` merge
//! element-wise by `patchMergeKey` (primitive lists by value), every other list is replaced;
//! the `$patch`, `$retainKeys`, `$setElementOrder/<field>` and
//! `$deleteFromPrimitiveList/<field>` directives are honoured and never reach the result.
//!
//! Before editing: the field metadata comes from [`crate::schema`]; anything the schema does
//! not describe (unknown fields, free-form maps such as labels, `Any` scalars) merges like a
//! JSON merge patch, with directives still applied. Values the patch adds where the object
//! had nothing are "merged into nothing" so that nested directives are stripped there too.

mod order;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::{json_eq, PatchError};
use crate::schema::{self, Message, Shape, Type};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies a strategic merge patch to `doc`, an object of the kind whose schema is `root`.
/// Both must be JSON objects. `doc` is unchanged when an error is returned.
pub fn strategic_merge_patch(
    doc: &mut Value,
    patch: &Value,
    root: &'static Message,
) -> Result<(), PatchError> {
    apply_with(doc, patch, root, &schema::message)
}

/// Looks up a nested message by name; tests pass their own table.
type Resolve<'r> = &'r dyn Fn(&str) -> Option<&'static Message>;

fn apply_with(
    doc: &mut Value,
    patch: &Value,
    root: &'static Message,
    resolve: Resolve<'_>,
) -> Result<(), PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (&*doc, patch) else {
        return Err(strategic("invalid JSON document"));
    };
    let merger = Merger { resolve };
    let merged = merger.merge_map(original.clone(), patch.clone(), Schema::Message(root))?;
    *doc = Value::Object(merged);
    Ok(())
}

/// What is known about the values at one place in the document.
#[derive(Debug, Clone, Copy)]
enum Schema {
    /// Nothing: merge like a JSON merge patch.
    Unknown,
    /// An object of this message type.
    Message(&'static Message),
    /// A `map<string, T>`: arbitrary keys, each value of type `T` (a message, or a scalar).
    MapOf(Option<&'static Message>),
}

/// The patch metadata of one field.
#[derive(Debug, Clone, Copy)]
struct FieldMeta {
    /// The field's value, or for a list each element.
    value: Schema,
    /// `patchStrategy` includes `merge` on a list.
    merge_list: bool,
    merge_key: Option<&'static str>,
    /// `patchStrategy: replace` on a map.
    replace: bool,
}

impl FieldMeta {
    fn plain(value: Schema) -> Self {
        FieldMeta {
            value,
            merge_list: false,
            merge_key: None,
            replace: false,
        }
    }
}

struct Merger<'r> {
    resolve: Resolve<'r>,
}

impl Merger<'_> {
    fn field(&self, schema: Schema, key: &str) -> FieldMeta {
        let message = match schema {
            Schema::Unknown => return FieldMeta::plain(Schema::Unknown),
            Schema::MapOf(value) => {
                return FieldMeta::plain(value.map_or(Schema::Unknown, Schema::Message))
            }
            Schema::Message(message) => message,
        };
        let Some(field) = message.field(key) else {
            return FieldMeta::plain(Schema::Unknown);
        };
        let nested = match field.ty {
            Type::Message(name) => (self.resolve)(name),
            Type::Scalar(_) => None,
        };
        let value = match field.shape {
            Shape::Map => Schema::MapOf(nested),
            Shape::Single | Shape::List => nested.map_or(Schema::Unknown, Schema::Message),
        };
        let strategies = field.patch_strategy.unwrap_or_default();
        let has = |s: &str| strategies.split(',').any(|x| x.trim() == s);
        let merge_list = field.shape == Shape::List && has("merge");
        FieldMeta {
            value,
            merge_list,
            merge_key: if merge_list { field.merge_key } else { None },
            replace: has("replace"),
        }
    }

    /// Merges `patch` into `original` (both maps at a place described by `schema`).
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        schema: Schema,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.shift_remove(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => return self.merge_map(Map::new(), patch, schema),
                Some("delete") => return Ok(Map::new()),
                // Kubernetes rejects `merge` here; it is the default, so it is accepted.
                Some("merge") => {}
                _ => return Err(bad_patch_type(&directive, &patch)),
            }
        }
        retain_keys(&mut original, &mut patch)?;
        self.set_element_order(&mut original, &mut patch, schema)?;

        for (key, value) in patch {
            if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let field = rest
                    .strip_prefix('/')
                    .ok_or_else(|| strategic(BAD_PRIMITIVE_LIST))?;
                delete_from_primitive_list(&mut original, field, &value)?;
                continue;
            }
            if value.is_null() {
                original.shift_remove(&key);
                continue;
            }
            let meta = self.field(schema, &key);
            match original.get_mut(&key) {
                Some(slot) => {
                    let old = std::mem::take(slot);
                    match self.merge_value(old, value, meta)? {
                        Some(merged) => *slot = merged,
                        None => {
                            original.shift_remove(&key);
                        }
                    }
                }
                None => {
                    if let Some(fresh) = self.fresh(value, meta)? {
                        original.insert(key, fresh);
                    }
                }
            }
        }
        Ok(original)
    }

    /// Merges a non-null patch value into an existing value; `None` drops the field.
    fn merge_value(
        &self,
        old: Value,
        patch: Value,
        meta: FieldMeta,
    ) -> Result<Option<Value>, PatchError> {
        match (old, patch) {
            (Value::Object(old), Value::Object(patch)) if !meta.replace => {
                Ok(Some(Value::Object(self.merge_map(old, patch, meta.value)?)))
            }
            (Value::Array(old), Value::Array(patch)) if meta.merge_list => {
                Ok(Some(Value::Array(self.merge_list(old, patch, meta)?)))
            }
            (_, patch) => self.fresh(patch, meta),
        }
    }

    /// A patch value where the object has nothing: directives are applied against an empty
    /// value and removed. `None` when the value deletes itself (`$patch: delete`).
    fn fresh(&self, patch: Value, meta: FieldMeta) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Object(map) => {
                if map.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    return Ok(None);
                }
                Ok(Some(Value::Object(self.merge_map(
                    Map::new(),
                    map,
                    meta.value,
                )?)))
            }
            Value::Array(items) => Ok(Some(Value::Array(self.fresh_list(items, meta)?))),
            other => Ok(Some(other)),
        }
    }

    fn fresh_list(&self, items: Vec<Value>, meta: FieldMeta) -> Result<Vec<Value>, PatchError> {
        if meta.merge_list {
            return self.merge_list(Vec::new(), items, meta);
        }
        let element = FieldMeta::plain(meta.value);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // As in Kubernetes, an element carrying a directive in a replaced list is dropped.
            if item.get(DIRECTIVE).is_some() {
                continue;
            }
            if let Some(item) = self.fresh(item, element)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Merges two lists of a field whose strategy is `merge`.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        meta: FieldMeta,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        if element_kind(&original, &patch)? != ElementKind::Object {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for item in original.iter().chain(&patch) {
                if !merged.iter().any(|m| json_eq(m, item)) {
                    merged.push(item.clone());
                }
            }
            return Ok(order::enforce(merged, &patch, &original, None));
        }
        let key = meta.merge_key.ok_or_else(|| {
            let name = match meta.value {
                Schema::Message(m) => m.name,
                Schema::Unknown | Schema::MapOf(_) => "an unknown type",
            };
            strategic(format!("cannot merge lists without merge key for {name}"))
        })?;
        let (original, patch) = self.list_directives(original, patch, key, meta)?;
        let element = FieldMeta::plain(meta.value);
        let mut merged = original.clone();
        for item in &patch {
            let Value::Object(fields) = item else {
                return Err(strategic(format!("expected a map, but received {item}")));
            };
            let wanted = fields.get(key).ok_or_else(|| no_merge_key(item, key))?;
            let found = merged
                .iter()
                .position(|m| m.get(key).is_some_and(|v| json_eq(v, wanted)));
            match found {
                Some(at) => {
                    let old = match std::mem::take(&mut merged[at]) {
                        Value::Object(old) => old,
                        _ => Map::new(),
                    };
                    merged[at] = Value::Object(self.merge_map(old, fields.clone(), meta.value)?);
                }
                None => {
                    if let Some(fresh) = self.fresh(item.clone(), element)? {
                        merged.push(fresh);
                    }
                }
            }
        }
        Ok(order::enforce(merged, &patch, &original, Some(key)))
    }

    /// Applies `$patch` elements of a list of maps: `delete` removes the original element with
    /// the same merge key, `replace` makes the other patch elements the whole list. Returns
    /// the new original and the patch without directive elements.
    fn list_directives(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        meta: FieldMeta,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let mut replace = false;
        let mut rest = Vec::with_capacity(patch.len());
        for item in patch {
            let Some(directive) = item.get(DIRECTIVE) else {
                rest.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let wanted = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                    original.retain(|o| !o.get(key).is_some_and(|v| json_eq(v, wanted)));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(strategic(
                        "merging lists cannot yet be specified in the patch",
                    ))
                }
                _ => {
                    let map = item.as_object().cloned().unwrap_or_default();
                    return Err(bad_patch_type(directive, &map));
                }
            }
        }
        if replace {
            let element = FieldMeta::plain(meta.value);
            let mut list = Vec::with_capacity(rest.len());
            for item in rest {
                if let Some(item) = self.fresh(item, element)? {
                    list.push(item);
                }
            }
            return Ok((list, Vec::new()));
        }
        Ok((original, rest))
    }

    /// Handles every `$setElementOrder/<field>` of a patch map: merges `<field>` (if the patch
    /// has it) and orders the result as the directive lists, the other elements keeping their
    /// places relative to the live list. Both keys leave the patch.
    fn set_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        schema: Schema,
    ) -> Result<(), PatchError> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in directives {
            let Some(Value::Array(wanted)) = patch.shift_remove(&directive) else {
                return Err(strategic(BAD_SET_ELEMENT_ORDER));
            };
            let field = directive[SET_ELEMENT_ORDER.len()..]
                .strip_prefix('/')
                .ok_or_else(|| strategic(BAD_SET_ELEMENT_ORDER))?;
            let meta = self.field(schema, field);
            let live = list_at(original, field)?;
            let patch_list = list_at(patch, field)?;
            order::validate(
                patch_list.as_deref().unwrap_or_default(),
                &wanted,
                meta.merge_key,
            )?;
            let merged = match (live.clone(), patch_list) {
                (Some(live), None) => live,
                (None, Some(patch_list)) => self.fresh_list(patch_list, meta)?,
                (Some(live), Some(patch_list)) if meta.merge_list => {
                    self.merge_list(live, patch_list, meta)?
                }
                (Some(_), Some(patch_list)) => self.fresh_list(patch_list, meta)?,
                (None, None) => continue,
            };
            let merged = order::enforce(
                merged,
                &wanted,
                live.as_deref().unwrap_or_default(),
                meta.merge_key,
            );
            match original.get_mut(field) {
                Some(slot) => *slot = Value::Array(merged),
                None => {
                    original.insert(field.to_string(), Value::Array(merged));
                }
            }
            patch.shift_remove(field);
        }
        Ok(())
    }
}

/// The list under `field`, if present; anything else there is an error.
fn list_at(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(strategic(format!(
            "expected a list for {field}, but received {other}"
        ))),
    }
}

/// `$retainKeys`: drops every original key the list does not name. Each key the patch sets
/// must be named too.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(keys) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keys) = keys else {
        return Err(strategic(BAD_RETAIN_KEYS));
    };
    let named = |k: &str| keys.iter().any(|v| v.as_str() == Some(k));
    let unnamed_in_patch = patch.iter().any(|(k, v)| {
        !(v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
            || named(k))
    });
    if unnamed_in_patch {
        return Err(strategic(BAD_RETAIN_KEYS));
    }
    original.retain(|k, _| named(k));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes these values from the original list.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(strategic(BAD_PRIMITIVE_LIST));
    };
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !values.iter().any(|v| json_eq(v, item)));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// The one element type shared by both lists; lists of lists and mixed lists are errors.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<ElementKind, PatchError> {
    let mut kind = None;
    for item in original.iter().chain(patch) {
        let this = match item {
            Value::Array(_) => return Err(PatchError::ListOfLists),
            Value::Null => ElementKind::Null,
            Value::Bool(_) => ElementKind::Bool,
            Value::Number(_) => ElementKind::Number,
            Value::String(_) => ElementKind::String,
            Value::Object(_) => ElementKind::Object,
        };
        match kind {
            None => kind = Some(this),
            Some(seen) if seen != this => {
                return Err(strategic(format!(
                    "list element types are not identical: {} {}",
                    Value::Array(original.to_vec()),
                    Value::Array(patch.to_vec())
                )))
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| strategic("no elements in any of the given slices"))
}

fn strategic(detail: impl Into<String>) -> PatchError {
    PatchError::Strategic {
        detail: detail.into(),
    }
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let name = directive
        .as_str()
        .map_or_else(|| directive.to_string(), str::to_string);
    strategic(format!(
        "unknown patch type: {name} in map: {}",
        Value::Object(map.clone())
    ))
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    strategic(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}
