//! Resource handlers: get, list, create, update, patch (all four kinds), delete and
//! deletecollection, plus the scale, binding and eviction subresources. This file holds the
//! request context, dispatch and reads; `write` (create, update), `modify` (patch, apply),
//! `remove` (delete, deletecollection) and `subresource` (scale, binding, eviction) hold the rest.
//!
//! Every write goes through [`ApiServer::write`], which compare-and-swaps on the revision the
//! change was computed from, so a handler never overwrites a change it did not see.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{json, Value};

use gantry_api::apply::{self, ManagerInfo};
use gantry_api::patch::{self, PatchType};
use gantry_api::registry::{ResourceType, Subresource};
use gantry_api::schema::{self, Message};
use gantry_api::selector::{FieldSelector, LabelSelector};
use gantry_api::{defaults, strict, validation};
use gantry_store::{Store, StoreError};

use crate::codec::{self, Body, BodyType};
use crate::object::{self, meta_mut};
use crate::request::{Output, Query, ResourcePath};
use crate::respond::{respond, respond_list};
use crate::server::ApiServer;
use crate::status::{self, ApiError};

mod modify;
mod remove;
mod subresource;
mod write;

/// Everything a resource handler needs from the request.
pub struct RequestContext {
    pub path: ResourcePath,
    pub query: Query,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub body: Bytes,
}

impl RequestContext {
    fn namespace(&self) -> Result<Option<&str>, ApiError> {
        match (self.path.rt.namespaced, self.path.namespace.as_deref()) {
            (true, Some(ns)) => Ok(Some(ns)),
            (true, None) => Err(ApiError::MethodNotAllowed(format!(
                "{} is namespaced: use /namespaces/<namespace>/{} paths",
                self.path.rt.group_resource(),
                self.path.rt.plural
            ))),
            (false, _) => Ok(None),
        }
    }

    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        let values = self.query.all("dryRun");
        for v in &values {
            if *v != "All" && !v.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
                )));
            }
        }
        Ok(values.contains(&"All"))
    }

    /// The field manager: `fieldManager`, else the user agent's program name, as upstream.
    fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager") {
            return m.to_string();
        }
        self.user_agent
            .as_deref()
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string()
    }

    pub(crate) fn output(&self) -> Result<Output, ApiError> {
        crate::request::negotiate(self.accept.as_deref())
    }
}

/// `Strict`, `Warn` (the default) or `Ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

fn field_validation(q: &Query) -> Result<FieldValidation, ApiError> {
    match q.get("fieldValidation") {
        None | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::BadRequest(format!(
            "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

pub(crate) fn root_message(rt: &ResourceType) -> Result<&'static Message, ApiError> {
    schema::kind_message(rt.group, rt.version, rt.kind)
        .ok_or_else(|| ApiError::Internal(format!("no schema for {}", rt.group_kind())))
}

/// Checks `obj` for fields its schema does not define: refuses them (`Strict`) or drops them,
/// returning warnings for `Warn`.
fn check_fields(
    rt: &ResourceType,
    root: &'static Message,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = strict::unknown_fields(root, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    if mode != FieldValidation::Strict {
        // Decoding into typed objects drops what the schema does not know.
        strict::prune_unknown(root, obj);
    }
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {msg}",
            kind = rt.kind,
            v = rt.version,
            msg = strict::strict_error_message(&unknown)
        ))),
        _ => Ok(unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect()),
    }
}

fn invalid(rt: &ResourceType, name: &str, errs: &[validation::FieldError]) -> ApiError {
    let causes = errs
        .iter()
        .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
        .collect();
    ApiError::invalid(
        rt,
        name,
        validation::invalid_message(rt, name, errs),
        causes,
    )
}

fn store_error(rt: &ResourceType, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists { .. } => ApiError::already_exists(rt, name),
        StoreError::NotFound { .. } => ApiError::not_found(rt, name),
        StoreError::Conflict { .. } => ApiError::modified(rt, name),
        other => ApiError::Internal(format!("storage failed: {other}")),
    }
}

/// Kinds whose `metadata.generation` tracks spec changes.
fn tracks_generation(rt: &ResourceType) -> bool {
    matches!(
        rt.plural,
        "deployments" | "replicasets" | "daemonsets" | "statefulsets" | "jobs" | "pods"
    )
}

/// Kinds a PUT may create, as upstream's `AllowCreateOnUpdate`.
fn create_on_update(rt: &ResourceType) -> bool {
    matches!(
        rt.plural,
        "endpoints" | "events" | "leases" | "endpointslices"
    )
}

const APPLY_CT: &str = "application/apply-patch+yaml";

