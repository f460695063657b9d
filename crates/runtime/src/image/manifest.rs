//! Manifests, image indexes and image configs (OCI image-spec and Docker schema 2 alike):
//! the wire shapes, platform choice and conversion to [`ImageConfig`].
//! Docker's media types are the OCI ones under other names; both decode into the same structs.

use serde::Deserialize;

use super::{Digest, ImageConfig, ImageError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What the manifests endpoint is asked to return, in order of preference.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

/// A manifest or an index; which one is decided by `mediaType` or the fields present.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

pub enum Parsed {
    Manifest {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        manifests: Vec<Descriptor>,
    },
}

/// Decodes manifest bytes; `header_type` is the response's Content-Type, if any.
pub fn parse(
    bytes: &[u8],
    header_type: Option<&str>,
    digest: &Digest,
) -> Result<Parsed, ImageError> {
    let invalid = |reason: String| ImageError::InvalidManifest {
        digest: digest.to_string(),
        reason,
    };
    let m: AnyManifest = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let media = m
        .media_type
        .clone()
        .or_else(|| header_type.map(|h| h.split(';').next().unwrap_or(h).trim().to_string()))
        .unwrap_or_default();
    let is_index = media == OCI_INDEX
        || media == DOCKER_LIST
        || (m.config.is_none() && !m.manifests.is_empty());
    if is_index {
        return Ok(Parsed::Index {
            manifests: m.manifests,
        });
    }
    if !media.is_empty()
        && media != OCI_MANIFEST
        && media != DOCKER_MANIFEST
        && !media.starts_with("application/json")
    {
        return Err(invalid(format!("unsupported manifest media type {media}")));
    }
    let config = m
        .config
        .ok_or_else(|| invalid("manifest has no config".to_string()))?;
    Ok(Parsed::Manifest {
        config,
        layers: m.layers,
    })
}

/// The GOARCH name of the machine we run on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The index entry for linux/`arch` (plain entry preferred over variants we cannot judge).
pub fn pick_platform<'a>(manifests: &'a [Descriptor], arch: &str) -> Option<&'a Descriptor> {
    manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    })
}

#[derive(Debug, Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<ContainerConfig>,
    rootfs: Option<RootFsSection>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    labels: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    stop_signal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RootFsSection {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Decodes an image config blob into the runtime's view and its layers' diff IDs.
pub fn parse_config(
    bytes: &[u8],
    digest: &Digest,
) -> Result<(ImageConfig, Vec<Digest>), ImageError> {
    let invalid = |reason: String| ImageError::InvalidManifest {
        digest: digest.to_string(),
        reason,
    };
    let f: ConfigFile = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let diff_ids = f
        .rootfs
        .map(|r| r.diff_ids)
        .unwrap_or_default()
        .iter()
        .map(|d| Digest::parse(d).map_err(&invalid))
        .collect::<Result<Vec<_>, _>>()?;
    let c = f.config.unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let config = ImageConfig {
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        working_dir: non_empty(c.working_dir),
        user: non_empty(c.user),
        exposed_ports: c
            .exposed_ports
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        stop_signal: non_empty(c.stop_signal),
        labels: c
            .labels
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        os: f.os,
        architecture: f.architecture,
    };
    Ok((config, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_pick_the_host_platform() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"arm64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let Ok(Parsed::Index { manifests }) = parse(idx, None, &Digest::of(idx)) else {
            panic!("expected an index");
        };
        assert_eq!(
            pick_platform(&manifests, "amd64").map(|d| d.digest.as_str()),
            Some("sha256:bb")
        );
        assert!(pick_platform(&manifests, "s390x").is_none());
    }

    #[test]
    fn docker_manifests_decode_like_oci_ones() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cc","size":2},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:dd","size":3}]}"#;
        let Ok(Parsed::Manifest { config, layers }) = parse(m, None, &Digest::of(m)) else {
            panic!("expected a manifest");
        };
        assert_eq!(config.digest, "sha256:cc");
        assert_eq!(layers.len(), 1);
    }

    #[test]
    fn config_fields_are_read() {
        let d = Digest::of(b"x");
        let c = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],
            "WorkingDir":"/w","User":"1000","ExposedPorts":{{"80/tcp":{{}}}}}},
            "rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let (cfg, diffs) = parse_config(c.as_bytes(), &d).expect("config");
        assert_eq!(cfg.cmd, vec!["sh"]);
        assert_eq!(cfg.env, vec!["PATH=/bin"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/w"));
        assert_eq!(cfg.user.as_deref(), Some("1000"));
        assert_eq!(cfg.exposed_ports, vec!["80/tcp"]);
        assert_eq!(diffs, vec![d]);
    }
}
