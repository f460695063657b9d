//! Controllers that live inside the API server because they finish what its own semantics
//! start: the garbage collector (ownerReferences with Background, Foreground and Orphan
//! propagation), namespace termination, the `default` ServiceAccount of every namespace, and
//! the bootstrap objects (system namespaces, the `kubernetes` Service).
//!
//! They react to a change feed of the whole store and only rescan when a change can matter
//! to them (a delete, a deletion mark, an owner reference, a new namespace), so bulk writes of
//! ordinary objects cost them nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_api::registry::{self, ResourceType};
use gantry_store::{Event, Store};
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::crud::WriteError;
use crate::delete::{DeleteOptions, Propagation, FOREGROUND, ORPHAN};
use crate::object;
use crate::server::ApiServer;
use crate::status::ApiError;

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
/// A full rescan happens at least this often, whatever the feed says (a safety net: the feed
/// alone drives the controllers).
const RESYNC: Duration = Duration::from_secs(600);

struct Item {
    rt: &'static ResourceType,
    obj: Value,
}

impl<S: Store> ApiServer<S> {
    /// Creates the system namespaces and the `kubernetes` Service if they are missing.
    pub(crate) async fn bootstrap(&self) -> Result<(), ApiError> {
        let ns_rt = registry::by_plural("", "v1", "namespaces").expect("namespaces are served");
        for ns in SYSTEM_NAMESPACES {
            if self.get_object(ns_rt, None, ns)?.is_none() {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                match self.create_object(ns_rt, None, obj, None, false).await {
                    Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let svc_rt = registry::by_plural("", "v1", "services").expect("services are served");
        if self
            .get_object(svc_rt, Some("default"), "kubernetes")?
            .is_none()
        {
            let port = self
                .config
                .advertise_address
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(6443);
            let obj = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
            });
            match self
                .create_object(svc_rt, Some("default"), obj, None, false)
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs the controllers until the process ends.
    pub(crate) async fn run_controllers(self: Arc<Self>) {
        loop {
            let from = self.store.current_revision();
            if let Err(e) = self.reconcile_all().await {
                warn!(error = %e, "controller pass failed");
            }
            let Ok(mut watch) = self.store.watch("/registry/", from) else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            loop {
                let mut relevant = false;
                let timeout = tokio::time::sleep(RESYNC);
                tokio::pin!(timeout);
                tokio::select! {
                    _ = &mut timeout => relevant = true,
                    ev = watch.events.recv() => match ev {
                        None => break,
                        Some(ev) => {
                            relevant |= matters(&ev);
                            while let Ok(ev) = watch.events.try_recv() {
                                relevant |= matters(&ev);
                            }
                        }
                    },
                }
                if relevant {
                    // Let a burst of related writes land before looking.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while let Ok(ev) = watch.events.try_recv() {
                        let _ = matters(&ev);
                    }
                    if let Err(e) = self.reconcile_all().await {
                        warn!(error = %e, "controller pass failed");
                    }
                }
            }
        }
    }

    /// One pass of every built-in controller over the whole store.
    async fn reconcile_all(&self) -> Result<(), ApiError> {
        let mut items: Vec<Item> = Vec::new();
        for rt in registry::RESOURCES {
            for kv in self.store.range(&rt.key_prefix(), None, 0).kvs {
                items.push(Item {
                    rt,
                    obj: slim(&kv)?,
                });
            }
        }
        let uids: HashSet<String> = items
            .iter()
            .map(|i| object::uid(&i.obj).to_string())
            .collect();
        let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
        for (idx, item) in items.iter().enumerate() {
            for owner in object::owner_uids(&item.obj) {
                dependents.entry(owner).or_default().push(idx);
            }
        }
        let background = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..DeleteOptions::default()
        };

        // Garbage collection of dependents whose owners are all gone.
        for item in &items {
            let owners = object::owner_uids(&item.obj);
            if owners.is_empty()
                || owners.iter().any(|o| uids.contains(o))
                || object::is_deleting(&item.obj)
            {
                continue;
            }
            debug!(
                kind = item.rt.kind,
                name = object::name(&item.obj),
                "collecting orphaned dependent"
            );
            self.delete_quietly(item, &background).await;
        }

        // Owners being deleted in the foreground or with orphaning.
        for item in &items {
            if !object::is_deleting(&item.obj) {
                continue;
            }
            let finalizers = object::finalizers(&item.obj);
            let uid = object::uid(&item.obj).to_string();
            let deps = dependents.get(&uid).cloned().unwrap_or_default();
            if finalizers.iter().any(|f| f == ORPHAN) {
                for &d in &deps {
                    self.edit(&items[d], |o| {
                        if let Some(refs) = o
                            .pointer_mut("/metadata/ownerReferences")
                            .and_then(Value::as_array_mut)
                        {
                            refs.retain(|r| {
                                r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                            });
                            if refs.is_empty() {
                                object::meta_mut(o).remove("ownerReferences");
                            }
                        }
                    })
                    .await;
                }
                self.edit(item, |o| {
                    let f: Vec<String> = object::finalizers(o)
                        .into_iter()
                        .filter(|f| f != ORPHAN)
                        .collect();
                    object::set_finalizers(o, &f);
                })
                .await;
            } else if finalizers.iter().any(|f| f == FOREGROUND) {
                let foreground = DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    ..DeleteOptions::default()
                };
                if deps.is_empty() {
                    self.edit(item, |o| {
                        let f: Vec<String> = object::finalizers(o)
                            .into_iter()
                            .filter(|f| f != FOREGROUND)
                            .collect();
                        object::set_finalizers(o, &f);
                    })
                    .await;
                } else {
                    for &d in &deps {
                        if !object::is_deleting(&items[d].obj) {
                            self.delete_quietly(&items[d], &foreground).await;
                        }
                    }
                }
            }
        }

        // Namespaces: default ServiceAccount while active, content removal while terminating.
        let sa_rt =
            registry::by_plural("", "v1", "serviceaccounts").expect("serviceaccounts are served");
        for item in items.iter().filter(|i| i.rt.plural == "namespaces") {
            let ns = object::name(&item.obj).to_string();
            if !object::is_deleting(&item.obj) {
                let has_sa = items.iter().any(|i| {
                    i.rt.plural == "serviceaccounts"
                        && object::name(&i.obj) == "default"
                        && object::meta_str(&i.obj, "namespace") == Some(ns.as_str())
                });
                if !has_sa {
                    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
                    match self.create_object(sa_rt, Some(&ns), sa, None, false).await {
                        Ok(_)
                        | Err(ApiError::AlreadyExists { .. })
                        | Err(ApiError::Forbidden(_)) => {}
                        Err(e) => {
                            warn!(namespace = %ns, error = %e, "failed to create the default service account")
                        }
                    }
                }
                continue;
            }
            let content: Vec<&Item> = items
                .iter()
                .filter(|i| {
                    i.rt.namespaced && object::meta_str(&i.obj, "namespace") == Some(ns.as_str())
                })
                .collect();
            if content.is_empty() {
                self.edit(item, |o| {
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("finalizers");
                    }
                })
                .await;
                let nsrt = item.rt;
                if let Ok(Some(current)) = self.get_object(nsrt, None, &ns) {
                    if object::finalizers(&current).is_empty()
                        && current
                            .pointer("/spec/finalizers")
                            .and_then(Value::as_array)
                            .is_none_or(|a| a.is_empty())
                    {
                        let rv = object::resource_version(&current)
                            .ok()
                            .flatten()
                            .unwrap_or(0);
                        let _ = self.store.delete(&nsrt.key(None, &ns), Some(rv)).await;
                    }
                }
            } else {
                for c in content.into_iter().filter(|c| !object::is_deleting(&c.obj)) {
                    self.delete_quietly(c, &background).await;
                }
            }
        }
        Ok(())
    }

    async fn delete_quietly(&self, item: &Item, opts: &DeleteOptions) {
        let ns = object::meta_str(&item.obj, "namespace").map(str::to_string);
        match self
            .delete_object(item.rt, ns.as_deref(), object::name(&item.obj), opts, false)
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                warn!(kind = item.rt.kind, name = object::name(&item.obj), error = %e, "delete failed")
            }
        }
    }

    /// Applies `f` to the current version of an object and writes it back.
    async fn edit(&self, item: &Item, f: impl Fn(&mut Value)) {
        let ns = object::meta_str(&item.obj, "namespace").map(str::to_string);
        let name = object::name(&item.obj).to_string();
        for _ in 0..5 {
            let Ok(Some(old)) = self.get_object(item.rt, ns.as_deref(), &name) else {
                return;
            };
            let rv = object::resource_version(&old).ok().flatten().unwrap_or(0);
            let mut new = old.clone();
            f(&mut new);
            match self
                .write(item.rt, ns.as_deref(), &name, &old, new, rv, false)
                .await
            {
                Ok(_) => return,
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Api(e)) => {
                    warn!(kind = item.rt.kind, name = %name, error = %e, "controller update failed");
                    return;
                }
            }
        }
    }
}

