//! A small OCI distribution client (GET manifests and blobs, token auth) over hyper 1.
//!
//! Why not `oci-client`: it brings reqwest, its own TLS stack choices, chrono, JWT and
//! signing crates into a two-core build, while a pull needs three GETs, one token request
//! and redirects, over the hyper and rustls the workspace already compiles. One connection per
//! request keeps it simple; blobs are large, so connection reuse would save little.
//! The one thing to know: credentials are sent only to the registry's own host and its token
//! realm, never along a redirect to another host (blob storage behind a CDN).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::auth::{parse_challenge, Challenge, Credentials};
use super::digest::Hasher;
use super::{Digest, ImageError, Reference};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for response headers or the next chunk of a body.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;
/// Manifests, indexes, configs and token answers are small; refuse absurd ones.
pub const MAX_DOCUMENT: usize = 8 << 20;

/// One pull's conversation with one repository: remembers the auth header it earned.
pub struct Session<'a> {
    reference: &'a Reference,
    base: String,
    creds: Option<&'a Credentials>,
    authorization: Option<String>,
}

impl<'a> Session<'a> {
    /// `insecure` makes the session speak plain HTTP.
    pub fn new(reference: &'a Reference, creds: Option<&'a Credentials>, insecure: bool) -> Self {
        let scheme = if insecure { "http" } else { "https" };
        Session {
            reference,
            base: format!(
                "{scheme}://{}/v2/{}",
                reference.api_host(),
                reference.repository
            ),
            creds,
            authorization: None,
        }
    }

    /// GETs a manifest by tag or digest: (bytes, content type).
    pub async fn manifest(
        &mut self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), ImageError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let resp = self.get(&url, Some(super::manifest::ACCEPT)).await?;
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_DOCUMENT, self.registry()).await?;
        Ok((body, ctype))
    }

    /// Streams a blob into `dest` (created), returning the digest of what arrived.
    pub async fn blob_to_file(
        &mut self,
        digest: &Digest,
        dest: &Path,
    ) -> Result<Digest, ImageError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.get(&url, None).await?;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(ImageError::io("create", dest))?;
        let mut hasher = Hasher::new();
        let mut body = resp.into_body();
        while let Some(frame) = next_frame(&mut body, self.registry()).await? {
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                file.write_all(&data)
                    .await
                    .map_err(ImageError::io("write", dest))?;
            }
        }
        file.sync_all()
            .await
            .map_err(ImageError::io("sync", dest))?;
        Ok(hasher.finish())
    }

    fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// GET with authentication on demand and redirects; non-2xx answers become errors.
    async fn get(
        &mut self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response<Incoming>, ImageError> {
        let mut uri: Uri = url
            .parse()
            .map_err(|e| self.transport(format!("bad url {url}: {e}")))?;
        let origin = uri.authority().map(|a| a.to_string());
        let mut tried_auth = false;
        for _ in 0..=MAX_REDIRECTS {
            let same_host = uri.authority().map(|a| a.to_string()) == origin;
            let auth = if same_host {
                self.authorization.clone()
            } else {
                None
            };
            let resp = send(&uri, auth.as_deref(), accept, self.registry()).await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && same_host && !tried_auth {
                tried_auth = true;
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                self.authorization = Some(self.authenticate(challenge).await?);
                continue;
            }
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| self.transport("redirect without location".to_string()))?;
                uri = resolve_location(&uri, location).map_err(|e| self.transport(e))?;
                continue;
            }
            if status.is_success() {
                return Ok(resp);
            }
            let message = error_message(resp, self.registry()).await;
            return Err(match status {
                StatusCode::NOT_FOUND => ImageError::NotFound {
                    reference: self.reference.to_string(),
                    registry_message: message,
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ImageError::Unauthorized {
                    registry: self.registry().to_string(),
                    reference: self.reference.to_string(),
                    message,
                },
                s => ImageError::Registry {
                    registry: self.registry().to_string(),
                    url: uri.to_string(),
                    status: s.as_u16(),
                    message,
                },
            });
        }
        Err(self.transport(format!("more than {MAX_REDIRECTS} redirects for {url}")))
    }

    /// Answers a challenge: the Basic header, or a Bearer token from the realm.
    async fn authenticate(&self, challenge: Option<Challenge>) -> Result<String, ImageError> {
        let unauthorized = |message: String| ImageError::Unauthorized {
            registry: self.registry().to_string(),
            reference: self.reference.to_string(),
            message,
        };
        match challenge {
            Some(Challenge::Basic) => match self.creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(unauthorized(
                    "authentication required and no pull secret for this registry".into(),
                )),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                let mut url = format!("{realm}?scope={}", encode(&scope));
                if let Some(s) = service {
                    url.push_str(&format!("&service={}", encode(&s)));
                }
                let uri: Uri = url
                    .parse()
                    .map_err(|e| self.transport(format!("bad token realm {realm}: {e}")))?;
                let basic = self.creds.map(Credentials::basic_header);
                let resp = send(&uri, basic.as_deref(), None, self.registry()).await?;
                let status = resp.status();
                if !status.is_success() {
                    let msg = error_message(resp, self.registry()).await;
                    return Err(unauthorized(format!(
                        "token service answered {status}: {msg}"
                    )));
                }
                let body = read_limited(resp, MAX_DOCUMENT, self.registry()).await?;
                let v: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| unauthorized(format!("token answer is not JSON: {e}")))?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| unauthorized("token answer has no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
            None => Err(unauthorized(
                "registry answered 401 without a usable challenge".into(),
            )),
        }
    }

    fn transport(&self, reason: String) -> ImageError {
        ImageError::Transport {
            registry: self.registry().to_string(),
            reason,
        }
    }
}

