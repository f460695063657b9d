//! RFC 6902 JSON patch with RFC 6901 JSON pointers (`~0` is `~`, `~1` is `/`, `-` appends).
//!
//! Before editing: operations run on a copy that replaces the document only when every
//! operation succeeded (RFC 6902 §5), so a failing `test` undoes the earlier operations.

use serde_json::{Map, Value};

use super::{json_eq, PatchError};

/// Kubernetes refuses JSON patches with more operations than this (413).
const MAX_OPERATIONS: usize = 10_000;

/// Applies the operations in `ops` (a JSON array) to `doc`, all or nothing.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| invalid("a JSON patch must be an array of operations".to_string()))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_OPERATIONS,
            got: ops.len(),
        });
    }
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut work, &Operation::parse(i, op)?)?;
    }
    *doc = work;
    Ok(())
}

/// One decoded operation; `path` and `from` keep their text for error messages.
struct Operation<'a> {
    kind: Kind,
    path: &'a str,
    tokens: Vec<String>,
    from: Option<(&'a str, Vec<String>)>,
    value: Option<&'a Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Remove => "remove",
            Kind::Replace => "replace",
            Kind::Move => "move",
            Kind::Copy => "copy",
            Kind::Test => "test",
        }
    }
}

impl<'a> Operation<'a> {
    fn parse(index: usize, op: &'a Value) -> Result<Self, PatchError> {
        let obj = op
            .as_object()
            .ok_or_else(|| invalid(format!("operation {index} is not an object")))?;
        let name = obj
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("operation {index} has no \"op\"")))?;
        let kind = match name {
            "add" => Kind::Add,
            "remove" => Kind::Remove,
            "replace" => Kind::Replace,
            "move" => Kind::Move,
            "copy" => Kind::Copy,
            "test" => Kind::Test,
            other => {
                return Err(invalid(format!(
                    "unknown operation {other:?} at index {index}"
                )))
            }
        };
        let path = obj
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{name} operation at index {index} has no \"path\"")))?;
        let tokens = parse_pointer(path)?;
        let from = if matches!(kind, Kind::Move | Kind::Copy) {
            let from = obj.get("from").and_then(Value::as_str).ok_or_else(|| {
                invalid(format!("{name} operation at index {index} has no \"from\""))
            })?;
            Some((from, parse_pointer(from)?))
        } else {
            None
        };
        let value = obj.get("value");
        if matches!(kind, Kind::Add | Kind::Replace | Kind::Test) && value.is_none() {
            return Err(invalid(format!(
                "{name} operation at index {index} has no \"value\""
            )));
        }
        Ok(Operation {
            kind,
            path,
            tokens,
            from,
            value,
        })
    }
}

fn apply_op(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let missing = || PatchError::MissingPath {
        op: op.kind.name(),
        path: op.path.to_string(),
    };
    let value = || op.value.cloned().unwrap_or(Value::Null);
    match op.kind {
        Kind::Add => add(doc, &op.tokens, value()).ok_or_else(missing),
        Kind::Remove => remove(doc, &op.tokens).map(drop).ok_or_else(missing),
        Kind::Replace => {
            let target = get_mut(doc, &op.tokens).ok_or_else(missing)?;
            *target = value();
            Ok(())
        }
        Kind::Test => {
            let expected = value();
            match get(doc, &op.tokens) {
                Some(actual) if json_eq(actual, &expected) => Ok(()),
                actual => Err(PatchError::TestFailed {
                    path: op.path.to_string(),
                    actual: actual.map_or_else(|| "missing".to_string(), Value::to_string),
                    expected: expected.to_string(),
                }),
            }
        }
        Kind::Move | Kind::Copy => {
            let (from, from_tokens) = op.from.as_ref().ok_or_else(missing)?;
            let missing_from = || PatchError::MissingFrom {
                op: op.kind.name(),
                from: from.to_string(),
            };
            let moved = if op.kind == Kind::Move {
                if from_tokens == &op.tokens {
                    // Moving a value onto itself changes nothing, but it must exist.
                    return get(doc, from_tokens).map(drop).ok_or_else(missing_from);
                }
                if op.tokens.starts_with(from_tokens) {
                    return Err(PatchError::MoveIntoChild {
                        from: from.to_string(),
                        path: op.path.to_string(),
                    });
                }
                remove(doc, from_tokens).ok_or_else(missing_from)?
            } else {
                get(doc, from_tokens).cloned().ok_or_else(missing_from)?
            };
            add(doc, &op.tokens, moved).ok_or_else(missing)
        }
    }
}