/// The part of an object's metadata the controllers decide on: the rest of the object is
/// never parsed into memory, which keeps a pass over 150,000 pods cheap. Effects re-read the
/// full object from the store.
fn slim(kv: &gantry_store::KeyValue) -> Result<Value, ApiError> {
    #[derive(serde::Deserialize, Default)]
    struct Object {
        #[serde(default)]
        metadata: Meta,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        #[serde(default)]
        name: String,
        namespace: Option<String>,
        #[serde(default)]
        uid: String,
        deletion_timestamp: Option<String>,
        #[serde(default)]
        finalizers: Vec<String>,
        #[serde(default)]
        owner_references: Vec<Owner>,
    }
    #[derive(serde::Deserialize)]
    struct Owner {
        #[serde(default)]
        uid: String,
    }
    let o: Object = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    let m = o.metadata;
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(m.name));
    if let Some(ns) = m.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    meta.insert("uid".into(), json!(m.uid));
    if let Some(ts) = m.deletion_timestamp {
        meta.insert("deletionTimestamp".into(), json!(ts));
    }
    if !m.finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(m.finalizers));
    }
    if !m.owner_references.is_empty() {
        let refs: Vec<Value> = m
            .owner_references
            .into_iter()
            .map(|r| json!({"uid": r.uid}))
            .collect();
        meta.insert("ownerReferences".into(), Value::Array(refs));
    }
    Ok(json!({"metadata": meta}))
}

/// Whether a change can give the controllers work.
fn matters(ev: &Event) -> bool {
    match ev {
        Event::Delete { .. } => true,
        Event::Put { kv, prev } => {
            if prev.is_none() && kv.key.starts_with("/registry/core/namespaces/") {
                return true;
            }
            let v = &kv.value;
            contains(v, b"\"deletionTimestamp\"") || contains(v, b"\"ownerReferences\"")
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
