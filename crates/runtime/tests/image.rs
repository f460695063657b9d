//! Pulling images from a real registry (Debian's docker-registry on 127.0.0.1): by tag and
//! by digest, pull policies, the registry's own errors, corrupt blobs, remove and gc.

use std::os::unix::fs::MetadataExt as _;

use anyhow::{Context as _, Result};
use gantry_runtime::image::{Digest, ImageError, ImageStore, PullPolicy, RegistryAuth};
use gantry_testkit::images;
use gantry_testkit::registry::Registry;

struct Fixture {
    registry: Registry,
    _dirs: tempfile::TempDir,
    store: ImageStore,
    /// `127.0.0.1:<port>/busybox:1`
    busybox: String,
    busybox_digest: String,
}

fn fixture() -> Result<Fixture> {
    let registry = Registry::start()?;
    let dirs = tempfile::tempdir()?;
    let layout = images::busybox_layout(&dirs.path().join("layout"))?;
    let busybox_digest = images::push(&layout, registry.addr(), "busybox:1")?;
    let store = ImageStore::open(dirs.path().join("images"))?;
    Ok(Fixture {
        busybox: format!("{}/busybox:1", registry.addr()),
        registry,
        _dirs: dirs,
        store,
        busybox_digest,
    })
}

fn anon() -> RegistryAuth {
    RegistryAuth::anonymous()
}

