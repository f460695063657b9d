//! Resource arithmetic for scheduling: parsing `Quantity` strings and computing a pod's
//! effective requests the way kube-scheduler does (init containers, sidecars, overhead).
//! CPU is kept in millicores, everything else in whole units (bytes, pods, devices), rounded up.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// Requests assumed for scoring when a container requests nothing (upstream's non-zero defaults).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A set of resource amounts: CPU in millicores, the rest in base units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended and other scalar resources (`nvidia.com/gpu`, `hugepages-2Mi`, …).
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a resource list (requests, allocatable, overhead). Unparsable quantities count as
    /// zero: the API server validates them, so this only guards against foreign data.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                CPU => r.milli_cpu = parse_milli(&q.0).unwrap_or(0),
                MEMORY => r.memory = parse_units(&q.0).unwrap_or(0),
                EPHEMERAL_STORAGE => r.ephemeral_storage = parse_units(&q.0).unwrap_or(0),
                PODS => {}
                other => {
                    r.scalar
                        .insert(other.to_string(), parse_units(&q.0).unwrap_or(0));
                }
            }
        }
        r
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// The pod count a node allows (`status.allocatable.pods`), zero when absent.
pub fn allowed_pods(list: Option<&BTreeMap<String, Quantity>>) -> i64 {
    list.and_then(|l| l.get(PODS))
        .and_then(|q| parse_units(&q.0))
        .unwrap_or(0)
}

/// A pod's effective requests: max(sum of app containers + sidecars, the peak during init) +
/// overhead. Sidecars (init containers with `restartPolicy: Always`) keep running, so they add
/// to every later init container and to the app containers.
pub fn pod_requests(pod: &Pod) -> Resources {
    pod_requests_with(pod, |c| Resources::from_list(requests_of(c)))
}

/// Like [`pod_requests`] but with upstream's non-zero defaults for CPU and memory, used only
/// for scoring so that pods without requests still spread.
pub fn pod_requests_non_zero(pod: &Pod) -> Resources {
    pod_requests_with(pod, |c| {
        let mut r = Resources::from_list(requests_of(c));
        if !has_request(c, CPU) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has_request(c, MEMORY) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
        r
    })
}

fn pod_requests_with(pod: &Pod, container: impl Fn(&Container) -> Resources) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container(c));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let own = container(c);
        let during = if c.restart_policy.as_deref() == Some("Always") {
            total.add(&own);
            sidecars.add(&own);
            sidecars.clone()
        } else {
            let mut r = own;
            r.add(&sidecars);
            r
        };
        init_peak.max_with(&during);
    }
    total.max_with(&init_peak);
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

fn requests_of(c: &Container) -> Option<&BTreeMap<String, Quantity>> {
    c.resources.as_ref().and_then(|r| r.requests.as_ref())
}

fn has_request(c: &Container, name: &str) -> bool {
    requests_of(c).is_some_and(|r| r.contains_key(name))
}

pub use gantry_api::quantity::{parse_milli, parse_units};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, pod};

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("0.0001"), Some(1), "rounds up");
        assert_eq!(parse_milli("2e3"), Some(2_000_000));
        assert_eq!(parse_units("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(parse_units("1Gi"), Some(1 << 30));
        assert_eq!(parse_units("1G"), Some(1_000_000_000));
        assert_eq!(parse_units("1.5k"), Some(1500));
        assert_eq!(parse_units("110"), Some(110));
        assert_eq!(parse_units("500m"), Some(1), "memory rounds up to a byte");
        assert_eq!(parse_units("+3"), Some(3));
        assert_eq!(parse_units("-3"), Some(-3));
        assert_eq!(parse_units(""), None);
        assert_eq!(parse_units("abc"), None);
        assert_eq!(parse_units("1Zi"), None);
    }

    #[test]
    fn sums_app_containers_and_adds_overhead() {
        let mut p = pod(
            "p",
            vec![
                container(&[("cpu", "100m"), ("memory", "1Mi")]),
                container(&[("cpu", "200m"), ("nvidia.com/gpu", "1")]),
            ],
        );
        p.spec.as_mut().expect("spec").overhead =
            Some([("cpu".to_string(), Quantity("50m".into()))].into());
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 350);
        assert_eq!(r.memory, 1024 * 1024);
        assert_eq!(r.scalar.get("nvidia.com/gpu"), Some(&1));
    }

    #[test]
    fn init_containers_count_as_their_peak() {
        let mut p = pod("p", vec![container(&[("cpu", "100m"), ("memory", "10")])]);
        p.spec.as_mut().expect("spec").init_containers = Some(vec![
            container(&[("cpu", "500m")]),
            container(&[("cpu", "200m"), ("memory", "50")]),
        ]);
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 500, "max of init (500m) vs sum of app (100m)");
        assert_eq!(r.memory, 50);
    }

    #[test]
    fn sidecars_add_to_later_init_containers_and_apps() {
        let mut p = pod("p", vec![container(&[("cpu", "100m")])]);
        let mut sidecar = container(&[("cpu", "300m")]);
        sidecar.restart_policy = Some("Always".into());
        p.spec.as_mut().expect("spec").init_containers =
            Some(vec![sidecar, container(&[("cpu", "500m")])]);
        // during init: 300 + 500 = 800; running: 100 + 300 = 400
        assert_eq!(pod_requests(&p).milli_cpu, 800);
    }

    #[test]
    fn non_zero_defaults_apply_per_container() {
        let p = pod("p", vec![container(&[]), container(&[("cpu", "1")])]);
        let r = pod_requests_non_zero(&p);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&p).memory == 0);
    }
}
