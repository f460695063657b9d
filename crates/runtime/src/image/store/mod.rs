//! `ImageStore`: the node's image cache. `ensure` resolves a reference per pull policy, fetches
//! missing or corrupt blobs (each verified before it is renamed into `blobs/`), unpacks missing
//! snapshots, and records the reference in `refs.json`.
//! The one thing to know: pulls hold the shared half of `ops` and `remove`/`gc` the exclusive
//! half, so pruning never deletes content a pull in flight has fetched but not yet recorded.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

mod pull;

use super::client::Session;
use super::refs::Refs;
use super::{unpack, Digest, Image, ImageError, PullPolicy, Reference, RegistryAuth};

/// Validated settings of an [`ImageStore`].
#[derive(Debug, Clone, Default)]
pub struct ImageStoreConfig {
    /// Registries (`host[:port]`) spoken to over plain HTTP; loopback ones always are.
    pub insecure_registries: Vec<String>,
}

/// One cached reference, as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub reference: String,
    pub digest: Digest,
    /// Bytes of its blobs as stored (compressed layers, manifests, config).
    pub size: u64,
    /// Unix seconds of the last `ensure`.
    pub last_used: u64,
}

/// What `gc` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<String>,
    pub freed_bytes: u64,
}

/// The content store under one directory (`<data>/images`).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    config: ImageStoreConfig,
    ops: tokio::sync::RwLock<()>,
    refs: std::sync::Mutex<()>,
    unpacking: tokio::sync::Mutex<()>,
}

