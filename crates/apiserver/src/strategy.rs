//! Per-kind rules the generic handlers apply: what a create resets, what an update carries
//! over, the Scale view of scalable kinds, and ClusterIP/NodePort allocation for Services.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use gantry_api::registry::{ResourceType, Subresource};
use gantry_api::selector::LabelSelector;
use gantry_store::Store;
use serde_json::{json, Value};

use crate::object;
use crate::server::ApiServer;
use crate::status::ApiError;

/// The Service CIDR ClusterIPs come from (upstream's default, 10.96.0.0/12).
pub const SERVICE_CIDR: (Ipv4Addr, u32) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// NodePorts come from 30000-32767 as upstream.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Clears what a client may not set at creation: status of kinds with a status subresource
/// starts from its initial value.
pub fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    if !rt.has_subresource(Subresource::Status) || rt.plural == "nodes" {
        return;
    }
    let status = match rt.plural {
        "pods" => json!({"phase": "Pending", "qosClass": qos_class(obj)}),
        "namespaces" => json!({"phase": "Active"}),
        "services" => json!({"loadBalancer": {}}),
        _ => json!({}),
    };
    obj["status"] = status;
}

/// Rules that need the final name and uid: a Job without `manualSelector` gets the
/// generated selector and template labels upstream gives it.
pub fn prepare_named(rt: &ResourceType, obj: &mut Value) {
    if rt.plural != "jobs"
        || obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
    {
        return;
    }
    let uid = object::uid(obj).to_string();
    let name = object::name(obj).to_string();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    if !obj
        .pointer("/spec/template/metadata")
        .is_some_and(Value::is_object)
    {
        obj["spec"]["template"]["metadata"] = json!({});
    }
    let meta = &mut obj["spec"]["template"]["metadata"];
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta["labels"] = json!({});
    }
    let labels = &mut meta["labels"];
    labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    labels["batch.kubernetes.io/job-name"] = json!(name);
    labels["controller-uid"] = json!(uid);
    labels["job-name"] = json!(name);
}

/// Fields an update keeps from the stored object when the client leaves them out.
pub fn prepare_for_update(rt: &ResourceType, old: &Value, new: &mut Value) {
    if rt.plural == "services" {
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            let missing = new
                .pointer(&format!("/spec/{f}"))
                .is_none_or(|v| v.is_null() || v == "");
            if missing {
                if let Some(v) = old.pointer(&format!("/spec/{f}")) {
                    new["spec"][f] = v.clone();
                }
            }
        }
    }
}

/// Kubernetes' QoS class of a pod from its containers' requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The `autoscaling/v1` Scale view of a scalable object.
pub fn to_scale(obj: &Value) -> Value {
    let meta = object::meta(obj).cloned().unwrap_or_default();
    let mut m = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            m.insert(f.into(), v.clone());
        }
    }
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

impl<S: Store> ApiServer<S> {
    /// Gives a new Service its ClusterIP and NodePorts.
    pub(crate) async fn allocate_service(&self, svc: &mut Value) -> Result<(), ApiError> {
        let _guard = self.alloc_lock.lock().await;
        let rt =
            gantry_api::registry::by_plural("", "v1", "services").expect("services are served");
        let mut used_ips = HashSet::new();
        let mut used_ports = HashSet::new();
        for kv in self.store.range(&rt.key_prefix(), None, 0).kvs {
            let Ok(other) = object::decode(&kv) else {
                continue;
            };
            if let Some(ip) = other.pointer("/spec/clusterIP").and_then(Value::as_str) {
                used_ips.insert(ip.to_string());
            }
            for p in other
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
                    used_ports.insert(np);
                }
            }
        }
        let name = object::name(svc).to_string();
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if ty != "ExternalName" {
            let requested = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let ip = if requested == "None" {
                requested
            } else if !requested.is_empty() {
                if used_ips.contains(&requested) {
                    return Err(ApiError::invalid(
                        rt,
                        &name,
                        format!("Service \"{name}\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated"),
                        vec![json!({"reason":"FieldValueInvalid","message":format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated"),"field":"spec.clusterIPs"})],
                    ));
                }
                requested
            } else {
                free_ip(&used_ips, &name).ok_or_else(|| {
                    ApiError::Internal(
                        "failed to allocate a ClusterIP: the service range is full".to_string(),
                    )
                })?
            };
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
            if ip != "None" || svc.pointer("/spec/ipFamilies").is_none() {
                svc["spec"]["ipFamilies"] = json!(["IPv4"]);
                svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            let mut next = *NODE_PORTS.start() + (hash(&name) % 2768) as i64;
            if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("nodePort").and_then(Value::as_i64).is_some() {
                        continue;
                    }
                    let mut tries = 0;
                    while used_ports.contains(&next) && tries < 2768 {
                        next = if next >= *NODE_PORTS.end() {
                            *NODE_PORTS.start()
                        } else {
                            next + 1
                        };
                        tries += 1;
                    }
                    used_ports.insert(next);
                    p["nodePort"] = json!(next);
                }
            }
        }
        Ok(())
    }
}

/// A free address in the service CIDR, starting at a hash of the name so that allocation
/// spreads out; `.1` is kept for the `kubernetes` Service.
fn free_ip(used: &HashSet<String>, name: &str) -> Option<String> {
    let (base, bits) = SERVICE_CIDR;
    let size = 1u32 << (32 - bits);
    let base = u32::from(base);
    let start = (hash(name) as u32) % (size - 3) + 2;
    (0..size - 3)
        .map(|i| (start - 2 + i) % (size - 3) + 2)
        .map(|off| Ipv4Addr::from(base + off).to_string())
        .find(|ip| !used.contains(ip))
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_follows_requests_and_limits() {
        let best = json!({"spec":{"containers":[{"name":"a","image":"x"}]}});
        assert_eq!(qos_class(&best), "BestEffort");
        let guaranteed = json!({"spec":{"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burstable =
            json!({"spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]}});
        assert_eq!(qos_class(&burstable), "Burstable");
    }

    #[test]
    fn allocated_ips_skip_used_ones_and_stay_in_range() {
        let mut used = HashSet::new();
        let first = free_ip(&used, "web").expect("range has room");
        used.insert(first.clone());
        let second = free_ip(&used, "web").expect("range has room");
        assert_ne!(first, second);
        assert!(second.starts_with("10."));
        assert_ne!(second, "10.96.0.1");
    }
}
