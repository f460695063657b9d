//! The one place plugins are registered: builds a profile's `Framework` from its config.

use crate::config::SchedulerConfig;
use crate::framework::Framework;
use crate::plugins::{
    node_affinity, node_name, node_ready, node_resources_fit, node_unschedulable, taint_toleration,
};

/// Every plugin this build knows, by `NAME`.
pub const PLUGINS: &[&str] = &[
    node_name::NAME,
    node_unschedulable::NAME,
    node_ready::NAME,
    taint_toleration::NAME,
    node_affinity::NAME,
    node_resources_fit::NAME,
];

/// The default profile, filters in upstream's order; a node is dropped at its first rejection
/// (later filters are not consulted, as upstream).
pub fn framework(config: &SchedulerConfig) -> Framework {
    Framework {
        pre_filter: Vec::new(),
        filter: vec![
            Box::new(node_unschedulable::NodeUnschedulable),
            Box::new(node_name::NodeName),
            Box::new(taint_toleration::TaintToleration),
            // After TaintToleration so a node carrying upstream's not-ready taint is reported
            // with upstream's wording.
            Box::new(node_ready::NodeReady),
            Box::new(node_affinity::NodeAffinity),
            Box::new(node_resources_fit::NodeResourcesFit {
                strategy: config.scoring,
            }),
        ],
        score: vec![(
            Box::new(node_resources_fit::NodeResourcesFit {
                strategy: config.scoring,
            }),
            1,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_plugin_is_wired() {
        let names = framework(&SchedulerConfig::default()).plugin_names();
        for plugin in PLUGINS {
            assert!(names.contains(plugin), "{plugin} is not in the framework");
        }
    }
}
