//! Unpacked layers and container root filesystems, with images built here and pulled from a
//! real registry: whiteouts, ownership, links, shared base layers, overlay and copy rootfs.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::Result;
use gantry_runtime::image::{
    rootfs, Image, ImageError, ImageStore, PullPolicy, RegistryAuth, RootFsKind,
};
use gantry_testkit::images::{self, LayerBuilder};
use gantry_testkit::registry::Registry;

/// Pushes an image made of `layers` as `name` and pulls it into `store`.
async fn push_and_pull(
    registry: &Registry,
    store: &ImageStore,
    name: &str,
    layers: &[Vec<u8>],
) -> Result<Image> {
    let dir = tempfile::tempdir()?;
    images::write_layout(dir.path(), layers, serde_json::json!({"Cmd": ["/bin/sh"]}))?;
    images::push(dir.path(), registry.addr(), name)?;
    let reference = format!("{}/{name}", registry.addr());
    Ok(store
        .ensure(
            &reference,
            PullPolicy::IfNotPresent,
            &RegistryAuth::anonymous(),
        )
        .await?)
}

/// A base layer and a layer that deletes, hides and replaces some of it.
fn two_layers() -> Result<Vec<Vec<u8>>> {
    let base = LayerBuilder::new()
        .dir("etc", 0o755)?
        .file("etc/keep", b"keep\n", 0o644)?
        .file("etc/gone", b"gone\n", 0o644)?
        .dir("data", 0o755)?
        .file("data/a", b"a\n", 0o644)?
        .file("data/b", b"b\n", 0o644)?
        .file_owned("home/app/secret", b"s\n", 0o600, 1000, 1000)?
        .file("bin/tool", b"#!/bin/sh\n", 0o4755)?
        .hardlink("bin/tool-link", "bin/tool")?
        .symlink("etc/link", "/etc/keep")?
        .finish()?;
    let top = LayerBuilder::new()
        .whiteout("etc/gone")?
        .opaque("data")?
        .file("data/c", b"c\n", 0o644)?
        .file("etc/keep", b"changed\n", 0o644)?
        .hardlink("home/app/secret-link", "home/app/secret")?
        .finish()?;
    Ok(vec![base, top])
}

fn assert_merged_view(root: &Path) -> Result<()> {
    assert_eq!(std::fs::read_to_string(root.join("etc/keep"))?, "changed\n");
    assert!(!root.join("etc/gone").exists(), "whiteout deletes");
    let mut data: Vec<_> = std::fs::read_dir(root.join("data"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, vec!["c"], "opaque directory hides the lower one");
    let secret = std::fs::metadata(root.join("home/app/secret"))?;
    assert_eq!(
        (secret.uid(), secret.gid(), secret.mode() & 0o7777),
        (1000, 1000, 0o600)
    );
    let tool = std::fs::metadata(root.join("bin/tool"))?;
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid bit kept");
    let link = std::fs::metadata(root.join("bin/tool-link"))?;
    assert_eq!(link.ino(), tool.ino(), "hard link kept");
    assert_eq!(
        std::fs::read_link(root.join("etc/link"))?,
        Path::new("/etc/keep")
    );
    Ok(())
}

fn mount_count(path: &Path) -> usize {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path.display().to_string();
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(p.as_str()))
        .count()
}

