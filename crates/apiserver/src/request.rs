//! Parsing what a request asks for: the route from the path, the query parameters (with the
//! quirks real clients send: empty pairs, Go-style booleans), and the media types in
//! Accept / Content-Type.

use gantry_api::registry::{self, ResourceType, Subresource};

use crate::status::ApiError;

/// What a path addresses.
#[derive(Debug)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreGroup,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    GroupVersion(String, String),
    /// `/openapi/v2` (a minimal protobuf document; kubectl checks `kind: List` files against it)
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiIndex,
    /// `/openapi/v3/<path>`
    OpenApiDoc(String),
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
}

/// A path under a group-version that names resources.
#[derive(Debug)]
pub struct ResourcePath {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<Subresource>,
    /// The legacy `/watch/` path prefix.
    pub watch_prefix: bool,
}

/// Parses a request path.
pub fn route(path: &str) -> Result<Route, ApiError> {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::NotFound {
        message: "the server could not find the requested resource".to_string(),
        name: String::new(),
        group: String::new(),
        kind: String::new(),
    };
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz", ..] | ["livez", ..] | ["readyz", ..] => Ok(Route::Health),
        ["api"] => Ok(Route::CoreGroup),
        ["apis"] => Ok(Route::Groups),
        ["openapi", "v2"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiIndex),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApiDoc(rest.join("/"))),
        ["api", "v1"] => Ok(Route::GroupVersion(String::new(), "v1".to_string())),
        ["api", "v1", rest @ ..] => resource_path("", "v1", rest).ok_or_else(not_found),
        ["apis", group] => {
            if registry::group_versions().iter().any(|(g, _)| g == group) {
                Ok(Route::Group(group.to_string()))
            } else {
                Err(not_found())
            }
        }
        ["apis", group, version] => {
            if registry::group_versions()
                .iter()
                .any(|(g, v)| g == group && v == version)
            {
                Ok(Route::GroupVersion(group.to_string(), version.to_string()))
            } else {
                Err(not_found())
            }
        }
        ["apis", group, version, rest @ ..] => {
            resource_path(group, version, rest).ok_or_else(not_found)
        }
        _ => Err(not_found()),
    }
}

fn resource_path(group: &str, version: &str, segs: &[&str]) -> Option<Route> {
    let (watch_prefix, segs) = match segs {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, segs),
    };
    let (namespace, rest) = match segs {
        ["namespaces", ns, plural, rest @ ..]
            if registry::by_plural(group, version, plural).is_some() =>
        {
            (
                Some(ns.to_string()),
                std::iter::once(*plural)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>(),
            )
        }
        _ => (None, segs.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return None,
    };
    let rt = registry::by_plural(group, version, plural)?;
    if namespace.is_some() && !rt.namespaced {
        return None;
    }
    let subresource = match sub {
        None => None,
        Some(s) => {
            let sub = Subresource::parse(s)?;
            if !rt.has_subresource(sub) {
                return None;
            }
            Some(sub)
        }
    };
    Some(Route::Resource(ResourcePath {
        rt,
        namespace,
        name,
        subresource,
        watch_prefix,
    }))
}

/// Decoded query parameters, in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`, if present and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean the way Go's `strconv.ParseBool` reads it (`1`, `t`, `T`, `TRUE`, `true`, `True`).
    pub fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(Some(true)),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(Some(false)),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid value for {key}: strconv.ParseBool: parsing \"{other}\": invalid syntax"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid value for {key}: strconv.ParseInt: parsing \"{v}\": invalid syntax"
                ))
            }),
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space, the form encoding Go's url.ParseQuery accepts).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the client wants the answer encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table,
    /// `as=PartialObjectMetadata` / `as=PartialObjectMetadataList`.
    PartialMetadata,
}

/// Picks the response encoding from the Accept header, in the client's order of preference.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut g = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(v.trim().to_string()),
                    "g" => g = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match (media.as_str(), as_.as_deref(), g.as_deref()) {
            ("application/json", Some("Table"), Some("meta.k8s.io")) => return Ok(Output::Table),
            (
                "application/json",
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
            ) => return Ok(Output::PartialMetadata),
            ("application/json", Some(_), _) => continue,
            ("application/json" | "*/*" | "application/*", None, _) => return Ok(Output::Json),
            ("application/yaml", None, _) => return Ok(Output::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml"
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_namespaced_items_and_subresources() {
        let Ok(Route::Resource(p)) = route("/apis/apps/v1/namespaces/shop/deployments/web/scale")
        else {
            panic!("not a resource route");
        };
        assert_eq!(p.rt.plural, "deployments");
        assert_eq!(p.namespace.as_deref(), Some("shop"));
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.subresource, Some(Subresource::Scale));
    }

    #[test]
    fn namespace_objects_are_not_namespaced_paths() {
        let Ok(Route::Resource(p)) = route("/api/v1/namespaces/shop/status") else {
            panic!("not a resource route");
        };
        assert_eq!(p.rt.plural, "namespaces");
        assert_eq!(p.name.as_deref(), Some("shop"));
        assert_eq!(p.subresource, Some(Subresource::Status));
        assert!(route("/api/v1/namespaces/shop/widgets").is_err());
        assert!(route("/apis/apps/v1/namespaces/shop/deployments/web/logs").is_err());
    }

    #[test]
    fn query_tolerates_client_quirks() {
        let q = Query::parse(Some(
            "&labelSelector=&watch=True&fieldSelector=metadata.name%3Dweb",
        ));
        assert_eq!(q.get("labelSelector"), None);
        assert_eq!(q.flag("watch").expect("valid"), Some(true));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=web"));
        assert!(q.flag("nonsense").expect("absent").is_none());
        assert!(Query::parse(Some("watch=yes")).flag("watch").is_err());
    }

    #[test]
    fn accept_prefers_tables_when_asked() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(kubectl)).expect("ok"), Output::Table);
        assert_eq!(negotiate(None).expect("ok"), Output::Json);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")).expect("ok"),
            Output::Json
        );
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
    }
}
