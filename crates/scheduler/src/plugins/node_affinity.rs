//! NodeAffinity: `spec.nodeSelector` (every label must match) and the required node affinity
//! (`requiredDuringSchedulingIgnoredDuringExecution`: terms ORed, the expressions of a term
//! ANDed). Preferred affinity is a scoring matter (issue 4).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

use crate::framework::{FilterPlugin, NodeInfo, PodInfo, Rejection};

pub const NAME: &str = "NodeAffinity";
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

#[derive(Debug, Default)]
pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, pod: &PodInfo<'_>, node: &NodeInfo) -> Result<(), Rejection> {
        let Some(spec) = pod.pod.spec.as_ref() else {
            return Ok(());
        };
        let empty = BTreeMap::new();
        let labels = node.node.metadata.labels.as_ref().unwrap_or(&empty);
        let selector_ok = spec
            .node_selector
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        let affinity_ok = required.is_none_or(|r| {
            r.node_selector_terms
                .iter()
                .any(|term| term_matches(term, labels, node.name()))
        });
        if selector_ok && affinity_ok {
            Ok(())
        } else {
            Err(Rejection::unresolvable(REASON))
        }
    }
}

/// A term matches when all its label expressions and field expressions match; a term with
/// neither matches nothing (upstream semantics).
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // `metadata.name` is the only field upstream supports.
            r.key == "metadata.name" && requirement_matches(r, Some(name))
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|w| w == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|w| w != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let [bound] = values else {
                return false;
            };
            let (Some(v), Ok(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                bound.parse::<i64>(),
            ) else {
                return false;
            };
            if op == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeSelector};

    use super::*;
    use crate::testing::{node, pod, with_labels};

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn with_terms(terms: Vec<NodeSelectorTerm>) -> k8s_openapi::api::core::v1::Pod {
        let mut p = pod("p", vec![]);
        p.spec.as_mut().expect("spec").affinity = Some(Affinity {
            node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    fn expr_term(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(reqs),
            ..Default::default()
        }
    }

    fn fits(p: &k8s_openapi::api::core::v1::Pod, labels: &[(&str, &str)]) -> bool {
        let n = NodeInfo::new(with_labels(node("n1", "1", "1Gi"), labels));
        NodeAffinity.filter(&PodInfo::new(p), &n).is_ok()
    }

    #[test]
    fn node_selector_needs_every_label() {
        let mut p = pod("p", vec![]);
        p.spec.as_mut().expect("spec").node_selector =
            Some([("zone".into(), "a".into()), ("disk".into(), "ssd".into())].into());
        assert!(fits(&p, &[("zone", "a"), ("disk", "ssd"), ("x", "y")]));
        assert!(!fits(&p, &[("zone", "a")]));
        assert!(!fits(&p, &[("zone", "b"), ("disk", "ssd")]));
        let n = NodeInfo::new(node("n1", "1", "1Gi"));
        assert_eq!(
            NodeAffinity.filter(&PodInfo::new(&p), &n),
            Err(Rejection::unresolvable(REASON))
        );
    }

    #[test]
    fn operators() {
        let one = |r| with_terms(vec![expr_term(vec![r])]);
        let p = one(req("zone", "In", &["a", "b"]));
        assert!(fits(&p, &[("zone", "b")]));
        assert!(!fits(&p, &[("zone", "c")]));
        assert!(!fits(&p, &[]));
        let p = one(req("zone", "NotIn", &["a"]));
        assert!(fits(&p, &[("zone", "b")]));
        assert!(fits(&p, &[]), "NotIn matches an absent label");
        assert!(!fits(&p, &[("zone", "a")]));
        let p = one(req("gpu", "Exists", &[]));
        assert!(fits(&p, &[("gpu", "")]));
        assert!(!fits(&p, &[]));
        let p = one(req("gpu", "DoesNotExist", &[]));
        assert!(fits(&p, &[]));
        assert!(!fits(&p, &[("gpu", "1")]));
        let p = one(req("cores", "Gt", &["4"]));
        assert!(fits(&p, &[("cores", "8")]));
        assert!(!fits(&p, &[("cores", "4")]));
        assert!(!fits(&p, &[("cores", "many")]));
        assert!(!fits(&p, &[]));
        let p = one(req("cores", "Lt", &["4"]));
        assert!(fits(&p, &[("cores", "-1")]));
        assert!(!fits(&p, &[("cores", "4")]));
        assert!(!fits(
            &one(req("cores", "Gt", &["1", "2"])),
            &[("cores", "8")]
        ));
        assert!(!fits(&one(req("zone", "Like", &["a"])), &[("zone", "a")]));
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let p = with_terms(vec![
            expr_term(vec![req("zone", "In", &["a"]), req("disk", "In", &["ssd"])]),
            expr_term(vec![req("zone", "In", &["b"])]),
        ]);
        assert!(fits(&p, &[("zone", "a"), ("disk", "ssd")]));
        assert!(!fits(&p, &[("zone", "a"), ("disk", "hdd")]));
        assert!(fits(&p, &[("zone", "b")]));
    }

    #[test]
    fn empty_terms_match_nothing_and_fields_match_the_name() {
        assert!(!fits(
            &with_terms(vec![NodeSelectorTerm::default()]),
            &[("a", "b")]
        ));
        let by_name = with_terms(vec![NodeSelectorTerm {
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
            ..Default::default()
        }]);
        assert!(fits(&by_name, &[]));
        let other = with_terms(vec![NodeSelectorTerm {
            match_fields: Some(vec![req("metadata.name", "In", &["n2"])]),
            ..Default::default()
        }]);
        assert!(!fits(&other, &[]));
    }

    #[test]
    fn selector_and_affinity_must_both_match() {
        let mut p = with_terms(vec![expr_term(vec![req("zone", "In", &["a"])])]);
        p.spec.as_mut().expect("spec").node_selector = Some([("disk".into(), "ssd".into())].into());
        assert!(fits(&p, &[("zone", "a"), ("disk", "ssd")]));
        assert!(!fits(&p, &[("zone", "a")]));
        assert!(!fits(&p, &[("disk", "ssd")]));
    }
}
