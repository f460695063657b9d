//! What the benchmarks write, in the same sizes for both servers: ConfigMaps and Pods as
//! Kubernetes JSON through Gantry's API, and the same JSON bytes as etcd values under the
//! keys the Kubernetes API server would use, through etcd's v3 JSON gateway.
//! Also latency summaries and table rows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::http::Client;

/// The server a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gantry,
    Etcd,
}

impl Kind {
    /// The name printed in result tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Gantry => "Gantry",
            Kind::Etcd => "etcd 3.4",
        }
    }
}

/// A client for one server plus how to phrase writes for it.
#[derive(Clone)]
pub struct Target {
    pub kind: Kind,
    pub label: String,
    pub client: Arc<Client>,
}

impl Target {
    /// Creates a ~1 KiB ConfigMap `name` in `namespace` (etcd: puts the same bytes).
    pub async fn create_configmap(&self, namespace: &str, name: &str) -> Result<()> {
        let obj = configmap(name);
        self.create("configmaps", namespace, name, obj).await
    }

    /// Creates a small realistic Pod `name` in `namespace` (etcd: puts the same bytes).
    pub async fn create_pod(&self, namespace: &str, name: &str) -> Result<()> {
        let obj = pod(namespace, name);
        self.create("pods", namespace, name, obj).await
    }

    /// Creates `obj` (JSON) as `resource` `ns/name`: POST to Gantry, put to etcd.
    pub async fn create(&self, resource: &str, ns: &str, name: &str, obj: Vec<u8>) -> Result<()> {
        let (path, body, want) = match self.kind {
            Kind::Gantry => (format!("/api/v1/namespaces/{ns}/{resource}"), obj, 201),
            Kind::Etcd => {
                let key = format!("/registry/{resource}/{ns}/{name}");
                let body = json!({"key": B64.encode(key), "value": B64.encode(&obj)});
                ("/v3/kv/put".to_string(), body.to_string().into_bytes(), 200)
            }
        };
        let (code, resp) = self
            .client
            .send(Method::POST, &path, Some(Bytes::from(body)))
            .await?;
        if code != want {
            bail!(
                "create {name}: HTTP {code}: {}",
                String::from_utf8_lossy(&resp[..resp.len().min(300)])
            );
        }
        Ok(())
    }
}

/// A ConfigMap of about 1 KiB of JSON.
pub fn configmap(name: &str) -> Vec<u8> {
    let filler = "x".repeat(1024 - 110 - name.len());
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"value": filler},
    })
    .to_string()
    .into_bytes()
}

/// A small Pod as a user would write it: labels, one container with image and resources.
pub fn pod(namespace: &str, name: &str) -> Vec<u8> {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "web", "tier": "frontend", "release": "stable"},
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example.com/team/web:1.4.2",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
            }],
        },
    })
    .to_string()
    .into_bytes()
}

/// Latency percentiles of a set of samples.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let pct = |p: f64| {
            let i = ((samples.len() as f64 * p).ceil() as usize).saturating_sub(1);
            samples[i.min(samples.len() - 1)]
        };
        Summary {
            count: samples.len(),
            p50: pct(0.50),
            p99: pct(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Bytes as MiB with one decimal.
pub fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_is_about_one_kib() {
        let n = configmap("c64-w12-123456").len();
        assert!((1000..=1100).contains(&n), "{n}");
    }

    #[test]
    fn percentiles_pick_nearest_rank() {
        let s = Summary::of((1..=100).map(Duration::from_millis).collect());
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
    }
}
