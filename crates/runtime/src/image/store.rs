//! `ImageStore`: the node's image cache. `ensure` resolves a reference per pull policy, fetches
//! missing or corrupt blobs (each verified before it is renamed into `blobs/`), unpacks missing
//! snapshots, and records the reference in `refs.json`.
//! The one thing to know: pulls hold the shared half of `ops` and `remove`/`gc` the exclusive
//! half, so pruning never deletes content a pull in flight has fetched but not yet recorded.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::client::Session;
use super::manifest::{self, Parsed};
use super::refs::{Entry, Refs};
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
        let cached = self.load_refs()?.refs.get(&r.to_string()).cloned();
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
    async fn resolve(&self, r: &Reference, session: &mut Session<'_>) -> Result<Entry, ImageError> {
        let (bytes, ctype) = session.manifest(&r.manifest_ref()).await?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = &r.digest {
            check(&format!("manifest of {r}"), expected, &digest)?;
        }
        self.write_blob(&digest, &bytes)?;
        let (manifest_digest, parsed) = match manifest::parse(&bytes, ctype.as_deref(), &digest)? {
            Parsed::Index { manifests } => {
                let arch = manifest::host_arch();
                let pick = manifest::pick_platform(&manifests, arch).ok_or_else(|| {
                    ImageError::NoMatchingPlatform {
                        reference: r.to_string(),
                        os: "linux".into(),
                        architecture: arch.into(),
                    }
                })?;
                let want = parse_digest(&pick.digest)?;
                let (bytes, ctype) = session.manifest(want.as_str()).await?;
                check(
                    &format!("platform manifest of {r}"),
                    &want,
                    &Digest::of(&bytes),
                )?;
                self.write_blob(&want, &bytes)?;
                let parsed = manifest::parse(&bytes, ctype.as_deref(), &want)?;
                (want, parsed)
            }
            p => (digest.clone(), p),
        };
        let Parsed::Manifest { config, layers } = parsed else {
            return Err(ImageError::InvalidManifest {
                digest: manifest_digest.to_string(),
                reason: "an index inside an index".into(),
            });
        };
        for l in &layers {
            if l.media_type.contains("zstd") {
                return Err(ImageError::UnsupportedMediaType {
                    reference: r.to_string(),
                    media_type: l.media_type.clone(),
                });
            }
        }
        Ok(Entry {
            digest: digest.to_string(),
            manifest: manifest_digest.to_string(),
            config: parse_digest(&config.digest)?.to_string(),
            layers: layers
                .iter()
                .map(|l| parse_digest(&l.digest).map(|d| d.to_string()))
                .collect::<Result<_, _>>()?,
            chain_ids: Vec::new(),
            last_used: 0,
        })
    }

    /// Reads the config, makes sure every snapshot exists, records the reference.
    async fn materialize(
        &self,
        r: &Reference,
        mut e: Entry,
        mut session: Option<&mut Session<'_>>,
    ) -> Result<Image, ImageError> {
        let config_digest = parse_digest(&e.config)?;
        let path = self
            .ensure_blob(r, &config_digest, session.as_deref_mut())
            .await?;
        let bytes = std::fs::read(&path).map_err(ImageError::io("read", &path))?;
        check(
            &format!("config of {r}"),
            &config_digest,
            &Digest::of(&bytes),
        )?;
        let (config, diff_ids) = manifest::parse_config(&bytes, &config_digest)?;
        if diff_ids.len() != e.layers.len() {
            return Err(ImageError::InvalidManifest {
                digest: e.manifest.clone(),
                reason: format!(
                    "{} layers but {} diff_ids in the config",
                    e.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let chain = Digest::chain_ids(&diff_ids);
        let mut layers = Vec::with_capacity(chain.len());
        for ((blob, diff_id), chain_id) in e.layers.iter().zip(&diff_ids).zip(&chain) {
            let snap = self.root.join("snapshots").join(chain_id.hex());
            if !snap.exists() {
                let _one = self.unpacking.lock().await;
                if !snap.exists() {
                    let blob = parse_digest(blob)?;
                    let path = self.ensure_blob(r, &blob, session.as_deref_mut()).await?;
                    self.unpack(&blob, &path, diff_id, &snap).await?;
                }
            }
            layers.push(snap);
        }
        e.chain_ids = chain.iter().map(|c| c.to_string()).collect();
        e.last_used = now();
        let key = r.to_string();
        let entry = e.clone();
        self.update_refs(move |refs| refs.refs.insert(key, entry))?;
        Ok(Image {
            reference: r.clone(),
            digest: parse_digest(&e.digest)?,
            config_digest,
            config,
            layers,
        })
    }

    /// The verified blob's path, downloading it when missing or corrupt (once more if the
    /// first download does not match its digest).
    async fn ensure_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        session: Option<&mut Session<'_>>,
    ) -> Result<PathBuf, ImageError> {
        let path = self.blob_path(digest);
        let mut corrupt = None;
        if path.exists() {
            let actual = hash_file(&path).await?;
            if actual == *digest {
                return Ok(path);
            }
            tracing::warn!(blob = %digest, actual = %actual, "stored blob is corrupt, removing it");
            std::fs::remove_file(&path).map_err(ImageError::io("remove", &path))?;
            corrupt = Some(actual);
        }
        let Some(session) = session else {
            return Err(match corrupt {
                Some(actual) => ImageError::DigestMismatch {
                    what: format!("stored blob of {r}"),
                    expected: digest.clone(),
                    actual,
                },
                None => ImageError::NotPresent {
                    reference: r.to_string(),
                },
            });
        };
        let mut last = None;
        for _ in 0..2 {
            let tmp = self.tmp_path();
            let actual = match session.blob_to_file(digest, &tmp).await {
                Ok(a) => a,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            if actual == *digest {
                std::fs::rename(&tmp, &path).map_err(ImageError::io("rename", &path))?;
                tracing::debug!(blob = %digest, "blob stored");
                return Ok(path);
            }
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(blob = %digest, actual = %actual, "downloaded blob does not match its digest");
            last = Some(actual);
        }
        Err(ImageError::DigestMismatch {
            what: format!("blob of {r}"),
            expected: digest.clone(),
            actual: last.unwrap_or_else(|| Digest::of(b"")),
        })
    }

    async fn unpack(
        &self,
        blob: &Digest,
        path: &Path,
        diff_id: &Digest,
        snap: &Path,
    ) -> Result<(), ImageError> {
        let tmp = self.tmp_path();
        std::fs::create_dir(&tmp).map_err(ImageError::io("create", &tmp))?;
        let (b, p, t) = (blob.clone(), path.to_path_buf(), tmp.clone());
        let result = tokio::task::spawn_blocking(move || unpack::unpack_layer(&p, &b, &t))
            .await
            .map_err(|e| ImageError::io("unpack into", &tmp)(std::io::Error::other(e)))
            .and_then(|r| r)
            .and_then(|actual| check(&format!("uncompressed layer {blob}"), diff_id, &actual));
        if let Err(e) = result {
            let _ = unpack::remove_any(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, snap).map_err(ImageError::io("rename", snap))?;
        tracing::info!(layer = %blob, snapshot = %snap.display(), "layer unpacked");
        Ok(())
    }

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

fn check(what: &str, expected: &Digest, actual: &Digest) -> Result<(), ImageError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual: actual.clone(),
        })
    }
}

fn parse_digest(s: &str) -> Result<Digest, ImageError> {
    Digest::parse(s).map_err(|reason| ImageError::InvalidManifest {
        digest: s.to_string(),
        reason,
    })
}

async fn hash_file(path: &Path) -> Result<Digest, ImageError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        super::digest::HashingReader::new(std::fs::File::open(&p)?).finish()
    })
    .await
    .map_err(|e| ImageError::io("hash", path)(std::io::Error::other(e)))?
    .map_err(ImageError::io("hash", path))
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
