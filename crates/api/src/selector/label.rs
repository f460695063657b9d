//! Label selectors: the string grammar of `?labelSelector=` (`app=web,tier in (a,b),!canary`)
//! and `metav1.LabelSelector` objects (`matchLabels`/`matchExpressions`).
//! The one thing to know: the lexer and parser follow apimachinery's token-by-token so that
//! odd inputs (`x in (in)`, `a==`, `x in (,a)`) parse, and fail, exactly as upstream.

use std::fmt;

use serde_json::{Map, Value};

use super::parse::Parser;
use super::validation::{invalid, label_key_errors, label_value_errors};
use super::SelectorError;

/// How a requirement relates a label key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key <op> values` term of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A conjunction of requirements. Empty matches everything; [`LabelSelector::nothing`]
/// (what a missing `metav1.LabelSelector` means) matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches no object (a `null` `metav1.LabelSelector`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `?labelSelector=` syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
    /// `k notin (a)`, `k`, `!k`, `k>1`, `k<1`, comma meaning AND. Empty means everything.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse().map_err(SelectorError::LabelSyntax)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` JSON object. `null` selects nothing; `{}` selects
    /// everything.
    pub fn from_json(sel: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match sel {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError::LabelSyntax(format!(
                    "label selector must be an object, got {other}"
                )))
            }
        };
        let mut requirements = Vec::new();
        if let Some(Value::Object(match_labels)) = obj.get("matchLabels") {
            for (key, value) in match_labels {
                let value = value.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement::new(key, Operator::Equals, vec![value])?);
            }
        }
        if let Some(Value::Array(exprs)) = obj.get("matchExpressions") {
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
                let op_name = expr
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let operator = match op_name {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError::LabelSyntax(format!(
                            "{other:?} is not a valid label selector operator"
                        )))
                    }
                };
                let values = match expr.get("values") {
                    Some(Value::Array(vs)) => vs
                        .iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                requirements.push(Requirement::new(key, operator, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether every requirement holds for these labels (`metadata.labels`).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`LabelSelector::matches`] against an object's `metadata.labels` (absent = no labels).
    pub fn matches_object(&self, obj: &Value) -> bool {
        static NO_LABELS: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or_else(|| NO_LABELS.get_or_init(Map::new));
        self.matches(labels)
    }

    /// True when the selector does not restrict anything (matches every object).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector of a `null` `metav1.LabelSelector`.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `key` must have (`key=v`, `key==v` or `key in (v)`), if any.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// Canonical form: requirements sorted by key, joined by `,`; values of `in`/`notin`
    /// sorted. This is what `Scale.status.selector` and `kubectl -o wide` show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl Requirement {
    /// Builds a validated requirement, as apimachinery's `NewRequirement`.
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, SelectorError> {
        let mut errs: Vec<String> = Vec::new();
        let key_errs = label_key_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", &format!("{key:?}"), &key_errs.join("; ")));
        }
        let values_json = || Value::from(values.clone()).to_string();
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(invalid(
                "values",
                &values_json(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(invalid(
                    "values",
                    &values_json(),
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(invalid(
                "values",
                &values_json(),
                "values set must be empty for exists and does not exist",
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &values_json(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            &format!("{v:?}"),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = label_value_errors(v);
            if !value_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    &format!("{v:?}"),
                    &value_errs.join("; "),
                ));
            }
        }
        errs.dedup();
        match errs.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
            1 => Err(SelectorError::LabelSyntax(errs.remove(0))),
            _ => Err(SelectorError::LabelSyntax(format!("[{}]", errs.join(", ")))),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether these labels satisfy the requirement. `!=` and `notin` hold when the key is
    /// absent; `>`/`<` never hold for a value that is not an integer.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels
            .get(&self.key)
            .map(|v| v.as_str().unwrap_or_default());
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [wanted]) = (value, self.values.as_slice()) else {
                    return false;
                };
                match (actual.parse::<i64>(), wanted.parse::<i64>()) {
                    (Ok(a), Ok(w)) if self.operator == Operator::GreaterThan => a > w,
                    (Ok(a), Ok(w)) => a < w,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return f.write_str(&self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let mut values = self.values.clone();
        values.sort();
        let joined = values.join(",");
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "{}{op}({joined})", self.key)
        } else {
            write!(f, "{}{op}{joined}", self.key)
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("test labels are an object")
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("test selector parses")
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = sel("");
        assert!(s.is_empty());
        assert!(s.matches(&labels(json!({}))));
        assert!(sel("  ").is_empty());
    }

    #[test]
    fn equality_and_inequality() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(&l));
        assert!(sel("app==web").matches(&l));
        assert!(!sel("app=db").matches(&l));
        assert!(sel("app!=db").matches(&l));
        assert!(!sel("app!=web").matches(&l));
        // `!=` holds when the key is missing, as upstream.
        assert!(sel("env!=prod").matches(&l));
        assert!(sel("app=web,tier=front").matches(&l));
        assert!(!sel("app=web,tier=back").matches(&l));
    }

    #[test]
    fn set_based_and_existence() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(sel("tier in (front, back)").matches(&l));
        assert!(!sel("tier in (back)").matches(&l));
        assert!(sel("tier notin (back)").matches(&l));
        assert!(sel("env notin (prod)").matches(&l));
        assert!(!sel("env in (prod)").matches(&l));
        assert!(sel("app").matches(&l));
        assert!(!sel("env").matches(&l));
        assert!(sel("!env").matches(&l));
        assert!(!sel("!app").matches(&l));
        assert!(sel("app,!env,tier in (front)").matches(&l));
    }

    #[test]
    fn numeric_comparisons() {
        let l = labels(json!({"replicas": "3", "name": "x"}));
        assert!(sel("replicas>2").matches(&l));
        assert!(!sel("replicas>3").matches(&l));
        assert!(sel("replicas<4").matches(&l));
        assert!(!sel("name>1").matches(&l));
        assert!(!sel("missing<1").matches(&l));
    }

    #[test]
    fn keywords_are_values_inside_parentheses() {
        let l = labels(json!({"x": "in"}));
        assert!(sel("x in (in,notin)").matches(&l));
        assert!(sel("x=in").matches(&l));
    }

    #[test]
    fn empty_values_are_allowed() {
        let l = labels(json!({"a": ""}));
        assert!(sel("a=").matches(&l));
        assert!(sel("a in ()").matches(&l));
        assert!(sel("a in (,x)").matches(&l));
        assert!(!sel("a=x").matches(&l));
    }

    #[test]
    fn display_is_canonical_and_sorted() {
        assert_eq!(
            sel("tier in (b, a),app=web,!canary").to_string(),
            "app=web,!canary,tier in (a,b)"
        );
        assert_eq!(
            sel("a==b,c!=d,e notin (f),g,h>1").to_string(),
            "a==b,c!=d,e notin (f),g,h>1"
        );
        assert_eq!(sel("").to_string(), "");
    }

    #[test]
    fn syntax_errors_use_upstream_wording() {
        let err = |s: &str| {
            LabelSelector::parse(s)
                .expect_err("selector must be rejected")
                .to_string()
        };
        assert_eq!(
            err("x in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            err("x in (a"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(
            err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        let msg = LabelSelector::parse("-bad=x")
            .expect_err("key must start alphanumeric")
            .to_string();
        assert!(msg.starts_with("unable to parse requirement: : Invalid value: \"-bad\": name part must consist of alphanumeric characters"), "{msg}");
        let msg = LabelSelector::parse("app=-x")
            .expect_err("value must start alphanumeric")
            .to_string();
        assert!(
            msg.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be an empty string"),
            "{msg}"
        );
        assert!(LabelSelector::parse("Example.com/app=x").is_err());
        assert!(LabelSelector::parse("example.com/app=x").is_ok());
        assert!(LabelSelector::parse("a/b/c=x").is_err());
        assert!(LabelSelector::parse(&format!("a={}", "v".repeat(64))).is_err());
        assert!(LabelSelector::parse("n>abc").is_err());
    }

    #[test]
    fn from_json_builds_match_labels_and_expressions() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid metav1.LabelSelector");
        assert_eq!(s.to_string(), "app=web,!canary,tier in (edge,front)");
        assert!(s.matches(&labels(json!({"app": "web", "tier": "edge"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "tier": "edge", "canary": "1"})
        )));
        assert_eq!(s.requires_exact_match("app"), Some("web"));
    }

    #[test]
    fn from_json_null_matches_nothing_and_empty_matches_all() {
        let none = LabelSelector::from_json(&Value::Null).expect("null is valid");
        assert!(!none.matches(&labels(json!({}))));
        assert!(!none.is_empty());
        assert_eq!(none.to_string(), "");
        let all = LabelSelector::from_json(&json!({})).expect("{} is valid");
        assert!(all.is_empty());
        assert!(all.matches(&labels(json!({"a": "b"}))));
    }

    #[test]
    fn from_json_rejects_unknown_operator_and_empty_in() {
        let err = LabelSelector::from_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }))
        .expect_err("Gt is not a metav1 operator");
        assert_eq!(
            err.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        let err = LabelSelector::from_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
        }))
        .expect_err("In needs values");
        assert!(err
            .to_string()
            .contains("for 'in', 'notin' operators, values set can't be empty"));
    }

    #[test]
    fn matches_object_reads_metadata_labels() {
        let s = sel("app=web");
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(sel("!app").matches_object(&json!({"metadata": {}})));
    }
}
