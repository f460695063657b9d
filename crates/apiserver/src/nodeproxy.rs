//! Streams that live on nodes (container logs; exec in `exec.rs`; attach and port-forward next),
//! proxied by the API server to the node agent that runs the pod.
//!
//! The agent serves HTTPS on the node's InternalIP at `daemonEndpoints.kubeletEndpoint.Port`
//! with a certificate signed by the cluster CA; the API server checks it against that CA and
//! authenticates with its node-client token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gantry_store::Store;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::codec::{self, Body};
use crate::crud::RequestContext;
use crate::request::percent_decode;
use crate::server::ApiServer;
use crate::status::ApiError;

/// How the API server reaches node agents.
#[derive(Clone)]
pub struct NodeClient {
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient").finish_non_exhaustive()
    }
}

impl NodeClient {
    /// Trusts agents whose serving certificates chain to `ca_pem`.
    pub fn new(ca_pem: &str, token: String) -> Result<NodeClient, crate::PkiError> {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| crate::PkiError::Pem {
                path: "ca".into(),
                detail: e.to_string(),
            })?;
            roots.add(cert)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(NodeClient {
            tls: Arc::new(tls),
            token,
        })
    }

    /// GETs `path_and_query` from the agent at `host:port`; the answer streams back as is.
    pub async fn get(
        &self,
        host: &str,
        port: u16,
        path_and_query: &str,
    ) -> Result<Response<Body>, ApiError> {
        let unreachable = |e: String| node_unreachable(host, port, &e);
        let tls = self.connect(host, port).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path_and_query)
            .header(http::header::HOST, format!("{host}:{port}"))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (parts, mut incoming) = resp.into_parts();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = incoming.frame().await {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::from_parts(parts, codec::channel_body(rx)))
    }

    /// Sends `req` (an HTTP/1.1 upgrade request; Host and Authorization are added) to the
    /// agent. On 101 the answer comes with the upgraded connection.
    pub(crate) async fn upgrade(
        &self,
        host: &str,
        port: u16,
        mut req: Request<Empty<Bytes>>,
    ) -> Result<(Response<Incoming>, Option<hyper::upgrade::Upgraded>), ApiError> {
        let unreachable = |e: String| node_unreachable(host, port, &e);
        let tls = self.connect(host, port).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let headers = req.headers_mut();
        if let Ok(v) = http::HeaderValue::from_str(&format!("{host}:{port}")) {
            headers.insert(http::header::HOST, v);
        }
        if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let mut resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok((resp, None));
        }
        let upgraded = hyper::upgrade::on(&mut resp)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((resp, Some(upgraded)))
    }

    /// A TLS connection to the agent at `host:port`, its certificate checked against the CA.
    async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ApiError> {
        let unreachable = |e: String| node_unreachable(host, port, &e);
        let tcp = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| unreachable("connect timed out".to_string()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| unreachable(e.to_string()))?;
        tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(e.to_string()))
    }
}

fn node_unreachable(host: &str, port: u16, e: &str) -> ApiError {
    ApiError::Internal(format!(
        "failed to reach the node agent at {host}:{port}: {e}"
    ))
}

impl<S: Store> ApiServer<S> {
    /// `GET pods/<name>/log`: finds the pod's node and container and streams the agent's answer.
    pub(crate) async fn pod_log(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let ns = ctx.path.namespace.clone().unwrap_or_default();
        let name = ctx.path.name.clone().unwrap_or_default();
        let NodeTarget {
            container,
            host,
            port,
            client,
        } = self.node_target(ctx.path.rt, &ns, &name, ctx.query.get("container"))?;
        let mut query = Vec::new();
        for key in [
            "follow",
            "previous",
            "timestamps",
            "tailLines",
            "sinceSeconds",
            "sinceTime",
            "limitBytes",
        ] {
            if let Some(v) = ctx.query.get(key) {
                query.push(format!("{key}={}", encode_component(v)));
            }
        }
        let path = format!(
            "/containerLogs/{}/{}/{}?{}",
            encode_component(&ns),
            encode_component(&name),
            encode_component(&container),
            query.join("&")
        );
        client.get(&host, port, &path).await
    }

    /// Where a node stream of pod `ns/name` goes: its container (named or the only one), the
    /// agent's address, and the client to reach it. The container must have started.
    pub(crate) fn node_target(
        &self,
        rt: &gantry_api::registry::ResourceType,
        ns: &str,
        name: &str,
        container: Option<&str>,
    ) -> Result<NodeTarget<'_>, ApiError> {
        let pod = self
            .get_object(rt, Some(ns), name)?
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let container = pick_container(&pod, container)?;
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if node_name.is_empty() || !container_started(&pod, &container) {
            return Err(ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {}",
                waiting_reason(&pod, &container)
            )));
        }
        let nodes = gantry_api::registry::by_plural("", "v1", "nodes").expect("nodes are served");
        let node = self.get_object(nodes, None, node_name)?.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "node \"{node_name}\" of pod \"{name}\" does not exist"
            ))
        })?;
        let (host, port) = node_endpoint(&node).ok_or_else(|| {
            ApiError::BadRequest(format!("node \"{node_name}\" publishes no agent endpoint"))
        })?;
        let client = self.config.node_client.as_ref().ok_or_else(|| {
            ApiError::Internal("this API server has no node client configured".to_string())
        })?;
        Ok(NodeTarget {
            container,
            host,
            port,
            client,
        })
    }
}

/// The agent end of a pod's node stream.
pub(crate) struct NodeTarget<'a> {
    pub container: String,
    pub host: String,
    pub port: u16,
    pub client: &'a NodeClient,
}

/// The container a log request means: the one named, or the only one.
fn pick_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<String> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| {
            pod.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match requested {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None => {
            let app: Vec<String> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            match app.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::BadRequest(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    app.join(" ")
                ))),
            }
        }
    }
}

fn statuses(pod: &Value) -> impl Iterator<Item = &Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .into_iter()
    .flat_map(move |f| {
        pod.pointer(&format!("/status/{f}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    })
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    statuses(pod).find(|s| s.get("name").and_then(Value::as_str) == Some(container))
}

fn container_started(pod: &Value, container: &str) -> bool {
    container_status(pod, container).is_some_and(|s| {
        s.pointer("/state/running").is_some()
            || s.pointer("/state/terminated").is_some()
            || s.pointer("/lastState/terminated").is_some()
    })
}

fn waiting_reason(pod: &Value, container: &str) -> String {
    container_status(pod, container)
        .and_then(|s| s.pointer("/state/waiting/reason"))
        .and_then(Value::as_str)
        .unwrap_or("ContainerCreating")
        .to_string()
}

/// The agent's address: the node's InternalIP (else its first address) and kubelet port.
fn node_endpoint(node: &Value) -> Option<(String, u16)> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)?;
    let internal = addresses
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .or_else(|| addresses.first())?;
    let host = internal.get("address").and_then(Value::as_str)?.to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)?;
    Some((host, u16::try_from(port).ok()?))
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode_component(s: &str) -> String {
    let decoded = percent_decode(s);
    decoded
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_only_container_is_the_default_and_ambiguity_is_an_error() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, None).expect("only one"), "a");
        let two = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        let err = pick_container(&two, None).expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(
            pick_container(&two, Some("i")).expect("init containers have logs"),
            "i"
        );
        assert!(pick_container(&two, Some("z")).is_err());
    }

    #[test]
    fn endpoint_prefers_the_internal_ip() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                                     "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(node_endpoint(&node), Some(("10.0.0.5".to_string(), 10250)));
        assert_eq!(node_endpoint(&json!({"status": {}})), None);
    }
}
