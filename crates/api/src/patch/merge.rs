//! RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else
//! (arrays included) replaces.
//!
//! Before editing: a merge patch cannot fail; a non-object patch replaces the whole target,
//! and decoding the result is the caller's business.

use serde_json::{Map, Value};

/// Merges `patch` into `doc` as RFC 7386 §2 describes.
pub fn merge_patch(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(target) = doc else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(doc: Value, patch: Value) -> Value {
        let mut doc = doc;
        merge_patch(&mut doc, &patch);
        doc
    }

    #[test]
    fn null_deletes_a_label_and_other_keys_stay() {
        let doc =
            json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"replicas": 1}});
        assert_eq!(
            merged(
                doc,
                json!({"metadata": {"labels": {"tier": null, "new": "x"}}})
            ),
            json!({"metadata": {"labels": {"app": "web", "new": "x"}}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn rfc7386_appendix_a_cases() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(merged(doc.clone(), patch.clone()), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn replacing_keeps_key_order() {
        let out = merged(json!({"a": 1, "b": 2, "c": 3}), json!({"b": null, "a": 5}));
        let keys: Vec<&String> = out.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["a", "c"]);
    }
}
