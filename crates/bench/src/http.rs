//! A small HTTP client on hyper's connection API: HTTP/2 (several multiplexed connections,
//! requests spread round-robin) or a pool of HTTP/1.1 connections, over TLS (Gantry) or
//! plain TCP (etcd's JSON gateway).
//! Kept minimal on purpose so the client costs little CPU next to the server on a small box.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type H1 = http1::SendRequest<Full<Bytes>>;
type H2 = http2::SendRequest<Full<Bytes>>;

/// How to reach a server.
pub enum Scheme {
    Http,
    Https { ca: Vec<u8>, token: String },
}

/// One server address with its TLS settings and credentials.
#[derive(Clone)]
pub struct Endpoint {
    pub port: u16,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    h1: TlsConnector,
    h2: TlsConnector,
    auth: HeaderValue,
}

/// Which protocol a [`Client`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/2 over this many connections, requests spread round-robin.
    H2(usize),
    /// A pool of HTTP/1.1 connections, one per request in flight.
    H1,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proto::H2(n) => write!(f, "HTTP/2 x{n} conn"),
            Proto::H1 => write!(f, "HTTP/1.1 pool"),
        }
    }
}

impl Endpoint {
    pub fn new(port: u16, scheme: Scheme) -> Result<Endpoint> {
        let tls = match scheme {
            Scheme::Http => None,
            Scheme::Https { ca, token } => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&ca) {
                    roots
                        .add(cert.context("failed to parse the CA certificate")?)
                        .context("failed to add the CA certificate")?;
                }
                let config = |alpn: &[u8]| -> Result<TlsConnector> {
                    let provider = Arc::new(rustls::crypto::ring::default_provider());
                    let mut c = rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .context("failed to build a TLS config")?
                        .with_root_certificates(roots.clone())
                        .with_no_client_auth();
                    c.alpn_protocols = vec![alpn.to_vec()];
                    Ok(TlsConnector::from(Arc::new(c)))
                };
                Some(Tls {
                    h1: config(b"http/1.1")?,
                    h2: config(b"h2")?,
                    auth: HeaderValue::from_str(&format!("Bearer {token}")).context("bad token")?,
                })
            }
        };
        Ok(Endpoint { port, tls })
    }

    /// A request with host, credentials and a JSON content type when there is a body.
    pub fn request(&self, method: Method, path: &str, body: Option<Bytes>) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, format!("127.0.0.1:{}", self.port))
            .header(header::ACCEPT, "application/json");
        if let Some(tls) = &self.tls {
            b = b.header(header::AUTHORIZATION, tls.auth.clone());
        }
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        b.body(Full::new(body.unwrap_or_default()))
            .expect("method, path and headers are valid")
    }

    /// One GET on a fresh HTTP/1.1 connection: status and body.
    pub async fn get_once(&self, path: &str) -> Result<(u16, Bytes)> {
        let mut s = self.h1().await?;
        let resp = s
            .send_request(self.request(Method::GET, path, None))
            .await
            .context("request failed")?;
        read(resp).await
    }

    async fn tcp(&self) -> Result<TcpStream> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .await
            .with_context(|| format!("failed to connect to 127.0.0.1:{}", self.port))?;
        tcp.set_nodelay(true).context("failed to set TCP_NODELAY")?;
        Ok(tcp)
    }

    async fn h1(&self) -> Result<H1> {
        let tcp = self.tcp().await?;
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        macro_rules! handshake {
            ($io:expr) => {{
                let (s, conn) = http1::handshake(TokioIo::new($io))
                    .await
                    .context("HTTP/1.1 handshake failed")?;
                tokio::spawn(conn);
                s
            }};
        }
        Ok(match &self.tls {
            Some(tls) => handshake!(tls.h1.connect(name, tcp).await.context("TLS failed")?),
            None => handshake!(tcp),
        })
    }

    async fn h2(&self) -> Result<H2> {
        let tcp = self.tcp().await?;
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        // Large windows, like Go's HTTP/2 client, so a big LIST is not flow-control bound.
        macro_rules! handshake {
            ($io:expr) => {{
                let (s, conn) = http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(16 << 20)
                    .initial_connection_window_size(64 << 20)
                    .max_frame_size(1 << 20)
                    .handshake(TokioIo::new($io))
                    .await
                    .context("HTTP/2 handshake failed")?;
                tokio::spawn(conn);
                s
            }};
        }
        Ok(match &self.tls {
            Some(tls) => handshake!(tls.h2.connect(name, tcp).await.context("TLS failed")?),
            None => handshake!(tcp),
        })
    }
}

/// A shareable client: clone the `Arc` into every worker task.
pub struct Client {
    ep: Endpoint,
    h2: Vec<H2>,
    next: AtomicUsize,
    h1_idle: Mutex<Vec<H1>>,
}

impl Client {
    pub async fn new(ep: &Endpoint, proto: Proto) -> Result<Arc<Client>> {
        let mut h2 = Vec::new();
        if let Proto::H2(n) = proto {
            for _ in 0..n.max(1) {
                h2.push(ep.h2().await?);
            }
        }
        Ok(Arc::new(Client {
            ep: ep.clone(),
            h2,
            next: AtomicUsize::new(0),
            h1_idle: Mutex::new(Vec::new()),
        }))
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// Sends a request and reads the whole response: status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes)> {
        let req = self.ep.request(method, path, body);
        if self.h2.is_empty() {
            let idle = self
                .h1_idle
                .lock()
                .expect("pool lock is never poisoned")
                .pop();
            let mut s = match idle {
                Some(s) if !s.is_closed() => s,
                _ => self.ep.h1().await?,
            };
            s.ready().await.context("connection closed")?;
            let resp = s.send_request(req).await.context("request failed")?;
            let out = read(resp).await?;
            self.h1_idle
                .lock()
                .expect("pool lock is never poisoned")
                .push(s);
            Ok(out)
        } else {
            let resp = self.stream(req).await?;
            read(resp).await
        }
    }

    /// Sends a request and returns the response with its body unread (for watches).
    /// Over HTTP/1.1 the request gets a connection of its own.
    pub async fn stream(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        if self.h2.is_empty() {
            let mut s = self.ep.h1().await?;
            return s.send_request(req).await.context("request failed");
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.h2.len();
        let mut s = self.h2[i].clone();
        s.ready().await.context("connection closed")?;
        s.send_request(req).await.context("request failed")
    }
}

async fn read(resp: Response<Incoming>) -> Result<(u16, Bytes)> {
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow!("failed to read the response body: {e}"))?
        .to_bytes();
    Ok((code, body))
}
