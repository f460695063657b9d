//! Test images written by code as OCI image layouts (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), and pushed to a test [`Registry`](crate::registry::Registry) with
//! Debian's `skopeo`. There is no external registry: every image a test uses is built here.
//! `busybox_layout` makes a small but real image from Debian's `busybox-static`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::registry::apt_install;

/// Commands linked to `/bin/busybox` in [`busybox_layout`].
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "ps", "hostname", "id", "wget", "nc", "httpd", "env",
    "true", "false", "touch", "rm", "mkdir", "grep", "head", "tail", "kill", "date", "test",
    "printf", "pwd", "whoami", "mount", "top", "tar", "wc", "sed",
];

/// Builds one layer tarball (uncompressed); paths are relative to the image root.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.tar.append_data(&mut h, path, std::io::empty())?;
        Ok(self)
    }

    pub fn file(self, path: &str, contents: &[u8], mode: u32) -> Result<Self> {
        self.file_owned(path, contents, mode, 0, 0)
    }

    pub fn file_owned(
        mut self,
        path: &str,
        contents: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Regular, mode, contents.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.tar.append_data(&mut h, path, contents)?;
        Ok(self)
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut h, path, target)?;
        Ok(self)
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.tar.append_link(&mut h, path, target)?;
        Ok(self)
    }

    /// A regular file whose stored name is written as given, unchecked: for tests of
    /// malicious layers (`../escape`), which the tar writer otherwise refuses.
    pub fn unchecked_file(mut self, name: &str, contents: &[u8]) -> Result<Self> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, contents.len() as u64);
        let raw = &mut h.as_old_mut().name;
        if name.len() >= raw.len() {
            bail!("name {name:?} is too long for a raw tar header");
        }
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.tar.append(&h, contents)?;
        Ok(self)
    }

    /// Deletes `path` of lower layers (`.wh.<name>`).
    pub fn whiteout(self, path: &str) -> Result<Self> {
        let p = Path::new(path);
        let name = p
            .file_name()
            .context("whiteout of the root")?
            .to_string_lossy();
        let wh = p.with_file_name(format!(".wh.{name}"));
        let wh = wh.to_string_lossy().into_owned();
        self.file(&wh, b"", 0o644)
    }

    /// Hides everything lower layers have in directory `dir` (`.wh..wh..opq`).
    pub fn opaque(self, dir: &str) -> Result<Self> {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            b"",
            0o644,
        )
    }

    /// The tar bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.tar
            .into_inner()
            .context("failed to finish the layer tar")
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes an OCI image layout at `dir` with the given uncompressed layer tars (gzipped here,
/// lowest first) and image config section (`{"Cmd": …, "Env": …}`). Returns the manifest
/// digest.
pub fn write_layout(dir: &Path, layers: &[Vec<u8>], config: serde_json::Value) -> Result<String> {
    let (digest, size) = write_image(dir, layers, config, host_arch())?;
    write_index_json(dir, OCI_MANIFEST, &digest, size)?;
    Ok(digest)
}

/// Writes an OCI image layout whose image is a multi-platform index: one image for this
/// machine's architecture (with `config`) and one for `other_arch` (with `other_config`),
/// both of `layers`. Returns (index digest, this machine's manifest digest).
pub fn write_multiarch_layout(
    dir: &Path,
    layers: &[Vec<u8>],
    config: serde_json::Value,
    other_arch: &str,
    other_config: serde_json::Value,
) -> Result<(String, String)> {
    let (other, other_size) = write_image(dir, layers, other_config, other_arch)?;
    let (mine, mine_size) = write_image(dir, layers, config, host_arch())?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": other, "size": other_size,
             "platform": {"os": "linux", "architecture": other_arch}},
            {"mediaType": OCI_MANIFEST, "digest": mine, "size": mine_size,
             "platform": {"os": "linux", "architecture": host_arch()}},
        ],
    });
    let bytes = serde_json::to_vec(&index)?;
    let digest = sha256(&bytes);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        &bytes,
    )?;
    write_index_json(dir, OCI_INDEX, &digest, bytes.len())?;
    Ok((digest, mine))
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn write_index_json(dir: &Path, media_type: &str, digest: &str, size: usize) -> Result<()> {
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": size}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}

/// Writes one image's blobs (layers, config, manifest); returns the manifest digest and size.
fn write_image(
    dir: &Path,
    layers: &[Vec<u8>],
    config: serde_json::Value,
    arch: &str,
) -> Result<(String, usize)> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).context("failed to create the layout")?;
    let put = |data: &[u8]| -> Result<(String, usize)> {
        let digest = sha256(data);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), data)?;
        Ok((digest, data.len()))
    };
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(sha256(tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar)?;
        let (digest, size) = put(&gz.finish()?)?;
        layer_descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": size,
        }));
    }
    let config_doc = json!({
        "architecture": arch, "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    });
    let (config_digest, config_size) = put(&serde_json::to_vec(&config_doc)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layer_descs,
    });
    put(&serde_json::to_vec(&manifest)?)
}

