//! The pull path of [`ImageStore`]: resolve a reference to manifests, fetch and verify blobs,
//! unpack missing snapshots, record the reference.
//! The one thing to know: a blob is trusted only after hashing it, whether it was just
//! downloaded or already stored; a mismatch deletes it and fetches it again when allowed.

use std::path::{Path, PathBuf};

use super::super::client::Session;
use super::super::manifest::{self, Parsed};
use super::super::refs::Entry;
use super::super::{unpack, Digest, Image, ImageError, Reference};
use super::{now, ImageStore};

impl ImageStore {
    pub(super) async fn resolve(
        &self,
        r: &Reference,
        session: &mut Session<'_>,
    ) -> Result<Entry, ImageError> {
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
    pub(super) async fn materialize(
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
                    self.unpack(&blob, &path, diff_id, &snap, &layers).await?;
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
        lowers: &[PathBuf],
    ) -> Result<(), ImageError> {
        let tmp = self.tmp_path();
        std::fs::create_dir(&tmp).map_err(ImageError::io("create", &tmp))?;
        let (b, p, t, l) = (
            blob.clone(),
            path.to_path_buf(),
            tmp.clone(),
            lowers.to_vec(),
        );
        let result = tokio::task::spawn_blocking(move || unpack::unpack_layer(&p, &b, &t, &l))
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
        super::super::digest::HashingReader::new(std::fs::File::open(&p)?).finish()
    })
    .await
    .map_err(|e| ImageError::io("hash", path)(std::io::Error::other(e)))?
    .map_err(ImageError::io("hash", path))
}