/// One request on a fresh connection.
async fn send(
    uri: &Uri,
    auth: Option<&str>,
    accept: Option<&str>,
    registry: &str,
) -> Result<Response<Incoming>, ImageError> {
    let transport = |reason: String| ImageError::Transport {
        registry: registry.to_string(),
        reason,
    };
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| transport(format!("no host in {uri}")))?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| transport(format!("connecting to {host}:{port} timed out")))?
    .map_err(|e| transport(format!("connecting to {host}:{port}: {e}")))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let mut req = Request::get(path).header(header::HOST, authority).header(
        header::USER_AGENT,
        concat!("gantry/", env!("CARGO_PKG_VERSION")),
    );
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| transport(format!("building request: {e}")))?;
    let fut = async {
        if https {
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                    .map_err(|e| transport(format!("bad server name {host}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config().map_err(transport)?)
                .connect(name, tcp)
                .await
                .map_err(|e| transport(format!("TLS with {host}: {e}")))?;
            request(TokioIo::new(tls), req, registry).await
        } else {
            request(TokioIo::new(tcp), req, registry).await
        }
    };
    tokio::time::timeout(IDLE_TIMEOUT, fut)
        .await
        .map_err(|_| transport(format!("no answer from {uri} within {IDLE_TIMEOUT:?}")))?
}

async fn request<T>(
    io: T,
    req: Request<Empty<Bytes>>,
    registry: &str,
) -> Result<Response<Incoming>, ImageError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let transport = |reason: String| ImageError::Transport {
        registry: registry.to_string(),
        reason,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| transport(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "registry connection ended with an error");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| transport(format!("request failed: {e}")))
}

/// The TLS client settings: the system's CA certificates, ring, TLS 1.2 and 1.3.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "could not load a system CA certificate");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "loaded system CA certificates");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS settings: {e}"))
        })
        .clone()
}

async fn next_frame(
    body: &mut Incoming,
    registry: &str,
) -> Result<Option<hyper::body::Frame<Bytes>>, ImageError> {
    let transport = |reason: String| ImageError::Transport {
        registry: registry.to_string(),
        reason,
    };
    match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
        Err(_) => Err(transport(format!("download stalled for {IDLE_TIMEOUT:?}"))),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(transport(format!("download failed: {e}"))),
        Ok(Some(Ok(f))) => Ok(Some(f)),
    }
}

async fn read_limited(
    resp: Response<Incoming>,
    max: usize,
    registry: &str,
) -> Result<Vec<u8>, ImageError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = next_frame(&mut body, registry).await? {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > max {
                return Err(ImageError::Transport {
                    registry: registry.to_string(),
                    reason: format!("document larger than {max} bytes"),
                });
            }
        }
    }
    Ok(out)
}

/// The registry's own words: `errors[0].message` (and detail) of the JSON body, else the text.
async fn error_message(resp: Response<Incoming>, registry: &str) -> String {
    let status = resp.status();
    let body = read_limited(resp, 64 << 10, registry)
        .await
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
            let msg = e
                .get("message")
                .and_then(|c| c.as_str())
                .unwrap_or_default();
            return format!("{code}: {msg}")
                .trim_start_matches(": ")
                .to_string();
        }
    }
    let text = String::from_utf8_lossy(&body).trim().to_string();
    if text.is_empty() {
        status.to_string()
    } else {
        text
    }
}

fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e| format!("bad redirect {location}: {e}"));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    format!("{scheme}://{authority}{location}")
        .parse()
        .map_err(|e| format!("bad redirect {location}: {e}"))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters and `:`/`/` stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
        assert_eq!(encode("a b"), "a%20b");
    }

    #[test]
    fn relative_redirects_keep_the_origin() {
        let base: Uri = "http://127.0.0.1:5000/v2/x/blobs/sha256:1"
            .parse()
            .expect("uri");
        let u = resolve_location(&base, "/v2/x/blobs/uploads/1").expect("resolve");
        assert_eq!(u.to_string(), "http://127.0.0.1:5000/v2/x/blobs/uploads/1");
        let u = resolve_location(&base, "https://cdn.example/b?sig=1").expect("resolve");
        assert_eq!(u.host(), Some("cdn.example"));
    }
}