impl<S: Store> ApiServer<S> {
    /// Dispatches a resource request by method and path shape.
    pub(crate) async fn resource(
        self: &Arc<Self>,
        method: Method,
        ctx: RequestContext,
    ) -> Result<Response<Body>, ApiError> {
        let named = ctx.path.name.is_some();
        let watch = ctx.path.watch_prefix || ctx.query.flag("watch")?.unwrap_or(false);
        match (method, named, ctx.path.subresource) {
            (Method::GET, _, None) if watch => self.watch(ctx).await,
            (Method::GET, false, None) => self.list(ctx).await,
            (Method::GET, true, None | Some(Subresource::Status)) => self.get(ctx).await,
            (Method::GET, true, Some(Subresource::Scale)) => self.get_scale(ctx).await,
            (Method::GET, true, Some(Subresource::Log)) => self.pod_log(ctx).await,
            (Method::POST, false, None) => self.create(ctx).await,
            (Method::POST, true, Some(Subresource::Binding)) => self.bind(ctx).await,
            (Method::POST, true, Some(Subresource::Eviction)) => self.evict(ctx).await,
            (Method::PUT, true, None | Some(Subresource::Status)) => self.update(ctx).await,
            (Method::PUT, true, Some(Subresource::Scale)) => self.write_scale(ctx, true).await,
            (Method::PATCH, true, Some(Subresource::Scale)) => self.write_scale(ctx, false).await,
            (Method::PATCH, true, None | Some(Subresource::Status)) => self.patch(ctx).await,
            (Method::DELETE, true, None) => self.delete(ctx).await,
            (Method::DELETE, false, None) => self.delete_collection(ctx).await,
            (m, _, _) => Err(ApiError::MethodNotAllowed(format!(
                "{m} is not supported on {}",
                ctx.path.rt.group_resource()
            ))),
        }
    }

    pub(crate) fn get_object(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        match self.store.get(&rt.key(ns, name)) {
            Some(kv) => object::decode(&kv).map(Some),
            None => Ok(None),
        }
    }

    async fn get(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let obj = self
            .get_object(rt, ns, ctx.name())?
            .ok_or_else(|| ApiError::not_found(rt, ctx.name()))?;
        respond(rt, ctx.output()?, 200, &obj, &[])
    }

    async fn list(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        fields
            .check_supported(rt)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let limit = ctx
            .query
            .int("limit")?
            .filter(|l| *l > 0)
            .map(|l| l as usize);
        let start_after = match ctx.query.get("continue") {
            Some(token) => Some(crate::respond::decode_continue(token)?),
            None => None,
        };
        let prefix = match ctx.path.namespace.as_deref() {
            Some(ns) if rt.namespaced => rt.namespace_prefix(ns),
            _ => rt.key_prefix(),
        };
        let output = ctx.output()?;
        if limit.is_none() && start_after.is_none() && output == Output::Json {
            let res = self.store.range(&prefix, None, 0);
            let filter = (!labels.is_empty() || !fields.is_empty()).then_some((labels, fields));
            return Ok(crate::respond::stream_list(
                rt,
                res.kvs,
                res.revision,
                filter,
            ));
        }
        let mut items = Vec::new();
        let mut cursor = start_after;
        let mut revision;
        let mut more;
        loop {
            let chunk = limit.map(|l| (l - items.len()).max(64)).unwrap_or(0);
            let res = self.store.range(&prefix, cursor.as_deref(), chunk);
            revision = res.revision;
            more = res.more;
            for kv in &res.kvs {
                cursor = Some(kv.key.to_string());
                let obj = object::decode(kv)?;
                if labels.matches(&object::labels(&obj)) && fields.matches(rt, &obj) {
                    items.push(obj);
                    if limit.is_some_and(|l| items.len() >= l) {
                        break;
                    }
                }
            }
            let full = limit.is_some_and(|l| items.len() >= l);
            if full {
                let last = cursor.as_deref().unwrap_or("");
                more = more || self.store.range(&prefix, Some(last), 1).kvs.len() == 1;
                break;
            }
            if !more {
                break;
            }
        }
        let continue_token = if more {
            cursor
                .as_deref()
                .map(|k| crate::respond::encode_continue(k, revision))
        } else {
            None
        };
        respond_list(rt, output, items, revision, continue_token)
    }
}

/// Why a compare-and-swap write did not happen.
pub(crate) enum WriteError {
    /// Someone else wrote first; recompute and retry (or report 409).
    Conflict,
    Api(ApiError),
}

/// A pod on a node that is still within its termination grace period stays until the node
/// agent confirms it stopped.
fn pending_grace(rt: &ResourceType, obj: &Value) -> bool {
    rt.plural == "pods"
        && obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}

/// A namespace waits for its content to go while `spec.finalizers` is not empty.
pub(crate) fn namespace_pending(rt: &ResourceType, obj: &Value) -> bool {
    rt.plural == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

fn patch_error(rt: &ResourceType, name: &str, e: patch::PatchError) -> ApiError {
    let msg = e.to_string();
    match e.status_code() {
        400 => ApiError::BadRequest(msg),
        413 => ApiError::TooLarge(crate::codec::MAX_BODY),
        415 => ApiError::UnsupportedMediaType(msg),
        _ => ApiError::invalid(rt, name, msg, Vec::new()),
    }
}

fn apply_error(rt: &ResourceType, name: &str, e: &apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Conflicts(_) => {
            let causes = e.causes().as_array().cloned().unwrap_or_default();
            ApiError::conflict(rt, name, e.message(), causes)
        }
        apply::ApplyError::Invalid(m) => ApiError::BadRequest(m.clone()),
    }
}
