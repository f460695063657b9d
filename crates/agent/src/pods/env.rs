//! A container's environment: the image's env, then `envFrom`, then `env` (later wins),
//! with `valueFrom` (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef) resolved and
//! `$(VAR)` expanded against the variables defined before.
//! One thing to know: this is pure; the worker fetches the referenced ConfigMaps and Secrets
//! first and passes them in [`EnvSources`] (absent ones simply missing from the maps).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::command::expand;
use super::resources::{parse_quantity_millis, resource_value};

/// Everything env resolution may read besides the pod itself.
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    /// ConfigMap name → data (binaryData is not exposed as env, as upstream).
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name → decoded data.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    pub host_ip: Option<String>,
    pub pod_ip: Option<String>,
    /// Node allocatable CPU (millicores) and memory (bytes): limits default to these.
    pub node_cpu_millis: u64,
    pub node_memory_bytes: u64,
}

/// Why a container's environment cannot be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0:?}")]
    FieldRef(String),
    #[error("unsupported resourceFieldRef {0:?}")]
    ResourceFieldRef(String),
}

/// The ConfigMaps and Secrets a container's env refers to: (config maps, secrets).
pub fn referenced_sources(c: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for from in c.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for e in c.env.iter().flatten() {
        if let Some(vf) = &e.value_from {
            if let Some(r) = &vf.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &vf.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// The environment of `c` in `pod`, in definition order, each name once.
pub fn resolve_env(
    pod: &Pod,
    c: &Container,
    image_env: &[String],
    src: &EnvSources,
) -> Result<Vec<(String, String)>, EnvError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| match out
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    };
    for kv in image_env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        set(&mut out, k.to_string(), v.to_string());
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            match src.config_maps.get(&r.name) {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        } else if let Some(r) = &from.secret_ref {
            match src.secrets.get(&r.name) {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            set(&mut out, format!("{prefix}{k}"), v.clone());
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => {
                let vars: HashMap<String, String> = out.iter().cloned().collect();
                expand(e.value.as_deref().unwrap_or(""), &vars)
            }
            Some(vf) => {
                if let Some(r) = &vf.config_map_key_ref {
                    match src.config_maps.get(&r.name).map(|d| d.get(&r.key)) {
                        Some(Some(v)) => v.clone(),
                        _ if r.optional == Some(true) => continue,
                        None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                        Some(None) => {
                            return Err(EnvError::ConfigMapKey {
                                namespace: ns,
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    }
                } else if let Some(r) = &vf.secret_key_ref {
                    match src.secrets.get(&r.name).map(|d| d.get(&r.key)) {
                        Some(Some(v)) => v.clone(),
                        _ if r.optional == Some(true) => continue,
                        None => return Err(EnvError::SecretNotFound(r.name.clone())),
                        Some(None) => {
                            return Err(EnvError::SecretKey {
                                namespace: ns,
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    }
                } else if let Some(r) = &vf.field_ref {
                    field_value(pod, &r.field_path, src)?
                } else if let Some(r) = &vf.resource_field_ref {
                    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(name) => all_containers(pod)
                            .find(|x| x.name == name)
                            .ok_or_else(|| EnvError::ResourceFieldRef(r.resource.clone()))?,
                        None => c,
                    };
                    let divisor = match &r.divisor {
                        Some(q) => parse_quantity_millis(&q.0)
                            .filter(|d| *d > 0)
                            .ok_or_else(|| EnvError::ResourceFieldRef(r.resource.clone()))?,
                        None => 1000,
                    };
                    let node = (src.node_cpu_millis, src.node_memory_bytes);
                    resource_value(target, &r.resource, divisor, node)
                        .ok_or_else(|| EnvError::ResourceFieldRef(r.resource.clone()))?
                } else {
                    String::new()
                }
            }
        };
        set(&mut out, e.name.clone(), value);
    }
    Ok(out)
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

/// The downward API's `fieldRef` paths.
fn field_value(pod: &Pod, path: &str, src: &EnvSources) -> Result<String, EnvError> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let v = match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => src.host_ip.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => src.pod_ip.clone().unwrap_or_default(),
        _ => keyed("metadata.labels['", m.labels.as_ref())
            .or_else(|| keyed("metadata.annotations['", m.annotations.as_ref()))
            .ok_or_else(|| EnvError::FieldRef(path.to_string()))?,
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns1", "uid": "u-1",
                         "labels": {"app": "shop"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c", "image": "img",
                "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                            {"secretRef": {"name": "absent", "optional": true}}],
                "env": [
                    {"name": "PATH", "value": "/custom"},
                    {"name": "GREETING", "value": "hi $(POD)"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "LATE", "value": "$(POD)"},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
                    {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": true}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                    {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
                ]}]}
        }))
        .expect("pod")
    }

    fn sources() -> EnvSources {
        EnvSources {
            config_maps: BTreeMap::from([(
                "cm".to_string(),
                BTreeMap::from([("color".to_string(), "blue".to_string())]),
            )]),
            secrets: BTreeMap::from([(
                "s".to_string(),
                BTreeMap::from([("password".to_string(), "hunter2".to_string())]),
            )]),
            host_ip: Some("192.0.2.10".into()),
            pod_ip: None,
            node_cpu_millis: 4000,
            node_memory_bytes: 8 << 30,
        }
    }

    #[test]
    fn resolves_every_kind_of_source_in_order() {
        let p = pod();
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let env = resolve_env(&p, c, &["PATH=/usr/bin".into(), "IMG=1".into()], &sources())
            .expect("env resolves");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/custom"), "pod env overrides image env");
        assert_eq!(get("IMG"), Some("1"));
        assert_eq!(get("CM_color"), Some("blue"));
        assert_eq!(get("GREETING"), Some("hi $(POD)"), "POD is defined later");
        assert_eq!(get("LATE"), Some("web"));
        assert_eq!(get("APP"), Some("shop"));
        assert_eq!(get("HOST"), Some("192.0.2.10"));
        assert_eq!(get("PASS"), Some("hunter2"));
        assert_eq!(get("COLOR"), Some("blue"));
        assert_eq!(get("OPT"), None);
        assert_eq!(get("MEM"), Some("64"));
        assert_eq!(get("CPU"), Some("250"));
        assert_eq!(get("CPUS"), Some("1"), "cpu rounds up to whole cores");
        assert_eq!(env[0].0, "PATH", "definition order is kept");
    }

    #[test]
    fn missing_sources_are_config_errors() {
        let p = pod();
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let mut src = sources();
        src.secrets.clear();
        assert_eq!(
            resolve_env(&p, c, &[], &src),
            Err(EnvError::SecretNotFound("s".into()))
        );
        let mut src = sources();
        src.config_maps.clear();
        assert_eq!(
            resolve_env(&p, c, &[], &src),
            Err(EnvError::ConfigMapNotFound("cm".into()))
        );
        let (cms, secrets) = referenced_sources(c);
        assert_eq!(cms, vec!["cm"]);
        assert_eq!(secrets, vec!["absent", "s"]);
    }
}
