//! OCI images: parse references, pull from a distribution registry, keep verified
//! content-addressed blobs, unpack layers into shared snapshots and give containers a rootfs.
//! Invariant: nothing is renamed into `blobs/` or `snapshots/` before it is complete and its
//! digest verified, so a crash mid-pull leaves only `tmp/` litter, never a corrupt store.
//!
//! Layout under the store's directory (see `docs/dev/pod-lifecycle.md`, "Images"):
//! `blobs/sha256/<hex>` (manifests, configs, layers), `refs.json` (reference → manifest
//! digest), `snapshots/<chain-id>/` (one layer's files with whiteouts in overlayfs form:
//! a 0/0 character device deletes, `trusted.overlay.opaque=y` hides the lower directory),
//! `tmp/` (downloads and unpacks in progress).

mod auth;
mod client;
mod digest;
mod manifest;
mod reference;
mod refs;
pub mod rootfs;
mod store;
mod sys;
mod unpack;

use std::path::PathBuf;

pub use auth::{Credentials, RegistryAuth};
pub use digest::Digest;
pub use reference::Reference;
pub use rootfs::{RootFs, RootFsKind};
pub use store::{GcReport, ImageStore, ImageStoreConfig, ImageSummary};

/// Whether a cached reference is re-resolved against the registry (`imagePullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always ask the registry what the reference points to; blobs already stored are reused.
    Always,
    /// Use the cached image when the reference is known, pull otherwise.
    IfNotPresent,
    /// Never contact the registry; fail with [`ImageError::NotPresent`] when not cached.
    Never,
}

/// An image ready to run: its configuration and its unpacked layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The reference as asked for, normalized (`docker.io/library/busybox:latest`).
    pub reference: Reference,
    /// The digest the reference resolved to (an image index's digest for multi-platform
    /// images): Kubernetes' `imageID`; pulling `repo@digest` gives the same image.
    pub digest: Digest,
    /// The platform manifest's config blob digest.
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Snapshot directories, lowest layer first.
    pub layers: Vec<PathBuf>,
}

/// The parts of an image's config the container runtime needs (OCI image-spec "config").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries, in order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `port/proto` entries such as `80/tcp`.
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: Vec<(String, String)>,
    pub os: String,
    pub architecture: String,
}

/// Everything that can go wrong with images; messages name the reference or digest involved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("image {reference} not found: {registry_message}")]
    NotFound {
        reference: String,
        registry_message: String,
    },
    #[error("image {reference} is not present and the pull policy is Never")]
    NotPresent { reference: String },
    #[error("registry {registry} refused access to {reference}: {message}")]
    Unauthorized {
        registry: String,
        reference: String,
        message: String,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("registry {registry} answered {status} for {url}: {message}")]
    Registry {
        registry: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("failed to reach registry {registry}: {reason}")]
    Transport { registry: String, reason: String },
    #[error("invalid manifest or config {digest}: {reason}")]
    InvalidManifest { digest: String, reason: String },
    #[error("unsupported media type {media_type} in {reference}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    #[error("image {reference} has no manifest for {os}/{architecture}")]
    NoMatchingPlatform {
        reference: String,
        os: String,
        architecture: String,
    },
    #[error("invalid registry credentials: {reason}")]
    InvalidAuthConfig { reason: String },
    #[error("layer {layer} has an entry escaping the root: {path}")]
    PathEscape { layer: Digest, path: String },
    #[error("failed to unpack layer {layer}")]
    Unpack {
        layer: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }
}
