//! `GET|POST pods/<name>/exec`: proxies kubectl's WebSocket upgrade to the agent that runs the
//! pod (`/exec/<ns>/<pod>/<container>?<query>` on its HTTPS endpoint) and, once both sides
//! switched protocols, splices the two connections byte for byte.
//!
//! One thing to know: the agent does the WebSocket handshake (its `Sec-WebSocket-Accept` is
//! computed from kubectl's key, which we forward), so this module never parses frames. SPDY,
//! kubectl's fallback, is refused with a Status.

use bytes::Bytes;
use gantry_store::Store;
use http::{header, HeaderName, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tracing::{debug, info, Instrument as _};

use crate::codec::{self, Body};
use crate::nodeproxy::{encode_component, NodeTarget};
use crate::request::{Query, ResourcePath};
use crate::server::ApiServer;
use crate::status::ApiError;

/// Headers of the opening handshake that go to the agent unchanged.
const FORWARDED: [HeaderName; 5] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
];

/// Headers of the agent's 101 that go back to the client.
const RETURNED: [HeaderName; 4] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_PROTOCOL,
];

impl<S: Store> ApiServer<S> {
    pub(crate) async fn pod_exec(
        &self,
        mut req: Request<Incoming>,
        path: ResourcePath,
        query: Query,
    ) -> Result<Response<Body>, ApiError> {
        if req.method() != Method::GET && req.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed(format!(
                "{} is not supported on pods/exec",
                req.method()
            )));
        }
        if !wants_websocket(&req) {
            return Err(ApiError::BadRequest(
                "pods/exec is served over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); \
                 SPDY upgrades are not supported"
                    .to_string(),
            ));
        }
        let ns = path.namespace.clone().unwrap_or_default();
        let name = path.name.clone().unwrap_or_default();
        let NodeTarget {
            container,
            host,
            port,
            client,
        } = self.node_target(path.rt, &ns, &name, query.get("container"))?;
        let agent_path = format!(
            "/exec/{}/{}/{}?{}",
            encode_component(&ns),
            encode_component(&name),
            encode_component(&container),
            req.uri().query().unwrap_or("")
        );
        let mut agent_req = Request::get(agent_path)
            .body(Empty::<Bytes>::new())
            .map_err(|e| ApiError::Internal(format!("failed to build the exec request: {e}")))?;
        for h in FORWARDED {
            for v in req.headers().get_all(&h) {
                agent_req.headers_mut().append(h.clone(), v.clone());
            }
        }
        let client_upgrade = hyper::upgrade::on(&mut req);
        let (agent_resp, agent_io) = client.upgrade(&host, port, agent_req).await?;
        let Some(agent_io) = agent_io else {
            // The agent refused: pass its answer (a Status) through.
            let (parts, body) = agent_resp.into_parts();
            let bytes = Limited::new(body, 1 << 20)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let ct = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            return Ok(codec::bytes_response(
                parts.status.as_u16(),
                &ct,
                bytes.to_vec(),
            ));
        };
        let pod = format!("{ns}/{name}");
        tokio::spawn(
            async move {
                let client_io = match client_upgrade.await {
                    Ok(io) => io,
                    Err(e) => {
                        debug!(error = %e, "exec client upgrade failed");
                        return;
                    }
                };
                let (mut a, mut b) = (TokioIo::new(client_io), TokioIo::new(agent_io));
                match tokio::io::copy_bidirectional(&mut a, &mut b).await {
                    Ok((up, down)) => info!(up, down, "exec stream closed"),
                    Err(e) => debug!(error = %e, "exec stream ended with an error"),
                }
            }
            .instrument(tracing::info_span!("exec", pod = %pod, container = %container)),
        );
        let mut resp = Response::new(codec::full(Vec::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for h in RETURNED {
            for v in agent_resp.headers().get_all(&h) {
                resp.headers_mut().append(h.clone(), v.clone());
            }
        }
        Ok(resp)
    }
}

/// An HTTP/1.1 `Upgrade: websocket` request (kubectl 1.30+, client-go's WebSocket executor).
fn wants_websocket<B>(req: &Request<B>) -> bool {
    req.version() == http::Version::HTTP_11
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http1_websocket_upgrades_are_accepted() {
        let ws = Request::get("/x")
            .header(header::UPGRADE, "WebSocket")
            .body(())
            .expect("request");
        assert!(wants_websocket(&ws));
        let spdy = Request::post("/x")
            .header(header::UPGRADE, "SPDY/3.1")
            .body(())
            .expect("request");
        assert!(!wants_websocket(&spdy));
    }
}
