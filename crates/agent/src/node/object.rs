//! The Node object and its status as pure functions of the host's facts and the config.
//! One thing to know: a condition's `lastTransitionTime` is carried over from the previous
//! status while its status is unchanged; only `lastHeartbeatTime` moves on every write.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::config::{AgentConfig, AGENT_VERSION};
use crate::host::HostFacts;
use crate::runtime::RuntimeVersion;

/// Pods one node accepts (the kubelet's default `--max-pods`).
pub const MAX_PODS: u32 = 110;
/// Memory the kubelet keeps back by default (`memory.available<100Mi`).
const MEMORY_EVICTION_BYTES: u64 = 100 << 20;
/// Below this share of free disk the node reports DiskPressure (`nodefs.available<10%`).
const DISK_EVICTION_PERCENT: u64 = 10;
/// Below this share of free PIDs the node reports PIDPressure.
const PID_EVICTION_PERCENT: u64 = 5;

/// The Node's labels: well-known ones from the facts and config, then `--labels`.
pub fn node_labels(config: &AgentConfig, facts: &HostFacts) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".into(), config.node_name.clone());
    labels.insert("kubernetes.io/os".into(), facts.operating_system.clone());
    labels.insert("kubernetes.io/arch".into(), facts.architecture.clone());
    labels.insert(
        "beta.kubernetes.io/os".into(),
        facts.operating_system.clone(),
    );
    labels.insert("beta.kubernetes.io/arch".into(), facts.architecture.clone());
    if let Some(zone) = &config.zone {
        labels.insert("topology.kubernetes.io/zone".into(), zone.clone());
    }
    if let Some(rack) = &config.rack {
        labels.insert("topology.gantry.dev/rack".into(), rack.clone());
    }
    labels.extend(config.labels.clone());
    labels
}

/// A new Node object (metadata and spec; status is written separately).
pub fn new_node(config: &AgentConfig, facts: &HostFacts) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(node_labels(config, facts)),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: None,
    }
}

/// The full NodeStatus for this moment.
pub fn node_status(
    config: &AgentConfig,
    facts: &HostFacts,
    runtime: &RuntimeVersion,
    previous: Option<&NodeStatus>,
    now: Timestamp,
) -> NodeStatus {
    let kib = |b: u64| Quantity(format!("{}Ki", b / 1024));
    let capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity(facts.cpus.to_string())),
        ("memory".to_string(), kib(facts.memory_bytes)),
        ("ephemeral-storage".to_string(), kib(facts.storage_bytes)),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ]);
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".into(),
        kib(facts.memory_bytes.saturating_sub(MEMORY_EVICTION_BYTES)),
    );
    allocatable.insert(
        "ephemeral-storage".into(),
        Quantity((facts.storage_bytes / 100 * (100 - DISK_EVICTION_PERCENT)).to_string()),
    );
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(node_conditions(
            facts,
            previous.and_then(|p| p.conditions.as_deref()),
            now,
        )),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: facts.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: facts.hostname.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: facts.architecture.clone(),
            boot_id: facts.boot_id.clone(),
            container_runtime_version: format!("{}://{}", runtime.name, runtime.version),
            kernel_version: facts.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: AGENT_VERSION.into(),
            machine_id: facts.machine_id.clone(),
            operating_system: facts.operating_system.clone(),
            os_image: facts.os_image.clone(),
            system_uuid: facts.system_uuid.clone(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// Ready, MemoryPressure, DiskPressure and PIDPressure, with the kubelet's reasons.
pub fn node_conditions(
    facts: &HostFacts,
    previous: Option<&[NodeCondition]>,
    now: Timestamp,
) -> Vec<NodeCondition> {
    let memory_pressure = facts.memory_available_bytes < MEMORY_EVICTION_BYTES;
    let disk_pressure = facts.storage_bytes > 0
        && facts.storage_available_bytes * 100 < facts.storage_bytes * DISK_EVICTION_PERCENT;
    let pid_free = facts.pid_max.saturating_sub(facts.pids_in_use);
    let pid_pressure = facts.pid_max > 0 && pid_free * 100 < facts.pid_max * PID_EVICTION_PERCENT;
    let table = [
        (
            "MemoryPressure",
            memory_pressure,
            (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            ),
            (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
        ),
        (
            "DiskPressure",
            disk_pressure,
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        (
            "PIDPressure",
            pid_pressure,
            (
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            ),
            (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        ),
        (
            "Ready",
            true,
            ("KubeletReady", "kubelet is posting ready status"),
            ("KubeletNotReady", "kubelet is not ready"),
        ),
    ];
    table
        .into_iter()
        .map(|(type_, on, (r_on, m_on), (r_off, m_off))| {
            let status = if on { "True" } else { "False" };
            let (reason, message) = if on { (r_on, m_on) } else { (r_off, m_off) };
            let transition = previous
                .and_then(|p| p.iter().find(|c| c.type_ == type_))
                .filter(|c| c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            NodeCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: Some(transition),
            }
        })
        .collect()
}

/// True when `new` says something `old` did not, heartbeat times aside.
pub fn status_changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeHost;
    use crate::host::HostInfo as _;

    fn rv() -> RuntimeVersion {
        RuntimeVersion {
            name: "runc".into(),
            version: "1.1.5".into(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid time")
    }

    #[test]
    fn status_reports_capacity_info_and_ready() {
        let mut config = AgentConfig::new("n1", "/d");
        config.zone = Some("z1".into());
        config.rack = Some("r7".into());
        config.labels.insert("team".into(), "infra".into());
        let facts = FakeHost::sample("host-a").facts();
        let s = node_status(&config, &facts, &rv(), None, at(0));
        let cap = s.capacity.as_ref().expect("capacity");
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(cap["memory"].0, "8388608Ki");
        assert_eq!(cap["pods"].0, "110");
        let alloc = s.allocatable.as_ref().expect("allocatable");
        assert_eq!(alloc["memory"].0, "8286208Ki");
        let info = s.node_info.as_ref().expect("nodeInfo");
        assert_eq!(info.container_runtime_version, "runc://1.1.5");
        assert_eq!(info.kubelet_version, "v1.32.0-gantry");
        assert_eq!(info.os_image, "Debian GNU/Linux 12 (bookworm)");
        let ready = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            s.addresses.as_ref().expect("addresses")[0].address,
            "192.0.2.10"
        );
        let labels = node_labels(&config, &facts);
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["topology.kubernetes.io/zone"], "z1");
        assert_eq!(labels["topology.gantry.dev/rack"], "r7");
        assert_eq!(labels["team"], "infra");
    }

    #[test]
    fn transitions_keep_their_time_until_the_status_flips() {
        let config = AgentConfig::new("n1", "/d");
        let host = FakeHost::sample("h");
        let first = node_status(&config, &host.facts(), &rv(), None, at(0));
        let second = node_status(&config, &host.facts(), &rv(), Some(&first), at(10));
        assert!(!status_changed(&first, &second), "only heartbeats moved");
        host.update(|f| f.memory_available_bytes = 50 << 20);
        let third = node_status(&config, &host.facts(), &rv(), Some(&second), at(20));
        assert!(status_changed(&second, &third));
        let cond = |s: &NodeStatus, t: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .cloned()
                .expect("condition")
        };
        let mem = cond(&third, "MemoryPressure");
        assert_eq!(mem.status, "True");
        assert_eq!(mem.reason.as_deref(), Some("KubeletHasInsufficientMemory"));
        assert_eq!(mem.last_transition_time, Some(Time(at(20))));
        assert_eq!(
            cond(&third, "Ready").last_transition_time,
            Some(Time(at(0)))
        );
    }
}
