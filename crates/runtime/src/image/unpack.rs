//! Unpacks one layer tarball (gzip or plain) into a snapshot directory, turning OCI whiteouts
//! into overlayfs ones: `.wh.<name>` becomes a 0/0 character device `<name>`, `.wh..wh..opq`
//! sets `trusted.overlay.opaque=y` on its directory.
//! The one thing to know: every path and hard-link target is checked to stay inside the
//! snapshot, and the `tar` crate refuses to write through symlinks that leave it.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::digest::HashingReader;
use super::{sys, Digest, ImageError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpacks `blob` into the existing empty directory `dest` and returns the digest of the
/// uncompressed tar stream (the layer's diff ID). `lowers` are the snapshots below it (lowest
/// first): a hard link to a file of a lower layer gets a copy of that file in this snapshot.
pub fn unpack_layer(
    blob: &Path,
    layer: &Digest,
    dest: &Path,
    lowers: &[PathBuf],
) -> Result<Digest, ImageError> {
    let err = |source: io::Error| ImageError::Unpack {
        layer: layer.clone(),
        source,
    };
    let mut file = BufReader::new(File::open(blob).map_err(ImageError::io("open", blob))?);
    let reader: Box<dyn Read> = if is_gzip(&mut file).map_err(err)? {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(HashingReader::new(reader));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?.into_owned();
        let rel = inside(&path).ok_or_else(|| escape(layer, &path))?;
        if let Some(target) = entry.link_name().map_err(err)? {
            let hard = entry.header().entry_type().is_hard_link();
            if hard {
                let rel = inside(&target).ok_or_else(|| escape(layer, &target))?;
                copy_up_from_lowers(&rel, dest, lowers).map_err(err)?;
            }
        }
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
            std::fs::create_dir_all(&parent).map_err(err)?;
            if name == OPAQUE_MARKER {
                sys::set_opaque(&parent).map_err(err)?;
            } else {
                let target = parent.join(hidden);
                remove_any(&target).map_err(err)?;
                sys::mknod_whiteout(&target).map_err(err)?;
            }
            continue;
        }
        if !entry.unpack_in(dest).map_err(err)? {
            return Err(escape(layer, &path));
        }
    }
    let hashing = archive.into_inner();
    hashing.finish().map_err(err)
}

/// Copies `rel` from the highest lower snapshot that has it into `dest`, unless `dest` has it.
fn copy_up_from_lowers(rel: &Path, dest: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let to = dest.join(rel);
    if std::fs::symlink_metadata(&to).is_ok() {
        return Ok(());
    }
    for lower in lowers.iter().rev() {
        let from = lower.join(rel);
        match std::fs::symlink_metadata(&from) {
            Ok(m) if m.is_file() => {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&from, &to)?;
                std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
                std::fs::set_permissions(&to, m.permissions())?;
                return Ok(());
            }
            Ok(_) => return Ok(()),
            Err(_) => continue,
        }
    }
    Ok(())
}

/// Whether the stream starts with the gzip magic; the reader is not advanced.
fn is_gzip(r: &mut BufReader<File>) -> io::Result<bool> {
    use std::io::BufRead as _;
    let buf = r.fill_buf()?;
    Ok(buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
}

/// The path relative to the root, or `None` if it climbs out (`..`).
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn escape(layer: &Digest, path: &Path) -> ImageError {
    ImageError::PathEscape {
        layer: layer.clone(),
        path: path.display().to_string(),
    }
}

/// Removes whatever is at `path` (file, symlink or directory tree); absent is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tar_layers_unpack_and_hash_to_their_diff_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "a/b.txt", &b"hi\n"[..])
            .expect("append");
        let tar = b.into_inner().expect("tar");
        let blob = dir.path().join("blob");
        std::fs::write(&blob, &tar).expect("write");
        let dest = dir.path().join("snap");
        std::fs::create_dir(&dest).expect("mkdir");
        let layer = Digest::of(&tar);
        let diff = unpack_layer(&blob, &layer, &dest, &[]).expect("unpack");
        assert_eq!(diff, layer, "uncompressed: diff ID == blob digest");
        assert_eq!(std::fs::read(dest.join("a/b.txt")).expect("read"), b"hi\n");
    }

    #[test]
    fn paths_are_confined() {
        assert_eq!(inside(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(
            inside(Path::new("/etc/passwd")),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(inside(Path::new("a/../../b")), None);
    }
}
