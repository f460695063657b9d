//! Renders bad values the way Go's `fmt` does in field errors: strings with `%q`, numbers and
//! booleans plain, and the shapes upstream reports most often (string maps, string slices,
//! label selectors) in `%#v` form, e.g. `map[string]string{"app":"web"}`.
//! Anything else falls back to compact JSON, which upstream would print as a Go struct.

use serde_json::Value;

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A bad value as `field.Error.ErrorBody` prints it.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => match string_slice(items) {
            Some(s) => s,
            None => v.to_string(),
        },
        Value::Object(m) => {
            if let Some(s) = label_selector(v) {
                return s;
            }
            if m.values().all(Value::is_string) {
                return string_map(v);
            }
            v.to_string()
        }
    }
}

/// `[]string{"a", "b"}`.
fn string_slice(items: &[Value]) -> Option<String> {
    let strs: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(go_quote)).collect();
    strs.map(|s| format!("[]string{{{}}}", s.join(", ")))
}

/// `map[string]string{"a":"1", "b":"2"}`, keys sorted as Go prints maps; `(nil)` for absent.
fn string_map(v: &Value) -> String {
    let Some(m) = v.as_object() else {
        return "map[string]string(nil)".to_string();
    };
    let mut pairs: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// `v1.LabelSelector{MatchLabels:map[string]string{…}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`
/// for objects shaped like a label selector.
fn label_selector(v: &Value) -> Option<String> {
    let m = v.as_object()?;
    if m.is_empty()
        || !m
            .keys()
            .all(|k| k == "matchLabels" || k == "matchExpressions")
    {
        return None;
    }
    let labels = match m.get("matchLabels") {
        Some(l @ Value::Object(_)) => string_map(l),
        _ => "map[string]string(nil)".to_string(),
    };
    let exprs = match m.get("matchExpressions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            let items: Vec<String> = list.iter().map(requirement).collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
        _ => "[]v1.LabelSelectorRequirement(nil)".to_string(),
    };
    Some(format!(
        "v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}"
    ))
}

fn requirement(r: &Value) -> String {
    let s = |k: &str| go_quote(r.get(k).and_then(Value::as_str).unwrap_or(""));
    let values = match r.get("values").and_then(Value::as_array) {
        Some(vals) => string_slice(vals).unwrap_or_else(|| "[]string(nil)".to_string()),
        None => "[]string(nil)".to_string(),
    };
    format!(
        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
        s("key"),
        s("operator")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_like_go() {
        assert_eq!(go_value(&json!("Web")), "\"Web\"");
        assert_eq!(go_value(&json!("a\"b\n")), "\"a\\\"b\\n\"");
        assert_eq!(go_value(&json!(-1)), "-1");
        assert_eq!(go_value(&json!(true)), "true");
        assert_eq!(go_value(&json!(["10.0.0.1"])), "[]string{\"10.0.0.1\"}");
        assert_eq!(
            go_value(&json!({"tier": "x", "app": "web"})),
            "map[string]string{\"app\":\"web\", \"tier\":\"x\"}"
        );
    }

    #[test]
    fn selectors_print_as_the_famous_immutable_message() {
        assert_eq!(
            go_value(&json!({"matchLabels": {"app": "web2"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            go_value(&json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]})),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"a\", Operator:\"In\", Values:[]string{\"x\"}}}}"
        );
    }
}