/// Modification time and inode of every file under `dir`, sorted.
fn fingerprint(dir: &std::path::Path) -> Vec<(String, i64, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.path().symlink_metadata().expect("stat");
            out.push((e.path().display().to_string(), m.mtime_nsec(), m.ino()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_then_by_digest_and_repeat_pulls_change_nothing() -> Result<()> {
    let f = fixture()?;
    let image = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    assert_eq!(image.digest.as_str(), f.busybox_digest);
    assert_eq!(image.config.cmd, vec!["sh"]);
    assert!(image.config.env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(image.layers.len(), 1);
    let root = &image.layers[0];
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(root.join("bin/sh"))?,
        std::path::PathBuf::from("busybox")
    );
    let tmp_mode = std::fs::metadata(root.join("tmp"))?.mode() & 0o7777;
    assert_eq!(tmp_mode, 0o1777, "modes are preserved");

    let before = fingerprint(f.store.root());
    let again = f
        .store
        .ensure(&f.busybox, PullPolicy::Always, &anon())
        .await?;
    assert_eq!(again, image);
    let by_digest = format!("{}/busybox@{}", f.registry.addr(), f.busybox_digest);
    let pinned = f
        .store
        .ensure(&by_digest, PullPolicy::Always, &anon())
        .await?;
    assert_eq!(pinned.digest, image.digest);
    assert_eq!(pinned.layers, image.layers);
    let after: Vec<_> = fingerprint(f.store.root())
        .into_iter()
        .filter(|(p, _, _)| !p.ends_with("refs.json"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _, _)| !p.ends_with("refs.json"))
        .collect();
    assert_eq!(
        before, after,
        "a second pull rewrites no blob and no snapshot"
    );

    let listed = f.store.list()?;
    let names: Vec<_> = listed.iter().map(|s| s.reference.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&f.busybox.as_str()));
    assert!(listed
        .iter()
        .all(|s| s.digest == image.digest && s.size > 1_000_000));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policies_decide_whether_the_registry_is_asked() -> Result<()> {
    let f = fixture()?;
    match f.store.ensure(&f.busybox, PullPolicy::Never, &anon()).await {
        Err(ImageError::NotPresent { reference }) => assert_eq!(reference, f.busybox),
        other => panic!("expected NotPresent, got {other:?}"),
    }
    let image = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    let pinned = format!("{}/busybox@{}", f.registry.addr(), f.busybox_digest);
    let Fixture {
        registry,
        store,
        busybox,
        _dirs,
        ..
    } = f;
    drop(registry);
    // The registry is gone: cached images still resolve unless the policy says Always.
    assert_eq!(
        store
            .ensure(&busybox, PullPolicy::IfNotPresent, &anon())
            .await?,
        image
    );
    assert_eq!(
        store.ensure(&busybox, PullPolicy::Never, &anon()).await?,
        image
    );
    let by_digest = store.ensure(&pinned, PullPolicy::Never, &anon()).await?;
    assert_eq!(
        by_digest.digest, image.digest,
        "a digest already pulled by tag is cached"
    );
    match store.ensure(&busybox, PullPolicy::Always, &anon()).await {
        Err(ImageError::Transport { registry, .. }) => assert!(busybox.starts_with(&registry)),
        other => panic!("expected a transport error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tags_and_repositories_report_the_registry_message() -> Result<()> {
    let f = fixture()?;
    for missing in [
        format!("{}/busybox:nope", f.registry.addr()),
        format!("{}/nothing-here:1", f.registry.addr()),
    ] {
        match f
            .store
            .ensure(&missing, PullPolicy::IfNotPresent, &anon())
            .await
        {
            Err(e @ ImageError::NotFound { .. }) => {
                let ImageError::NotFound {
                    reference,
                    registry_message,
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(reference, &missing);
                assert!(
                    registry_message.contains("unknown"),
                    "registry's words expected: {registry_message}"
                );
                assert!(e.to_string().contains(&missing));
            }
            other => panic!("expected NotFound for {missing}, got {other:?}"),
        }
    }
    match f
        .store
        .ensure("127.0.0.1:1/Upper:case", PullPolicy::IfNotPresent, &anon())
        .await
    {
        Err(ImageError::InvalidReference { .. }) => {}
        other => panic!("expected InvalidReference, got {other:?}"),
    }
    assert!(f.store.list()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_stored_blob_is_refused_and_fetched_again() -> Result<()> {
    let f = fixture()?;
    let image = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    let config = f.store.blob_path(&image.config_digest);
    let good = std::fs::read(&config)?;
    let mut bad = good.clone();
    bad[10] ^= 0x20;
    std::fs::write(&config, &bad)?;

    match f.store.ensure(&f.busybox, PullPolicy::Never, &anon()).await {
        Err(ImageError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, image.config_digest);
            assert_eq!(actual, Digest::of(&bad));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let again = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    assert_eq!(again, image);
    assert_eq!(std::fs::read(&config)?, good, "the blob was fetched again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_download_is_refused_naming_both_digests() -> Result<()> {
    let f = fixture()?;
    // Find the layer digest from a first pull, then corrupt what the registry serves.
    let image = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.store.blob_path(&image.digest))?)?;
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .context("layer digest")?
        .to_string();
    let data = f.registry.blob_data_path(&layer);
    let mut bytes = std::fs::read(&data)?;
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    std::fs::write(&data, &bytes)?;

    let fresh_dir = tempfile::tempdir()?;
    let fresh = ImageStore::open(fresh_dir.path())?;
    match fresh.ensure(&f.busybox, PullPolicy::Always, &anon()).await {
        Err(e @ ImageError::DigestMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&layer), "{msg}");
            assert!(msg.contains(&Digest::of(&bytes).to_string()), "{msg}");
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let blobs = std::fs::read_dir(fresh_dir.path().join("blobs/sha256"))?
        .flatten()
        .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
        .collect::<Vec<_>>();
    assert!(!blobs.contains(&layer), "the corrupt layer was not stored");
    assert_eq!(
        std::fs::read_dir(fresh_dir.path().join("tmp"))?.count(),
        0,
        "no temp files left"
    );
    assert!(fresh.list()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_and_gc_delete_unused_content_only() -> Result<()> {
    let f = fixture()?;
    let dir = tempfile::tempdir()?;
    let small = images::LayerBuilder::new()
        .file("hello", b"hi\n", 0o644)?
        .finish()?;
    images::write_layout(dir.path(), &[small], serde_json::json!({"Cmd": ["/hello"]}))?;
    images::push(dir.path(), f.registry.addr(), "small:1")?;
    let small_ref = format!("{}/small:1", f.registry.addr());

    let busybox = f
        .store
        .ensure(&f.busybox, PullPolicy::IfNotPresent, &anon())
        .await?;
    let small = f
        .store
        .ensure(&small_ref, PullPolicy::IfNotPresent, &anon())
        .await?;
    assert_eq!(f.store.list()?.len(), 2);

    // Over the threshold with busybox in use: only the small image goes.
    let report = f.store.gc(0, std::slice::from_ref(&busybox.digest)).await?;
    assert_eq!(report.removed, vec![small_ref.clone()]);
    assert!(report.freed_bytes > 0);
    assert!(!small.layers[0].exists());
    assert!(!f.store.blob_path(&small.config_digest).exists());
    assert_eq!(
        f.store
            .ensure(&f.busybox, PullPolicy::Never, &anon())
            .await?,
        busybox
    );

    // Under the threshold nothing goes.
    let report = f.store.gc(u64::MAX, &[]).await?;
    assert!(report.removed.is_empty());

    assert!(f.store.remove(&f.busybox).await?);
    assert!(!f.store.remove(&f.busybox).await?);
    assert!(f.store.list()?.is_empty());
    assert_eq!(
        std::fs::read_dir(f.store.root().join("blobs/sha256"))?.count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(f.store.root().join("snapshots"))?.count(),
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_one_copy() -> Result<()> {
    let f = fixture()?;
    let store = std::sync::Arc::new(f.store);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (store, reference) = (store.clone(), f.busybox.clone());
        tasks.push(tokio::spawn(async move {
            store
                .ensure(&reference, PullPolicy::IfNotPresent, &anon())
                .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        std::fs::read_dir(store.root().join("snapshots"))?.count(),
        1
    );
    assert_eq!(std::fs::read_dir(store.root().join("tmp"))?.count(), 0);
    assert_eq!(store.list()?.len(), 1);
    Ok(())
}
