//! Component tests: the API server in process over a real store, driven by the real kube-rs
//! client (list, watch through `kube::runtime::watcher` including recovery from 410 Gone after
//! compaction, and server-side apply through `Api::patch`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};

use gantry_apiserver::{ApiServer, ApiServerConfig, Pki};
use gantry_store::{Store, WalStore, WalStoreConfig};

struct Harness {
    client: Client,
    store: Arc<WalStore>,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = WalStore::open(WalStoreConfig::new(dir.path().join("store"))).expect("store opens");
    let pki = Pki::load_or_create(dir.path(), &[]).expect("pki");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = ApiServer::new(
        store.clone(),
        ApiServerConfig {
            admin_token: pki.admin_token.clone(),
            advertise_address: addr.to_string(),
            node_client: None,
        },
    );
    server.start_controllers().await.expect("bootstrap");
    let tls = pki.server_config().expect("tls");
    tokio::spawn(server.serve(listener, tls, std::future::pending()));
    let kubeconfig = Kubeconfig::from_yaml(&pki.kubeconfig(&format!("https://{addr}")))
        .expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    Harness {
        client,
        store,
        _dir: dir,
    }
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cm.data = Some([("k".to_string(), name.to_string())].into_iter().collect());
    cm
}

#[tokio::test]
async fn list_and_watch_with_the_kube_runtime_watcher() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("pre-{i}"), &[("app", "w")]),
        )
        .await
        .expect("create");
    }
    let listed = api
        .list(&ListParams::default().labels("app=w"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 3);
    assert!(listed.metadata.resource_version.is_some());

    let cfg = watcher::Config::default().labels("app=w");
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut initial = initial_names(&mut stream).await;
    initial.sort();
    assert_eq!(initial, vec!["pre-0", "pre-1", "pre-2"]);
    api.create(&PostParams::default(), &configmap("live", &[("app", "w")]))
        .await
        .expect("create");
    api.create(&PostParams::default(), &configmap("other", &[("app", "x")]))
        .await
        .expect("create");
    let seen = next_apply(&mut stream).await;
    assert_eq!(
        seen, "live",
        "the watcher saw an object outside its selector or missed one"
    );
}

/// The names the watcher delivers before its first `InitDone`.
async fn initial_names(
    stream: &mut (impl futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>>
              + Unpin),
) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watcher stalls")
        {
            Some(Ok(watcher::Event::InitApply(cm))) => {
                names.push(cm.metadata.name.unwrap_or_default())
            }
            Some(Ok(watcher::Event::InitDone)) => return names,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("watcher error: {e}"),
            None => panic!("watcher ended"),
        }
    }
}

async fn next_apply(
    stream: &mut (impl futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>>
              + Unpin),
) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await
            .expect("watcher stalls")
        {
            Some(Ok(watcher::Event::Apply(cm))) => return cm.metadata.name.unwrap_or_default(),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("watcher error: {e}"),
            None => panic!("watcher ended"),
        }
    }
}

#[tokio::test]
async fn watcher_relists_after_410_gone() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("first", &[("app", "g")]))
        .await
        .expect("create");
    // Short server-side timeouts make the watcher re-watch from its last resourceVersion.
    let cfg = watcher::Config::default().labels("app=g").timeout(1);
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut inits = 0;
    while inits < 1 {
        if let Some(Ok(watcher::Event::InitDone)) = stream.next().await {
            inits += 1;
        }
    }
    // Writes the watcher does not see move the store on; compaction then forgets the
    // revision the watcher would resume from.
    for i in 0..5 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("noise-{i}"), &[("app", "n")]),
        )
        .await
        .expect("create");
    }
    h.store.compact(h.store.current_revision());
    api.create(
        &PostParams::default(),
        &configmap("second", &[("app", "g")]),
    )
    .await
    .expect("create");
    h.store.compact(h.store.current_revision());
    // The watcher must get 410, re-list (a new Init … InitDone) and so learn about "second".
    let mut relisted = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("no re-list after 410");
        match ev {
            Some(Ok(watcher::Event::InitApply(cm))) => {
                relisted.push(cm.metadata.name.unwrap_or_default())
            }
            Some(Ok(watcher::Event::InitDone)) if !relisted.is_empty() => break,
            _ => {}
        }
    }
    relisted.sort();
    assert_eq!(relisted, vec!["first", "second"]);
}

#[tokio::test]
async fn server_side_apply_through_api_patch() {
    let h = start().await;
    let api: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let manifest = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ssa"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ssa"}},
                 "template": {"metadata": {"labels": {"app": "ssa"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}
    });
    let pp = PatchParams::apply("kube-test");
    let d = api
        .patch("ssa", &pp, &Patch::Apply(&manifest))
        .await
        .expect("apply creates");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default()
            )
        })
        .collect();
    assert!(
        managers.contains(&"kube-test/Apply".to_string()),
        "{managers:?}"
    );

    let mut changed = manifest.clone();
    changed["spec"]["replicas"] = serde_json::json!(4);
    let err = api
        .patch(
            "ssa",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&changed),
        )
        .await
        .expect_err("a second manager changing replicas conflicts");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(s.message.contains(".spec.replicas"), "{}", s.message);
        }
        other => panic!("unexpected error {other}"),
    }
    let d = api
        .patch(
            "ssa",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&changed),
        )
        .await
        .expect("forced");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(4));
}

#[tokio::test]
async fn metadata_lists_and_streaming_list_watches() {
    let h = start().await;
    let api: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for i in 0..2 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("m-{i}"), &[("app", "m")]),
        )
        .await
        .expect("create");
    }
    // PartialObjectMetadataList (what the garbage collectors of other systems use).
    let metas = api
        .list_metadata(&ListParams::default().labels("app=m"))
        .await
        .expect("metadata list");
    let names: Vec<String> = metas
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["m-0", "m-1"]);
    // sendInitialEvents=true: the initial state arrives as events, then the end bookmark.
    let cfg = watcher::Config::default().labels("app=m").streaming_lists();
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut initial = initial_names(&mut stream).await;
    initial.sort();
    assert_eq!(initial, vec!["m-0", "m-1"]);
    api.create(&PostParams::default(), &configmap("m-2", &[("app", "m")]))
        .await
        .expect("create");
    assert_eq!(next_apply(&mut stream).await, "m-2");
}

#[tokio::test]
async fn status_subresource_and_delete_collection() {
    let h = start().await;
    let api: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let manifest = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "st"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "st"}},
                 "template": {"metadata": {"labels": {"app": "st"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"replicas": 9}
    });
    let created: Deployment = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(manifest).expect("valid"),
        )
        .await
        .expect("create");
    assert_eq!(
        created.status.as_ref().and_then(|s| s.replicas),
        None,
        "status is not settable at create"
    );
    // The status subresource writes status only.
    let patch =
        serde_json::json!({"spec": {"replicas": 7}, "status": {"replicas": 3, "readyReplicas": 2}});
    let d = api
        .patch_status("st", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status patch");
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(2));
    assert_eq!(
        d.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "a status write changed the spec"
    );
    // The main resource ignores status.
    let d = api
        .patch(
            "st",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"readyReplicas": 0}})),
        )
        .await
        .expect("patch");
    assert_eq!(d.status.and_then(|s| s.ready_replicas), Some(2));

    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(&PostParams::default(), &configmap(name, &[("tier", tier)]))
            .await
            .expect("create");
    }
    cms.delete_collection(&Default::default(), &ListParams::default().labels("tier=x"))
        .await
        .expect("deletecollection");
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("tier"))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["c"]);
}
