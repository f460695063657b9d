//! Deletion: DeleteOptions (preconditions, grace period, propagation policy), finalizers and
//! `deletionTimestamp`, graceful pod termination, and namespaces entering `Terminating`.
//!
//! An object with finalizers is only marked; the garbage collector and the namespace
//! controller (see `controllers.rs`) finish the job, and the last finalizer's removal deletes it.

use gantry_api::registry::ResourceType;
use gantry_store::{Store, StoreError};
use serde_json::{json, Value};

use crate::crud::WriteError;
use crate::object::{self, meta_mut};
use crate::request::Query;
use crate::server::ApiServer;
use crate::status::ApiError;

/// The finalizer foreground deletion waits on.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer orphaning deletion waits on.
pub const ORPHAN: &str = "orphan";

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// `metav1.DeleteOptions`, from the body or the query.
#[derive(Debug, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn parse(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut o = DeleteOptions::default();
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .or_else(|_| crate::codec::yaml_to_json(body))
                .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
        };
        o.grace_period = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        if let Some(g) = q.int("gracePeriodSeconds")? {
            o.grace_period = Some(g);
        }
        let policy = q.get("propagationPolicy").map(str::to_string).or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if let Some(p) = policy {
            o.propagation = Some(match p.as_str() {
                "Background" => Propagation::Background,
                "Foreground" => Propagation::Foreground,
                "Orphan" => Propagation::Orphan,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
                    )))
                }
            });
        }
        let orphan = q
            .flag("orphanDependents")?
            .or_else(|| body.get("orphanDependents").and_then(Value::as_bool));
        if orphan == Some(true) && o.propagation.is_none() {
            o.propagation = Some(Propagation::Orphan);
        }
        o.precondition_uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.precondition_rv = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.dry_run = body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
        Ok(o)
    }
}

impl<S: Store> ApiServer<S> {
    /// Deletes (or marks for deletion) one object. Returns the object as it now stands and
    /// whether it is gone from the store.
    pub(crate) async fn delete_object(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        loop {
            let old = self
                .get_object(rt, ns, name)?
                .ok_or_else(|| ApiError::not_found(rt, name))?;
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            if let Some(uid) = &opts.precondition_uid {
                if uid != object::uid(&old) {
                    return Err(ApiError::conflict(
                        rt,
                        name,
                        format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", object::uid(&old)),
                        Vec::new(),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                if *rv != old_rv.to_string() {
                    return Err(ApiError::conflict(
                        rt,
                        name,
                        format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old_rv}"),
                        Vec::new(),
                    ));
                }
            }
            let mut new = old.clone();
            let mut finalizers = object::finalizers(&old);
            match opts.propagation {
                Some(Propagation::Foreground) if !finalizers.iter().any(|f| f == FOREGROUND) => {
                    finalizers.retain(|f| f != ORPHAN);
                    finalizers.push(FOREGROUND.to_string());
                }
                Some(Propagation::Orphan) if !finalizers.iter().any(|f| f == ORPHAN) => {
                    finalizers.retain(|f| f != FOREGROUND);
                    finalizers.push(ORPHAN.to_string());
                }
                _ => {}
            }
            object::set_finalizers(&mut new, &finalizers);
            let now = object::now_rfc3339();
            let namespace_pending = crate::crud::namespace_pending(rt, &new);
            let grace = self.grace_period(rt, &old, opts);
            // A zero grace period (the node agent confirming the pod stopped, or
            // `--force`) completes a graceful deletion already under way.
            let force = rt.plural == "pods" && opts.grace_period == Some(0);
            if object::is_deleting(&old)
                && finalizers == object::finalizers(&old)
                && grace.is_none()
                && !force
            {
                // Already being deleted; nothing new to record.
                return Ok((old, false));
            }
            if !finalizers.is_empty() || namespace_pending || grace.is_some() {
                let m = meta_mut(&mut new);
                if m.get("deletionTimestamp").is_none_or(|v| v.is_null()) {
                    let at = match grace {
                        Some(g) => gantry_api::time::format_rfc3339(object::now_unix() + g),
                        None => now.clone(),
                    };
                    m.insert("deletionTimestamp".into(), json!(at));
                }
                m.insert(
                    "deletionGracePeriodSeconds".into(),
                    json!(grace.unwrap_or(0)),
                );
                if rt.plural == "namespaces" {
                    new["status"]["phase"] = json!("Terminating");
                }
                match self.write(rt, ns, name, &old, new, old_rv, dry_run).await {
                    Ok(v) => return Ok((v.clone(), false)),
                    Err(WriteError::Conflict) => continue,
                    Err(WriteError::Api(e)) => return Err(e),
                }
            }
            if dry_run {
                return Ok((old, true));
            }
            match self.store.delete(&rt.key(ns, name), Some(old_rv)).await {
                Ok((_, rev)) => {
                    let mut gone = old;
                    object::set_resource_version(&mut gone, rev);
                    return Ok((gone, true));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(rt, name)),
                Err(e) => return Err(ApiError::Internal(format!("storage failed: {e}"))),
            }
        }
    }

    /// A pod bound to a node is deleted gracefully: marked, then removed by its node agent
    /// (or immediately with a zero grace period).
    fn grace_period(&self, rt: &ResourceType, pod: &Value, opts: &DeleteOptions) -> Option<i64> {
        if rt.plural != "pods" {
            return None;
        }
        let bound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let running = !matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        let grace = opts
            .grace_period
            .or_else(|| {
                pod.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        (bound && running && grace > 0).then_some(grace)
    }
}