fn invalid(detail: String) -> PatchError {
    PatchError::Invalid { detail }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens; `""` is the whole document.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| invalid(format!("path {pointer:?} does not start with \"/\"")))?;
    rest.split('/')
        .map(|token| {
            unescape(token).ok_or_else(|| invalid(format!("bad escape in path {pointer:?}")))
        })
        .collect()
}

/// `~1` becomes `/` and `~0` becomes `~`; any other `~` sequence is malformed.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: decimal digits without a leading zero (RFC 6901 §4).
fn array_index(token: &str) -> Option<usize> {
    let digits_ok = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if digits_ok {
        token.parse().ok()
    } else {
        None
    }
}

fn get<'v>(mut doc: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    for token in tokens {
        doc = match doc {
            Value::Object(map) => map.get(token)?,
            Value::Array(items) => items.get(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(doc)
}

fn get_mut<'v>(mut doc: &'v mut Value, tokens: &[String]) -> Option<&'v mut Value> {
    for token in tokens {
        doc = match doc {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(items) => items.get_mut(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(doc)
}

/// RFC 6902 §4.1: sets an object member (replacing it) or inserts into an array; `None`
/// when the parent is missing or the index is out of range.
fn add(doc: &mut Value, tokens: &[String], value: Value) -> Option<()> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Some(());
    };
    match get_mut(doc, parent)? {
        Value::Object(map) => {
            insert_in_place(map, last, value);
            Some(())
        }
        Value::Array(items) => {
            let at = if last == "-" {
                items.len()
            } else {
                array_index(last)?
            };
            if at > items.len() {
                return None;
            }
            items.insert(at, value);
            Some(())
        }
        _ => None,
    }
}

/// Replaces an existing member where it stands, so key order is kept; appends a new one.
fn insert_in_place(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            map.insert(key.to_string(), value);
        }
    }
}

