//! Registry credentials from `kubernetes.io/dockerconfigjson` secrets and the
//! `WWW-Authenticate` challenges registries answer with (Basic, or Bearer via a token service).
//! Keys of `auths` are matched on host[:port] only: `https://index.docker.io/v1/` means Hub.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::reference::DOCKER_HUB;
use super::ImageError;

/// A user name and password (or identity token as password) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` header value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Credentials per registry; empty means anonymous pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    by_registry: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl RegistryAuth {
    /// No credentials.
    pub fn anonymous() -> RegistryAuth {
        RegistryAuth::default()
    }

    /// Parses a `.dockerconfigjson` document (`{"auths": {"host": {"auth": base64(user:pass)}}}`
    /// or with `username`/`password`).
    pub fn from_dockerconfigjson(bytes: &[u8]) -> Result<RegistryAuth, ImageError> {
        let bad = |reason: String| ImageError::InvalidAuthConfig { reason };
        let doc: DockerConfigJson =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let mut out = RegistryAuth::default();
        for (key, entry) in doc.auths {
            let creds = match (entry.username, entry.password, entry.auth) {
                (Some(u), Some(p), _) if !u.is_empty() => Credentials {
                    username: u,
                    password: p,
                },
                (_, _, Some(a)) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .map_err(|e| bad(format!("auth for {key} is not base64: {e}")))?;
                    let raw = String::from_utf8(raw)
                        .map_err(|_| bad(format!("auth for {key} is not UTF-8")))?;
                    let (u, p) = raw
                        .split_once(':')
                        .ok_or_else(|| bad(format!("auth for {key} is not user:password")))?;
                    Credentials {
                        username: u.to_string(),
                        password: p.to_string(),
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "entry {key} has neither auth nor username/password"
                    )))
                }
            };
            out.by_registry.insert(normalize_key(&key), creds);
        }
        Ok(out)
    }

    /// Adds `registry`'s credentials (later secrets do not override earlier ones, as kubelet).
    pub fn insert(&mut self, registry: &str, creds: Credentials) {
        self.by_registry
            .entry(normalize_key(registry))
            .or_insert(creds);
    }

    /// Merges `other` in; entries already present win.
    pub fn merge(&mut self, other: RegistryAuth) {
        for (k, v) in other.by_registry {
            self.by_registry.entry(k).or_insert(v);
        }
    }

    /// The credentials for `registry` (as written in the reference, e.g. `docker.io`).
    pub fn for_registry(&self, registry: &str) -> Option<&Credentials> {
        self.by_registry.get(&normalize_key(registry))
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/x` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` with quoted values that may contain commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerconfigjson_both_forms() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
            "127.0.0.1:5000":{{"username":"bob","password":"pw"}}}}}}"#
        );
        let a = RegistryAuth::from_dockerconfigjson(json.as_bytes()).expect("parse");
        let hub = a.for_registry("docker.io").expect("hub creds");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("alice", "s3cret:x")
        );
        assert_eq!(
            a.for_registry("127.0.0.1:5000")
                .map(|c| c.username.as_str()),
            Some("bob")
        );
        assert!(a.for_registry("ghcr.io").is_none());
        assert!(!format!("{hub:?}").contains("s3cret"));
    }

    #[test]
    fn bad_dockerconfigjson_is_refused() {
        assert!(RegistryAuth::from_dockerconfigjson(b"{").is_err());
        assert!(RegistryAuth::from_dockerconfigjson(br#"{"auths":{"x":{"auth":"!!"}}}"#).is_err());
        assert!(RegistryAuth::from_dockerconfigjson(br#"{"auths":{"x":{}}}"#).is_err());
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