/// The base layer of [`busybox_layout`]: `/bin/busybox` with applet symlinks, `/etc/passwd`,
/// `/etc/group`, `/tmp`, `/root`.
pub fn busybox_layer() -> Result<Vec<u8>> {
    apt_install("/bin/busybox", "busybox-static")?;
    let busybox = std::fs::read("/bin/busybox").context("failed to read /bin/busybox")?;
    let mut l = LayerBuilder::new()
        .dir("bin", 0o755)?
        .file("bin/busybox", &busybox, 0o755)?;
    for applet in BUSYBOX_APPLETS {
        l = l.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    l.dir("etc", 0o755)?
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        )?
        .file("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)?
        .dir("tmp", 0o1777)?
        .dir("root", 0o700)?
        .finish()
}

/// The config section of [`busybox_layout`].
pub fn busybox_config() -> serde_json::Value {
    json!({"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
}

/// Writes a one-layer busybox image layout into `dir`; returns `dir`.
pub fn busybox_layout(dir: &Path) -> Result<PathBuf> {
    write_layout(dir, &[busybox_layer()?], busybox_config())?;
    Ok(dir.to_path_buf())
}

/// How [`push_with`] pushes.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `user:password` for the registry.
    pub creds: Option<String>,
    /// skopeo's `--format`: `v2s2` converts to a Docker schema 2 manifest.
    pub format: Option<String>,
    /// Push a multi-platform index with all its images (`--multi-arch all`).
    pub all: bool,
}

/// Pushes the single image of `layout` to `registry` (`host:port`, plain HTTP) as `name`
/// (`repo:tag`) with skopeo; returns the manifest digest the registry stored.
pub fn push(layout: &Path, registry: &str, name: &str) -> Result<String> {
    push_with(layout, registry, name, &PushOptions::default())
}

/// [`push`] with options.
pub fn push_with(layout: &Path, registry: &str, name: &str, opts: &PushOptions) -> Result<String> {
    apt_install("/usr/bin/skopeo", "skopeo")?;
    let digest_file = tempfile::NamedTempFile::new()?;
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ]);
    if let Some(c) = &opts.creds {
        cmd.args(["--dest-creds", c]);
    }
    if let Some(f) = &opts.format {
        cmd.args(["--format", f]);
    }
    if opts.all {
        cmd.args(["--multi-arch", "all"]);
    }
    let out = cmd
        .arg("--digestfile")
        .arg(digest_file.path())
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{registry}/{name}"))
        .output()
        .context("failed to run skopeo")?;
    if !out.status.success() {
        bail!(
            "skopeo copy to {registry}/{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let digest = std::fs::read_to_string(digest_file.path())?;
    Ok(digest.trim().to_string())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
