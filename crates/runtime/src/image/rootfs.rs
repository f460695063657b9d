//! A container's root filesystem: an overlay mount of the image's snapshots (read-only lowers)
//! with `upper/` and `work/` in the container's directory, or a private copy where overlay
//! cannot be mounted.
//! The one thing to know: `release` removes the directories only once the mount is gone, so
//! a failed unmount can never delete through the mount into shared snapshots.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::unpack::remove_any;
use super::{sys, Image, ImageError};

/// How the rootfs was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFsKind {
    Overlay,
    Copy,
}

/// A prepared rootfs at `<container_dir>/rootfs`.
#[derive(Debug)]
pub struct RootFs {
    pub path: PathBuf,
    pub kind: RootFsKind,
    container_dir: PathBuf,
}

/// Prepares `<container_dir>/rootfs`: overlay if possible, else a copy.
pub fn prepare(image: &Image, container_dir: &Path) -> Result<RootFs, ImageError> {
    match prepare_kind(image, container_dir, RootFsKind::Overlay) {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::warn!(error = %e, dir = %container_dir.display(), "overlay rootfs failed, copying the image instead");
            release_dir(container_dir)?;
            prepare_kind(image, container_dir, RootFsKind::Copy)
        }
    }
}

/// Prepares the rootfs in the given way, without fallback.
pub fn prepare_kind(
    image: &Image,
    container_dir: &Path,
    kind: RootFsKind,
) -> Result<RootFs, ImageError> {
    let rootfs = container_dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(ImageError::io("create", &rootfs))?;
    if kind == RootFsKind::Overlay && is_mount_point(&rootfs, container_dir) {
        // Prepared before an agent restart: keep the mount and the container's writes.
        return Ok(RootFs {
            path: rootfs,
            kind,
            container_dir: container_dir.to_path_buf(),
        });
    }
    match kind {
        RootFsKind::Overlay => mount_overlay(&image.layers, container_dir, &rootfs)?,
        RootFsKind::Copy => {
            let mut links = HashMap::new();
            for layer in &image.layers {
                links.clear();
                copy_layer(layer, &rootfs, &mut links)?;
            }
        }
    }
    tracing::debug!(image = %image.reference, rootfs = %rootfs.display(), ?kind, "rootfs prepared");
    Ok(RootFs {
        path: rootfs,
        kind,
        container_dir: container_dir.to_path_buf(),
    })
}

impl RootFs {
    /// Unmounts (if mounted) and removes `rootfs/`, `upper/` and `work/`.
    pub fn release(self) -> Result<(), ImageError> {
        release_dir(&self.container_dir)
    }
}

/// Releases the rootfs of `container_dir` whatever made it (for re-adopted containers);
/// a missing rootfs is not an error.
pub fn release_dir(container_dir: &Path) -> Result<(), ImageError> {
    let rootfs = container_dir.join("rootfs");
    sys::unmount(&rootfs).map_err(ImageError::io("unmount", &rootfs))?;
    if is_mount_point(&rootfs, container_dir) {
        return Err(ImageError::Io {
            op: "unmount",
            path: rootfs,
            source: std::io::Error::other("still a mount point after unmount"),
        });
    }
    for d in ["rootfs", "upper", "work", "lower-empty"] {
        let p = container_dir.join(d);
        remove_any(&p).map_err(ImageError::io("remove", &p))?;
    }
    Ok(())
}

/// Whether `dir` is on another filesystem than `parent` (an overlay mounted there).
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    match (fs::metadata(dir), fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

fn mount_overlay(
    layers: &[PathBuf],
    container_dir: &Path,
    rootfs: &Path,
) -> Result<(), ImageError> {
    let upper = container_dir.join("upper");
    let work = container_dir.join("work");
    for d in [&upper, &work] {
        fs::create_dir_all(d).map_err(ImageError::io("create", d))?;
    }
    let mut lowers: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    if lowers.is_empty() {
        let empty = container_dir.join("lower-empty");
        fs::create_dir_all(&empty).map_err(ImageError::io("create", &empty))?;
        lowers.push(empty);
    }
    let mut all = lowers.clone();
    all.extend([upper.clone(), work.clone()]);
    let bad = all
        .iter()
        .find(|p| p.to_str().is_none_or(|s| s.contains([':', ',', '\n'])));
    if let Some(p) = bad {
        return Err(ImageError::io("mount overlay with", p.clone())(
            std::io::Error::other("path contains ':' or ','"),
        ));
    }
    let lowerdir: Vec<&str> = lowers.iter().filter_map(|p| p.to_str()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() >= 4096 {
        return Err(ImageError::io("mount overlay at", rootfs)(
            std::io::Error::other("overlay options exceed a page"),
        ));
    }
    sys::mount_overlay(rootfs, &options).map_err(ImageError::io("mount overlay at", rootfs))
}

/// Applies one snapshot onto `dst`: overlay whiteouts delete, opaque directories replace.
/// `links` maps (dev, inode) of multiply-linked files to their first copy, to keep hard links.
fn copy_layer(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let entries = fs::read_dir(src).map_err(ImageError::io("read", src))?;
    for entry in entries {
        let entry = entry.map_err(ImageError::io("read", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(ImageError::io("stat", &from))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            remove_any(&to).map_err(ImageError::io("remove", &to))?;
            continue;
        }
        if ft.is_dir() {
            let existing = fs::symlink_metadata(&to).ok();
            let opaque = sys::is_opaque(&from).map_err(ImageError::io("read xattrs of", &from))?;
            if existing.as_ref().is_some_and(|m| !m.is_dir()) || opaque {
                remove_any(&to).map_err(ImageError::io("remove", &to))?;
            }
            if fs::symlink_metadata(&to).is_err() {
                fs::create_dir(&to).map_err(ImageError::io("create", &to))?;
            }
            copy_layer(&from, &to, links)?;
        } else {
            remove_any(&to).map_err(ImageError::io("remove", &to))?;
            if ft.is_symlink() {
                let target = fs::read_link(&from).map_err(ImageError::io("read link", &from))?;
                std::os::unix::fs::symlink(&target, &to).map_err(ImageError::io("symlink", &to))?;
            } else if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                match links.get(&key) {
                    Some(first) if meta.nlink() > 1 => {
                        fs::hard_link(first, &to).map_err(ImageError::io("link", &to))?;
                        continue;
                    }
                    _ => {
                        fs::copy(&from, &to).map_err(ImageError::io("copy", &to))?;
                        if meta.nlink() > 1 {
                            links.insert(key, to.clone());
                        }
                    }
                }
            } else {
                tracing::debug!(path = %from.display(), "skipping special file in copied rootfs");
                continue;
            }
        }
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))
            .map_err(ImageError::io("chown", &to))?;
        if !ft.is_symlink() {
            let perms = fs::Permissions::from_mode(meta.mode() & 0o7777);
            fs::set_permissions(&to, perms).map_err(ImageError::io("chmod", &to))?;
        }
    }
    Ok(())
}
