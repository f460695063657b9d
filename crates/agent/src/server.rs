//! The agent's HTTPS endpoint, which the API server proxies `pods/log` and `pods/exec` (and
//! later attach, port-forward) to: `GET /containerLogs/<namespace>/<pod>/<container>` with
//! kubectl's log options, and `GET /exec/<namespace>/<pod>/<container>` upgraded to WebSocket
//! (`exec.rs`). Requests must carry the cluster's bearer token.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gantry_runtime::container::logs::{self, LogOptions};
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tracing::debug;

use crate::oci::OciRuntime;

type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// Settings of the agent's server.
pub struct ServerConfig {
    /// PEM certificate chain and key, signed by the cluster CA for the node's addresses.
    pub cert_pem: String,
    pub key_pem: String,
    /// The token the API server presents.
    pub token: String,
}

/// Serves on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    runtime: Arc<OciRuntime>,
) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
        .map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let token = Arc::new(config.token);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let runtime = runtime.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let runtime = runtime.clone();
                let token = token.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &runtime, &token).await) }
            });
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                debug!(peer = %peer, error = %e, "agent connection ended with an error");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, runtime: &Arc<OciRuntime>, token: &str) -> Response<Body> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == token);
    if !authorized {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    match segs
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["containerLogs", ns, pod, container] => {
            container_logs(runtime, ns, pod, container, &query).await
        }
        ["exec", ns, pod, container] => {
            let target = crate::exec::Target {
                namespace: ns.to_string(),
                pod: pod.to_string(),
                container: container.to_string(),
                pod_uid: find_pod_logs(runtime, ns, pod, container).map(|(uid, _)| uid),
            };
            let opts = crate::exec::ExecOptions::parse(&query, decode);
            crate::exec::serve(req, runtime, target, opts)
        }
        _ => status(404, "NotFound", &format!("no handler for {path}")),
    }
}

async fn container_logs(
    runtime: &Arc<OciRuntime>,
    ns: &str,
    pod: &str,
    container: &str,
    query: &str,
) -> Response<Body> {
    let q = |k: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(key, _)| *key == k)
            .map(|(_, v)| decode(v))
    };
    let flag = |k: &str| q(k).is_some_and(|v| v == "true" || v == "1");
    let previous = flag("previous");
    let Some((uid, dir)) = find_pod_logs(runtime, ns, pod, container) else {
        return status(
            404,
            "NotFound",
            &format!("no logs for container {container} in pod {ns}/{pod}"),
        );
    };
    let Some(file) = log_file(&dir, previous) else {
        let msg = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" has no log yet")
        };
        return status(400, "BadRequest", &msg);
    };
    let since = q("sinceSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| SystemTime::now() - Duration::from_secs(s))
        .or_else(|| {
            q("sinceTime").and_then(|t| gantry_runtime::container::time::parse_rfc3339(&t))
        });
    let opts = LogOptions {
        follow: flag("follow") && !previous,
        tail_lines: q("tailLines").and_then(|v| v.parse().ok()),
        since,
        timestamps: flag("timestamps"),
        limit_bytes: q("limitBytes").and_then(|v| v.parse().ok()),
    };
    let running = Arc::new(AtomicBool::new(true));
    if opts.follow {
        let (runtime, uid, container, running) = (
            runtime.clone(),
            uid.clone(),
            container.to_string(),
            running.clone(),
        );
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                if !runtime.is_running(&uid, &container).await {
                    running.store(false, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let flag_running = running.clone();
    tokio::spawn(async move {
        let _ = logs::stream(&file, &opts, || flag_running.load(Ordering::Relaxed), &tx).await;
        running.store(false, Ordering::Relaxed);
    });
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| {
            (
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(b))),
                rx,
            )
        })
    }))
    .boxed_unsync();
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// The log directory of `container` in the newest instance of pod `ns/pod`, with the pod uid.
fn find_pod_logs(
    runtime: &OciRuntime,
    ns: &str,
    pod: &str,
    container: &str,
) -> Option<(String, PathBuf)> {
    let root = runtime.log_dir(ns, pod, "", container);
    let logs_root = root.parent()?.parent()?.to_path_buf();
    let prefix = format!("{ns}_{pod}_");
    let mut best: Option<(SystemTime, String, PathBuf)> = None;
    for entry in std::fs::read_dir(&logs_root).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(uid) = name.strip_prefix(&prefix) else {
            continue;
        };
        let dir = entry.path().join(container);
        let modified = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if dir.is_dir() && best.as_ref().is_none_or(|(t, _, _)| modified > *t) {
            best = Some((modified, uid.to_string(), dir));
        }
    }
    best.map(|(_, uid, dir)| (uid, dir))
}

/// `<n>.log` with the highest restart number, or the one before it for `previous`.
fn log_file(dir: &Path, previous: bool) -> Option<PathBuf> {
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    let pick = if previous {
        numbers.iter().rev().nth(1)
    } else {
        numbers.last()
    }?;
    Some(dir.join(format!("{pick}.log")))
}

pub(crate) fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":message,"reason":reason,"code":code});
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_log_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        for n in [0, 1, 2] {
            std::fs::write(dir.path().join(format!("{n}.log")), b"").expect("write");
        }
        assert_eq!(log_file(dir.path(), false), Some(dir.path().join("2.log")));
        assert_eq!(log_file(dir.path(), true), Some(dir.path().join("1.log")));
        let single = tempfile::tempdir().expect("temp dir");
        std::fs::write(single.path().join("0.log"), b"").expect("write");
        assert_eq!(log_file(single.path(), true), None);
        assert_eq!(decode("a%2Fb"), "a/b");
    }
}