fn mounted(path: &Path) -> bool {
    mount_count(path) > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_ownership_and_links_in_overlay_and_copy_rootfs() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let image = push_and_pull(&registry, &store, "layered:1", &two_layers()?).await?;
    assert_eq!(image.layers.len(), 2);
    // The lower snapshot is untouched by the upper layer's deletions.
    assert!(image.layers[0].join("etc/gone").exists());
    assert!(image.layers[0].join("data/a").exists());

    for kind in [RootFsKind::Overlay, RootFsKind::Copy] {
        let container = dir.path().join(format!("container-{kind:?}"));
        let fs = rootfs::prepare_kind(&image, &container, kind)?;
        assert_eq!(fs.kind, kind);
        assert_eq!(mounted(&fs.path), kind == RootFsKind::Overlay);
        assert_merged_view(&fs.path)?;
        fs.release()?;
        assert!(!container.join("rootfs").exists());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_writes_go_to_the_container_and_release_cleans_up() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let layout = images::busybox_layout(&dir.path().join("layout"))?;
    images::push(&layout, registry.addr(), "busybox:1")?;
    let reference = format!("{}/busybox:1", registry.addr());
    let image = store
        .ensure(
            &reference,
            PullPolicy::IfNotPresent,
            &RegistryAuth::anonymous(),
        )
        .await?;

    let container = dir.path().join("pod-a/container-1");
    let fs = rootfs::prepare(&image, &container)?;
    assert_eq!(fs.kind, RootFsKind::Overlay);
    assert!(mounted(&fs.path));
    assert!(fs.path.join("bin/busybox").is_file());
    std::fs::write(fs.path.join("tmp/written"), b"x")?;
    std::fs::remove_file(fs.path.join("etc/passwd"))?;
    assert!(
        container.join("upper/tmp/written").exists(),
        "writes land in upper"
    );
    assert!(
        !image.layers[0].join("tmp/written").exists(),
        "the snapshot is untouched"
    );
    assert!(
        image.layers[0].join("etc/passwd").exists(),
        "deletes do not reach the snapshot"
    );

    // Preparing again (an agent restarted) keeps the mount and the writes, without stacking.
    let again = rootfs::prepare(&image, &container)?;
    assert_eq!(again.path, fs.path);
    assert!(again.path.join("tmp/written").exists());
    assert_eq!(mount_count(&fs.path), 1);

    // A second container of the same image sees the image, not the first one's changes.
    let other = rootfs::prepare(&image, &dir.path().join("pod-b/container-1"))?;
    assert!(other.path.join("etc/passwd").exists());
    assert!(!other.path.join("tmp/written").exists());

    let path = fs.path.clone();
    fs.release()?;
    assert!(!mounted(&path));
    for d in ["rootfs", "upper", "work"] {
        assert!(!container.join(d).exists(), "{d} removed");
    }
    other.release()?;
    assert!(
        image.layers[0].join("bin/busybox").is_file(),
        "release keeps the snapshot"
    );
    // Releasing again (an agent cleaning up after a crash) is harmless.
    rootfs::release_dir(&container)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_images_sharing_a_base_layer_unpack_it_once() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let base = LayerBuilder::new()
        .file("base/big", &vec![7u8; 256 << 10], 0o644)?
        .finish()?;
    let mut images = Vec::new();
    for i in 0..10 {
        let own = LayerBuilder::new()
            .file("id", format!("{i}\n").as_bytes(), 0o644)?
            .finish()?;
        let image = push_and_pull(
            &registry,
            &store,
            &format!("app{i}:1"),
            &[base.clone(), own],
        )
        .await?;
        images.push(image);
    }
    let base_snapshot = &images[0].layers[0];
    let inode = std::fs::metadata(base_snapshot.join("base/big"))?.ino();
    for (i, image) in images.iter().enumerate() {
        assert_eq!(&image.layers[0], base_snapshot);
        assert_eq!(
            std::fs::read_to_string(image.layers[1].join("id"))?,
            format!("{i}\n")
        );
    }
    assert_eq!(
        std::fs::metadata(base_snapshot.join("base/big"))?.ino(),
        inode,
        "never re-unpacked"
    );
    let snapshots = std::fs::read_dir(store.root().join("snapshots"))?.count();
    assert_eq!(snapshots, 11, "one base snapshot and one per image");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_escaping_the_root_are_refused() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let evil = LayerBuilder::new()
        .unchecked_file("../../escaped", b"x")?
        .finish()?;
    match push_and_pull(&registry, &store, "evil:1", &[evil]).await {
        Err(e) => match e.downcast_ref::<ImageError>() {
            Some(ImageError::PathEscape { path, .. }) => assert!(path.contains("escaped")),
            _ => panic!("expected PathEscape, got {e:?}"),
        },
        Ok(_) => panic!("the evil layer was accepted"),
    }
    assert!(!dir.path().join("escaped").exists());
    assert!(!store.root().join("escaped").exists());
    assert_eq!(
        std::fs::read_dir(store.root().join("snapshots"))?.count(),
        0
    );
    assert_eq!(std::fs::read_dir(store.root().join("tmp"))?.count(), 0);
    Ok(())
}
