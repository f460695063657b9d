//! Element order of merged lists: elements named by the patch (or by `$setElementOrder`)
//! take the order the patch gives, the live object's other elements keep their relative
//! order, and the two are interleaved by their positions in the live list.
//!
//! Before editing: this mirrors apimachinery's `normalizeElementOrder` and
//! `mergeSortedSlice` (design proposal "preserve-order-in-strategic-merge-patch"); kubectl
//! relies on it to keep containers in the order of the applied manifest.

use serde_json::Value;

use super::{no_merge_key, strategic, DIRECTIVE};
use crate::patch::{json_eq, PatchError};

/// Orders `merged`: elements present in `wanted` (compared by merge key, or by value without
/// one) follow `wanted`; the rest follow `live`; then both are interleaved.
pub(super) fn enforce(
    merged: Vec<Value>,
    wanted: &[Value],
    live: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let (named, others): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| position(wanted, item, key).is_some());
    let named = sort_by(named, wanted, key);
    let others = sort_by(others, live, key);
    interleave(others, named, live, key)
}

/// Checks that the patch list names its elements in the same relative order as the
/// `$setElementOrder` list and names none it lacks (deleted elements aside).
pub(super) fn validate(
    patch: &[Value],
    wanted: &[Value],
    key: Option<&str>,
) -> Result<(), PatchError> {
    if patch.is_empty() || wanted.is_empty() {
        return Ok(());
    }
    let kept: Vec<&Value> = patch
        .iter()
        .filter(|item| {
            key.is_none() || item.get(DIRECTIVE).and_then(Value::as_str) != Some("delete")
        })
        .collect();
    let (mut p, mut w) = (0, 0);
    while p < kept.len() && w < wanted.len() {
        if kept[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if same_element(kept[p], &wanted[w], key)? {
            p += 1;
        }
        w += 1;
    }
    if p < kept.len() {
        return Err(strategic(format!(
            "the order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}",
            Value::Array(patch.to_vec()),
            Value::Array(wanted.to_vec())
        )));
    }
    Ok(())
}

fn same_element(a: &Value, b: &Value, key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = key else {
        return Ok(json_eq(a, b));
    };
    let left = a.get(key).ok_or_else(|| no_merge_key(a, key))?;
    let right = b.get(key).ok_or_else(|| no_merge_key(b, key))?;
    Ok(json_eq(left, right))
}

/// What identifies an element: its merge key's value, or the element itself.
fn identity<'v>(item: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(key) => item.get(key),
        None => Some(item),
    }
}

fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key)?;
    list.iter()
        .position(|other| identity(other, key).is_some_and(|o| json_eq(o, id)))
}

/// Stable sort by position in `order`; elements it lacks go last, in their current order.
fn sort_by(mut items: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    items.sort_by_key(|item| position(order, item, key).unwrap_or(usize::MAX));
    items
}

/// Merges two sorted lists: an element of `left` goes first only when both it and the
/// current `right` element are in `live` and it stands earlier there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    live: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (position(live, l, key), position(live, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}