/// RFC 6902 §4.2: removes and returns the target; the whole document cannot be removed.
fn remove(doc: &mut Value, tokens: &[String]) -> Option<Value> {
    let (last, parent) = tokens.split_last()?;
    match get_mut(doc, parent)? {
        Value::Object(map) => map.shift_remove(last),
        Value::Array(items) => {
            let at = array_index(last)?;
            (at < items.len()).then(|| items.remove(at))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(doc: Value, ops: Value) -> Value {
        let mut doc = doc;
        json_patch(&mut doc, &ops).expect("patch applies");
        doc
    }

    fn failure(doc: Value, ops: Value) -> PatchError {
        let mut work = doc.clone();
        let err = json_patch(&mut work, &ops).expect_err("patch fails");
        assert_eq!(work, doc, "a failed patch changes nothing");
        err
    }

    #[test]
    fn rollout_undo_replaces_template_and_annotations() {
        // The body kubectl 1.32 sends for `kubectl rollout undo deploy/web`.
        let deploy = json!({
            "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 2, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}
            }}
        });
        let body: Value = serde_json::from_str(
            r#"[{"op":"replace","path":"/spec/template","value":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","resources":{}}]}}},{"op":"replace","path":"/metadata/annotations","value":{"deployment.kubernetes.io/revision":"2"}}]"#,
        )
        .expect("valid JSON");
        let out = patched(deploy, body);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.25"
        );
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"deployment.kubernetes.io/revision": "2"})
        );
    }

    #[test]
    fn add_inserts_into_objects_and_arrays() {
        // RFC 6902 A.1, A.2 and appending with "-".
        assert_eq!(
            patched(
                json!({"a": 1}),
                json!([{"op": "add", "path": "/b", "value": "x"}])
            ),
            json!({"a": 1, "b": "x"})
        );
        assert_eq!(
            patched(
                json!({"list": ["a", "c"]}),
                json!([{"op": "add", "path": "/list/1", "value": "b"},
                       {"op": "add", "path": "/list/-", "value": "d"}])
            ),
            json!({"list": ["a", "b", "c", "d"]})
        );
        // A.10: the added value may itself be a structure.
        assert_eq!(
            patched(
                json!({}),
                json!([{"op": "add", "path": "/child", "value": {"g": [1]}}])
            ),
            json!({"child": {"g": [1]}})
        );
    }

    #[test]
    fn remove_and_replace_need_an_existing_target() {
        // A.3, A.4, A.5.
        assert_eq!(
            patched(
                json!({"a": 1, "b": 2, "l": [1, 2, 3]}),
                json!([{"op": "remove", "path": "/a"},
                       {"op": "remove", "path": "/l/1"},
                       {"op": "replace", "path": "/b", "value": 9}])
            ),
            json!({"b": 9, "l": [1, 3]})
        );
        let err = failure(
            json!({"spec": {}}),
            json!([{"op": "replace", "path": "/spec/foo", "value": 1}]),
        );
        assert_eq!(
            err.to_string(),
            "replace operation does not apply: doc is missing path: /spec/foo"
        );
        assert_eq!(err.status_code(), 422);
        let err = failure(json!({"l": [1]}), json!([{"op": "remove", "path": "/l/1"}]));
        assert_eq!(
            err.to_string(),
            "remove operation does not apply: doc is missing path: /l/1"
        );
    }

    #[test]
    fn add_needs_an_existing_parent() {
        // A.12: adding to a nonexistent target is an error.
        let err = failure(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/b/c", "value": 1}]),
        );
        assert_eq!(
            err.to_string(),
            "add operation does not apply: doc is missing path: /b/c"
        );
        let err = failure(
            json!({"l": [1]}),
            json!([{"op": "add", "path": "/l/3", "value": 1}]),
        );
        assert!(matches!(err, PatchError::MissingPath { op: "add", .. }));
    }

    #[test]
    fn move_and_copy_take_from() {
        // A.6, A.7.
        assert_eq!(
            patched(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            patched(
                json!({"l": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/l/1", "path": "/l/3"}])
            ),
            json!({"l": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            patched(
                json!({"a": {"x": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/b"},
                       {"op": "replace", "path": "/b/x", "value": 2}])
            ),
            json!({"a": {"x": 1}, "b": {"x": 2}})
        );
        let err = failure(
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/nope", "path": "/b"}]),
        );
        assert_eq!(
            err.to_string(),
            "copy operation does not apply: doc is missing from path: /nope"
        );
        let err = failure(
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
        );
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn test_compares_values_and_reports_mismatch() {
        // A.8 (success, with 1 == 1.0) and A.9 (failure).
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"], "spec": {"replicas": 2}});
        patched(
            doc.clone(),
            json!([{"op": "test", "path": "/baz", "value": "qux"},
                   {"op": "test", "path": "/foo/1", "value": 2.0}]),
        );
        let err = failure(
            doc.clone(),
            json!([{"op": "test", "path": "/spec/replicas", "value": 3}]),
        );
        assert_eq!(
            err.to_string(),
            "test operation failed: value at /spec/replicas is 2, not 3"
        );
        let err = failure(doc, json!([{"op": "test", "path": "/nope", "value": "x"}]));
        assert_eq!(
            err.to_string(),
            "test operation failed: value at /nope is missing, not \"x\""
        );
    }

    #[test]
    fn pointer_escapes_are_decoded() {
        // A.14: "~1" is "/", "~0" is "~"; the label key contains a slash.
        let doc = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web", "a~b": "1"}}});
        let out = patched(
            doc,
            json!([{"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "api"},
                   {"op": "remove", "path": "/metadata/labels/a~0b"}]),
        );
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "api"}}})
        );
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        for ops in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
            json!([{"op": "add", "path": "/a~2", "value": 1}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "move", "path": "/a"}]),
        ] {
            let err = failure(json!({}), ops);
            assert_eq!(err.status_code(), 400, "{err}");
            assert!(err.to_string().starts_with("invalid JSON patch: "), "{err}");
        }
    }

    #[test]
    fn leading_zero_indexes_are_not_array_indexes() {
        let err = failure(
            json!({"l": [1, 2]}),
            json!([{"op": "remove", "path": "/l/01"}]),
        );
        assert!(matches!(err, PatchError::MissingPath { .. }));
    }

    #[test]
    fn too_many_operations_is_refused() {
        let ops = Value::Array(vec![json!({"op": "test", "path": "", "value": {}}); 10_001]);
        assert_eq!(failure(json!({}), ops).status_code(), 413);
    }

    #[test]
    fn empty_path_replaces_the_whole_document() {
        assert_eq!(
            patched(
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": [1]}])
            ),
            json!([1])
        );
    }
}
