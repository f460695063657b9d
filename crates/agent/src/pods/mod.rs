//! Pod workers: watches the pods bound to this node and runs one [`worker`] per pod.
//! One thing to know: the runtime's inventory is read once before the first watch event, and
//! each worker is handed the sandbox and containers of its pod uid (re-adoption); whatever
//! belongs to no pod once the initial list is complete is stopped and removed.

mod adopt;
pub mod backoff;
pub mod command;
pub mod env;
pub mod resources;
pub mod security;
mod start;
pub mod state;
pub mod status;
mod worker;

pub use adopt::{adopt, Adopted};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument as _};

use crate::node::{sleep_or_shutdown, Retry};
use crate::runtime::{ContainerInfo, Inventory, SandboxInfo, LABEL_POD_UID};
use crate::AgentError;
pub(crate) use worker::WorkerContext;

struct Handle {
    pods: watch::Sender<Option<Pod>>,
    task: JoinHandle<()>,
}

/// Watches this node's pods and keeps one worker per pod until shutdown.
pub(crate) async fn run_pods(
    ctx: Arc<WorkerContext>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let mut retry = Retry::new(ctx.config.max_retry);
    let inventory = loop {
        match ctx.runtime.list().await {
            Ok(inv) => break inv,
            Err(e) => {
                warn!(error = %e, "runtime inventory unavailable");
                if sleep_or_shutdown(retry.next(), &mut shutdown).await {
                    return Ok(());
                }
            }
        }
    };
    let mut leftovers = split_inventory(inventory);
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.config.node_name));
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut orphans_checked = false;
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => break,
            ev = stream.next() => ev,
        };
        workers.retain(|_, h| !h.task.is_finished());
        let Some(event) = event else {
            break;
        };
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(pod)) => {
                listed.insert(pod.metadata.uid.clone().unwrap_or_default());
                deliver(&ctx, &mut workers, &mut leftovers, pod, &shutdown);
            }
            Ok(Event::Apply(pod)) => deliver(&ctx, &mut workers, &mut leftovers, pod, &shutdown),
            Ok(Event::Delete(pod)) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(h) = workers.get(&uid) {
                    h.pods.send_replace(None);
                }
            }
            Ok(Event::InitDone) => {
                for (uid, h) in &workers {
                    if !listed.contains(uid) {
                        h.pods.send_replace(None);
                    }
                }
                if !orphans_checked {
                    orphans_checked = true;
                    let orphans = std::mem::take(&mut leftovers);
                    remove_orphans(&ctx, orphans).await;
                }
            }
            Err(e) => warn!(error = %e, "pod watch failed"),
        }
    }
    for (_, h) in workers.drain() {
        drop(h.pods);
        let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
    }
    Ok(())
}

/// Hands `pod` to its worker, starting one (with its adopted containers) when needed.
fn deliver(
    ctx: &Arc<WorkerContext>,
    workers: &mut HashMap<String, Handle>,
    leftovers: &mut BTreeMap<String, (Vec<SandboxInfo>, Vec<ContainerInfo>)>,
    pod: Pod,
    shutdown: &watch::Receiver<bool>,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if let Some(h) = workers.get(&uid) {
        h.pods.send_replace(Some(pod));
        return;
    }
    let (sandboxes, containers) = leftovers.remove(&uid).unwrap_or_default();
    let adopted = adopt(sandboxes, containers);
    let (tx, rx) = watch::channel(Some(pod));
    let span = tracing::info_span!("pod", uid = %uid);
    let task = tokio::spawn(
        worker::run_worker(ctx.clone(), rx, adopted, shutdown.clone()).instrument(span),
    );
    workers.insert(uid, Handle { pods: tx, task });
}

/// Groups the inventory by pod uid.
fn split_inventory(inv: Inventory) -> BTreeMap<String, (Vec<SandboxInfo>, Vec<ContainerInfo>)> {
    let mut out: BTreeMap<String, (Vec<SandboxInfo>, Vec<ContainerInfo>)> = BTreeMap::new();
    for s in inv.sandboxes {
        out.entry(s.pod_uid.clone()).or_default().0.push(s);
    }
    for c in inv.containers {
        let uid = c.labels.get(LABEL_POD_UID).cloned().unwrap_or_default();
        out.entry(uid).or_default().1.push(c);
    }
    out
}

/// Stops and removes sandboxes and containers whose pod no longer exists.
async fn remove_orphans(
    ctx: &WorkerContext,
    orphans: BTreeMap<String, (Vec<SandboxInfo>, Vec<ContainerInfo>)>,
) {
    for (uid, (sandboxes, containers)) in orphans {
        info!(uid = %uid, containers = containers.len(), "removing containers of a pod that is gone");
        for c in containers {
            let _ = ctx
                .runtime
                .stop_container(c.id.clone(), Duration::ZERO)
                .await;
            if let Err(e) = ctx.runtime.remove_container(c.id).await {
                warn!(uid = %uid, error = %e, "orphan container not removed");
            }
        }
        for s in sandboxes {
            if let Err(e) = ctx.runtime.stop_sandbox(s.id).await {
                warn!(uid = %uid, error = %e, "orphan sandbox not removed");
            }
        }
    }
}
