//! The HTTPS server: TLS, HTTP/1.1 and HTTP/2, bearer-token authentication, one span per
//! request, and dispatch from routes to handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tracing::{debug, info, warn, Instrument};

use gantry_api::registry::Subresource;
use gantry_store::Store;

use crate::codec::{self, Body, MAX_BODY};
use crate::discovery;
use crate::request::{self, Query, Route};
use crate::status::ApiError;

/// Validated settings of an API server.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// The bearer token that authenticates the cluster admin.
    pub admin_token: String,
    /// `host:port` advertised in `/api`'s serverAddressByClientCIDRs.
    pub advertise_address: String,
    /// How to reach node agents for logs and other node-side streams (none: those fail).
    pub node_client: Option<crate::NodeClient>,
}

/// A Kubernetes-compatible API server over a store.
pub struct ApiServer<S: Store> {
    pub(crate) store: Arc<S>,
    pub(crate) config: ApiServerConfig,
    /// Serialises ClusterIP/NodePort allocation so two creates never take one address.
    pub(crate) alloc_lock: tokio::sync::Mutex<()>,
}

impl<S: Store> ApiServer<S> {
    pub fn new(store: Arc<S>, config: ApiServerConfig) -> Arc<ApiServer<S>> {
        Arc::new(ApiServer {
            store,
            config,
            alloc_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Serves HTTPS on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        debug!(peer = %peer, error = %e, "tls handshake failed");
                        return;
                    }
                };
                server.serve_connection(TokioIo::new(tls), peer).await;
            });
        }
    }

    async fn serve_connection<I>(self: Arc<Self>, io: I, peer: SocketAddr)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = self.clone();
            async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
            debug!(peer = %peer, error = %e, "connection ended with an error");
        }
    }

    /// Answers one request. Never fails: errors become Status responses.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
        async move {
            let resp = match self.dispatch(req).await {
                Ok(resp) => resp,
                Err(e) => codec::error_response(&e),
            };
            debug!(code = resp.status().as_u16(), "request done");
            resp
        }
        .instrument(span)
        .await
    }

    async fn dispatch(
        self: &Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_string();
        let route = request::route(&path);
        let public = matches!(route, Ok(Route::Version | Route::Health));
        if !public && !self.authenticated(&req) {
            return Err(ApiError::Unauthorized);
        }
        let route = route?;
        let method = req.method().clone();
        let query = Query::parse(req.uri().query());
        let accept = header_str(&req, header::ACCEPT);
        let content_type = header_str(&req, header::CONTENT_TYPE);
        let user_agent = header_str(&req, header::USER_AGENT);
        match route {
            Route::Version => Ok(codec::json_response(200, &discovery::version())),
            Route::Health => Ok(codec::bytes_response(
                200,
                "text/plain; charset=utf-8",
                b"ok".to_vec(),
            )),
            Route::CoreGroup => Ok(match discovery::aggregated_version(accept.as_deref()) {
                Some(v) => aggregated(&discovery::aggregated(true, v), v),
                None => codec::json_response(
                    200,
                    &discovery::api_versions(&self.config.advertise_address),
                ),
            }),
            Route::Groups => Ok(match discovery::aggregated_version(accept.as_deref()) {
                Some(v) => aggregated(&discovery::aggregated(false, v), v),
                None => codec::json_response(200, &discovery::api_group_list()),
            }),
            Route::Group(g) => Ok(codec::json_response(200, &discovery::api_group(&g))),
            Route::GroupVersion(g, v) => Ok(codec::json_response(
                200,
                &discovery::api_resource_list(&g, &v),
            )),
            Route::OpenApiV2 => Ok(codec::bytes_response(
                200,
                gantry_api::openapi::V2_CONTENT_TYPE,
                gantry_api::openapi::v2_document().to_vec(),
            )),
            Route::OpenApiIndex => Ok(codec::json_response(200, &gantry_api::openapi::index())),
            Route::OpenApiDoc(p) => match gantry_api::openapi::document(&p) {
                Some(doc) => Ok(codec::bytes_response(200, "application/json", doc.to_vec())),
                None => Err(ApiError::NotFound {
                    message: format!("openapi document {p} not found"),
                    name: String::new(),
                    group: String::new(),
                    kind: String::new(),
                }),
            },
            Route::Resource(rp)
                if rp.name.is_some() && rp.subresource == Some(Subresource::Exec) =>
            {
                self.pod_exec(req, rp, query).await
            }
            Route::Resource(rp) => {
                let declared = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                if declared.is_some_and(|len| len > MAX_BODY) {
                    return Err(ApiError::TooLarge(MAX_BODY));
                }
                let body = if matches!(
                    method,
                    Method::POST | Method::PUT | Method::PATCH | Method::DELETE
                ) {
                    read_body(req.into_body()).await?
                } else {
                    Bytes::new()
                };
                let ctx = crate::crud::RequestContext {
                    path: rp,
                    query,
                    accept,
                    content_type,
                    user_agent,
                    body,
                };
                self.resource(method, ctx).await
            }
        }
    }

    fn authenticated<B>(&self, req: &Request<B>) -> bool {
        let Some(auth) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
        else {
            return false;
        };
        constant_time_eq(token.trim().as_bytes(), self.config.admin_token.as_bytes())
    }

    /// Starts the API server's built-in controllers (garbage collector, namespace lifecycle,
    /// default service accounts) and the bootstrap objects.
    pub async fn start_controllers(self: &Arc<Self>) -> Result<(), ApiError> {
        self.bootstrap().await?;
        let server = self.clone();
        tokio::spawn(async move { server.run_controllers().await });
        info!("built-in controllers started");
        Ok(())
    }
}

fn aggregated(doc: &serde_json::Value, version: &str) -> Response<Body> {
    let mut body = serde_json::to_vec(doc).expect("a Value always serialises");
    body.push(b'\n');
    codec::bytes_response(200, &discovery::aggregated_content_type(version), body)
}

fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::TooLarge(MAX_BODY))
            } else {
                Err(ApiError::BadRequest(format!(
                    "failed to read the request body: {e}"
                )))
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