impl ImageStore {
    /// Opens (creating) the store at `dir` and clears leftovers of interrupted pulls.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        ImageStore::open_with(dir, ImageStoreConfig::default())
    }

    pub fn open_with(
        dir: impl Into<PathBuf>,
        config: ImageStoreConfig,
    ) -> Result<ImageStore, ImageError> {
        let root = dir.into();
        let tmp = root.join("tmp");
        unpack::remove_any(&tmp).map_err(ImageError::io("clear", &tmp))?;
        for d in [root.join("blobs/sha256"), root.join("snapshots"), tmp] {
            std::fs::create_dir_all(&d).map_err(ImageError::io("create", &d))?;
        }
        Ok(ImageStore {
            root,
            config,
            ops: tokio::sync::RwLock::new(()),
            refs: std::sync::Mutex::new(()),
            unpacking: tokio::sync::Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Makes `reference` available per `policy` and returns it ready to run.
    pub async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: &RegistryAuth,
    ) -> Result<Image, ImageError> {
        let r = Reference::parse(reference)?;
        let _shared = self.ops.read().await;
        let refs = self.load_refs()?;
        // A digest reference is cached if any reference resolved to that digest.
        let cached = refs.refs.get(&r.to_string()).cloned().or_else(|| {
            let d = r.digest.as_ref()?;
            refs.refs.values().find(|e| e.digest == d.as_str()).cloned()
        });
        let insecure = r.is_loopback() || self.config.insecure_registries.contains(&r.registry);
        let mut session = Session::new(&r, auth.for_registry(&r.registry), insecure);
        let image = match (policy, cached) {
            (PullPolicy::Never, None) => {
                return Err(ImageError::NotPresent {
                    reference: r.to_string(),
                })
            }
            (PullPolicy::Never, Some(e)) => self.materialize(&r, e, None).await?,
            (PullPolicy::IfNotPresent, Some(e)) => {
                self.materialize(&r, e, Some(&mut session)).await?
            }
            (PullPolicy::Always, _) | (PullPolicy::IfNotPresent, None) => {
                tracing::info!(image = %r, "pulling image");
                let e = self.resolve(&r, &mut session).await?;
                self.materialize(&r, e, Some(&mut session)).await?
            }
        };
        Ok(image)
    }

    /// Every cached reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let refs = self.load_refs()?;
        let mut out = Vec::new();
        for (name, e) in &refs.refs {
            let digest =
                Digest::parse(&e.digest).map_err(|reason| ImageError::InvalidManifest {
                    digest: e.digest.clone(),
                    reason,
                })?;
            let mut blobs: Vec<&str> = e.blobs().collect();
            blobs.sort_unstable();
            blobs.dedup();
            let size = blobs
                .iter()
                .filter_map(|d| Digest::parse(d).ok())
                .filter_map(|d| std::fs::metadata(self.blob_path(&d)).ok())
                .map(|m| m.len())
                .sum();
            out.push(ImageSummary {
                reference: name.clone(),
                digest,
                size,
                last_used: e.last_used,
            });
        }
        Ok(out)
    }

    /// Forgets `reference` and deletes content no other reference needs; `false` if unknown.
    /// The caller must not remove an image a container still runs from.
    pub async fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let r = Reference::parse(reference)?;
        let _exclusive = self.ops.write().await;
        let found = self.update_refs(|refs| refs.refs.remove(&r.to_string()).is_some())?;
        self.prune()?;
        Ok(found)
    }

    /// When blobs and snapshots use more than `threshold_bytes`, removes images whose digest is
    /// not in `in_use`, least recently used first, until usage is at most the threshold.
    pub async fn gc(
        &self,
        threshold_bytes: u64,
        in_use: &[Digest],
    ) -> Result<GcReport, ImageError> {
        let _exclusive = self.ops.write().await;
        let mut report = GcReport::default();
        let start = self.usage()?;
        let mut usage = start;
        let mut candidates: Vec<(u64, String)> = self
            .load_refs()?
            .refs
            .iter()
            .filter(|(_, e)| !in_use.iter().any(|d| d.as_str() == e.digest))
            .map(|(name, e)| (e.last_used, name.clone()))
            .collect();
        candidates.sort();
        for (_, name) in candidates {
            if usage <= threshold_bytes {
                break;
            }
            self.update_refs(|refs| refs.refs.remove(&name))?;
            self.prune()?;
            usage = self.usage()?;
            tracing::info!(image = %name, usage, threshold_bytes, "garbage-collected image");
            report.removed.push(name);
        }
        report.freed_bytes = start.saturating_sub(usage);
        Ok(report)
    }

    /// Bytes used by blobs and snapshots (allocated blocks).
    pub fn usage(&self) -> Result<u64, ImageError> {
        Ok(disk_usage(&self.root.join("blobs"))? + disk_usage(&self.root.join("snapshots"))?)
    }

    /// Asks the registry what `r` points to and stores the manifest (and index) blobs.
    /// Deletes blobs and snapshots no reference reaches.
    fn prune(&self) -> Result<(), ImageError> {
        let (blobs, snaps) = self.load_refs()?.reachable();
        for (dir, keep) in [
            (self.root.join("blobs/sha256"), blobs),
            (self.root.join("snapshots"), snaps),
        ] {
            let entries = std::fs::read_dir(&dir).map_err(ImageError::io("read", &dir))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let p = entry.path();
                    unpack::remove_any(&p).map_err(ImageError::io("remove", &p))?;
                }
            }
        }
        Ok(())
    }

    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
        let path = self.blob_path(digest);
        if path.exists() && std::fs::read(&path).is_ok_and(|b| Digest::of(&b) == *digest) {
            return Ok(());
        }
        let tmp = self.tmp_path();
        std::fs::write(&tmp, bytes).map_err(ImageError::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(ImageError::io("rename", &path))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    fn load_refs(&self) -> Result<Refs, ImageError> {
        let _g = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        Refs::load(&self.root.join("refs.json"))
    }

    fn update_refs<T>(&self, f: impl FnOnce(&mut Refs) -> T) -> Result<T, ImageError> {
        let _g = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.root.join("refs.json");
        let mut refs = Refs::load(&path)?;
        let out = f(&mut refs);
        refs.save(&path)?;
        Ok(out)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn disk_usage(dir: &Path) -> Result<u64, ImageError> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ImageError::io("read", &d)(e)),
        };
        for entry in entries.flatten() {
            if let Ok(m) = entry.path().symlink_metadata() {
                total += m.blocks() * 512;
                if m.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
    }
    Ok(total)
}
