//! Registry features a real registry exercises: Docker schema 2 manifests, multi-platform
//! indexes, Basic and Bearer authentication from a dockerconfigjson pull secret.

use anyhow::Result;
use gantry_runtime::image::{ImageError, ImageStore, PullPolicy, RegistryAuth};
use gantry_testkit::images::{self, LayerBuilder, PushOptions};
use gantry_testkit::registry::{Registry, RegistryAccess};

fn small_layer(text: &str) -> Result<Vec<u8>> {
    LayerBuilder::new()
        .file("hello", text.as_bytes(), 0o644)?
        .finish()
}

fn secret(registry: &str, user: &str, password: &str) -> Result<RegistryAuth> {
    let json = serde_json::json!({"auths": {registry: {"username": user, "password": password}}});
    Ok(RegistryAuth::from_dockerconfigjson(&serde_json::to_vec(
        &json,
    )?)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_schema2_manifests_are_pulled() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    images::write_layout(
        &layout,
        &[small_layer("docker\n")?],
        serde_json::json!({"Cmd": ["/hello"], "WorkingDir": "/w"}),
    )?;
    let opts = PushOptions {
        format: Some("v2s2".into()),
        ..PushOptions::default()
    };
    let digest = images::push_with(&layout, registry.addr(), "docker:1", &opts)?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let image = store
        .ensure(
            &format!("{}/docker:1", registry.addr()),
            PullPolicy::Always,
            &RegistryAuth::anonymous(),
        )
        .await?;
    assert_eq!(image.digest.as_str(), digest);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blob_path(&image.digest))?)?;
    assert_eq!(
        manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "skopeo pushed a Docker manifest"
    );
    assert_eq!(image.config.working_dir.as_deref(), Some("/w"));
    assert_eq!(
        std::fs::read_to_string(image.layers[0].join("hello"))?,
        "docker\n"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_resolve_to_this_machines_platform() -> Result<()> {
    let registry = Registry::start()?;
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    let other = if std::env::consts::ARCH == "aarch64" {
        "amd64"
    } else {
        "arm64"
    };
    let (index, mine) = images::write_multiarch_layout(
        &layout,
        &[small_layer("multi\n")?],
        serde_json::json!({"Cmd": ["mine"]}),
        other,
        serde_json::json!({"Cmd": ["other"]}),
    )?;
    let opts = PushOptions {
        all: true,
        ..PushOptions::default()
    };
    let pushed = images::push_with(&layout, registry.addr(), "multi:1", &opts)?;
    assert_eq!(pushed, index);
    let store = ImageStore::open(dir.path().join("images"))?;
    let image = store
        .ensure(
            &format!("{}/multi:1", registry.addr()),
            PullPolicy::Always,
            &RegistryAuth::anonymous(),
        )
        .await?;
    assert_eq!(image.digest.as_str(), index, "imageID is the index digest");
    assert_eq!(image.config.cmd, vec!["mine"]);
    assert!(store
        .blob_path(&gantry_runtime::image::Digest::parse(&mine).map_err(anyhow::Error::msg)?)
        .exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_uses_the_pull_secret() -> Result<()> {
    let access = RegistryAccess::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    };
    pull_with_credentials(access, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_from_the_realm() -> Result<()> {
    let access = RegistryAccess::Token {
        user: "alice".into(),
        password: "wonderland".into(),
    };
    pull_with_credentials(access, |r| {
        assert!(r.tokens_issued() >= 1, "a token was issued")
    })
    .await
}

/// Pushes with the right credentials, then pulls with none, wrong ones and right ones.
async fn pull_with_credentials(access: RegistryAccess, check: impl Fn(&Registry)) -> Result<()> {
    let registry = Registry::start_with(access)?;
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    images::write_layout(
        &layout,
        &[small_layer("private\n")?],
        serde_json::json!({"Cmd": ["/hello"]}),
    )?;
    let opts = PushOptions {
        creds: Some("alice:wonderland".into()),
        ..PushOptions::default()
    };
    images::push_with(&layout, registry.addr(), "private:1", &opts)?;
    let store = ImageStore::open(dir.path().join("images"))?;
    let reference = format!("{}/private:1", registry.addr());

    for auth in [
        RegistryAuth::anonymous(),
        secret(registry.addr(), "alice", "wrong")?,
    ] {
        match store.ensure(&reference, PullPolicy::Always, &auth).await {
            Err(e @ ImageError::Unauthorized { .. }) => {
                assert!(e.to_string().contains(registry.addr()), "{e}");
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
    let image = store
        .ensure(
            &reference,
            PullPolicy::Always,
            &secret(registry.addr(), "alice", "wonderland")?,
        )
        .await?;
    assert_eq!(
        std::fs::read_to_string(image.layers[0].join("hello"))?,
        "private\n"
    );
    check(&registry);
    Ok(())
}
