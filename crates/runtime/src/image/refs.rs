//! `refs.json`: which reference points at which manifest, and everything that image needs
//! (config, layer blobs, chain IDs), so cached images resolve without the registry and
//! garbage collection knows what is reachable.
//! Written to a temp file and renamed, so a crash leaves the old or the new file whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Digest, ImageError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Refs {
    #[serde(default)]
    pub refs: BTreeMap<String, Entry>,
}

/// One reference's resolved image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// What the reference resolved to (index or manifest): the image ID.
    pub digest: String,
    /// The platform manifest (same as `digest` for single-platform images).
    pub manifest: String,
    pub config: String,
    /// Layer blob digests, lowest first.
    pub layers: Vec<String>,
    /// Chain IDs (snapshot names), lowest first; empty until the config has been read.
    #[serde(default)]
    pub chain_ids: Vec<String>,
    /// Unix seconds of the last `ensure`.
    #[serde(default)]
    pub last_used: u64,
}

impl Entry {
    /// Every blob digest this image needs.
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        [
            self.digest.as_str(),
            self.manifest.as_str(),
            self.config.as_str(),
        ]
        .into_iter()
        .chain(self.layers.iter().map(String::as_str))
    }
}

impl Refs {
    pub fn load(path: &Path) -> Result<Refs, ImageError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImageError::Io {
                op: "parse",
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Refs::default()),
            Err(e) => Err(ImageError::io("read", path)(e)),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), ImageError> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| ImageError::io("encode", path)(std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(ImageError::io("write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(ImageError::io("rename", path))
    }

    /// Blob hexes and snapshot (chain ID) hexes reachable from any reference.
    pub fn reachable(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        for e in self.refs.values() {
            blobs.extend(e.blobs().filter_map(hex));
            snaps.extend(e.chain_ids.iter().filter_map(|c| hex(c)));
        }
        (blobs, snaps)
    }
}

fn hex(d: &str) -> Option<String> {
    Digest::parse(d).ok().map(|d| d.hex().to_string())
}
