//! Resource handlers: get, list, create, update, patch (all four kinds), delete and
//! deletecollection, plus the scale, binding and eviction subresources.
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

    async fn create(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let ty = BodyType::from_content_type(ctx.content_type.as_deref())?;
        let mut obj = codec::decode_object(ty, &ctx.body, rt.kind)?;
        codec::check_kind(&obj, rt, rt.kind, &rt.api_version())?;
        let root = root_message(rt)?;
        let warnings = check_fields(rt, root, &mut obj, field_validation(&ctx.query)?)?;
        let manager = ctx.manager();
        let created = self
            .create_object(rt, ns, obj, Some(&manager), ctx.dry_run()?)
            .await?;
        respond(rt, ctx.output()?, 201, &created, &warnings)
    }

    /// Creates an object: names, system fields, defaults, validation, then a durable write.
    pub(crate) async fn create_object(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        manager: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        if rt.namespaced {
            let ns = ns.ok_or_else(|| ApiError::BadRequest("namespace is required".to_string()))?;
            match object::meta_str(&obj, "namespace") {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".to_string(),
                    ))
                }
                _ => {}
            }
            meta_mut(&mut obj).insert("namespace".into(), json!(ns));
            self.check_namespace_open(ns)?;
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        let generate_name = object::meta_str(&obj, "generateName")
            .unwrap_or("")
            .to_string();
        let given_name = object::name(&obj).to_string();
        let now = object::now_rfc3339();
        {
            let m = meta_mut(&mut obj);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(f);
            }
            if tracks_generation(rt) {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        crate::strategy::prepare_for_create(rt, &mut obj);
        defaults::apply_defaults(rt, &mut obj);
        let root = root_message(rt)?;
        if let Some(manager) = manager {
            let who = ManagerInfo {
                manager,
                api_version: &rt.api_version(),
                time: &now,
                subresource: None,
            };
            apply::record_update(None, &mut obj, root, &who);
        }
        for attempt in 0..8 {
            if given_name.is_empty() && !generate_name.is_empty() {
                meta_mut(&mut obj).insert(
                    "name".into(),
                    json!(format!("{generate_name}{}", object::random_suffix())),
                );
            }
            let name = object::name(&obj).to_string();
            crate::strategy::prepare_named(rt, &mut obj);
            defaults::apply_defaults(rt, &mut obj);
            let errs = validation::validate_create(rt, &obj);
            if !errs.is_empty() {
                return Err(invalid(rt, &name, &errs));
            }
            if rt.plural == "services" {
                self.allocate_service(&mut obj).await?;
            }
            if dry_run {
                return Ok(obj);
            }
            match self
                .store
                .create(&rt.key(ns, &name), object::encode(&obj))
                .await
            {
                Ok(kv) => {
                    object::set_resource_version(&mut obj, kv.mod_revision);
                    return Ok(obj);
                }
                Err(StoreError::AlreadyExists { .. }) if given_name.is_empty() && attempt < 7 => {
                    continue
                }
                Err(e) => return Err(store_error(rt, &name, e)),
            }
        }
        Err(ApiError::Internal(
            "could not generate a unique name".to_string(),
        ))
    }

    /// Refuses new content in a namespace that is missing or terminating.
    fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
        let nsrt =
            gantry_api::registry::by_plural("", "v1", "namespaces").expect("namespaces are served");
        match self.get_object(nsrt, None, ns)? {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if object::is_deleting(&n) => Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    async fn update(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let name = ctx.name().to_string();
        let ty = BodyType::from_content_type(ctx.content_type.as_deref())?;
        let mut obj = codec::decode_object(ty, &ctx.body, rt.kind)?;
        codec::check_kind(&obj, rt, rt.kind, &rt.api_version())?;
        let body_name = object::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let root = root_message(rt)?;
        let warnings = check_fields(rt, root, &mut obj, field_validation(&ctx.query)?)?;
        let given_rv = object::resource_version(&obj)?;
        let manager = ctx.manager();
        let dry_run = ctx.dry_run()?;
        let sub = ctx.path.subresource;
        loop {
            let Some(old) = self.get_object(rt, ns, &name)? else {
                if create_on_update(rt) && sub.is_none() {
                    let created = self
                        .create_object(rt, ns, obj, Some(&manager), dry_run)
                        .await?;
                    return respond(rt, ctx.output()?, 201, &created, &warnings);
                }
                return Err(ApiError::not_found(rt, &name));
            };
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            if given_rv.is_some_and(|rv| rv != old_rv) {
                return Err(ApiError::modified(rt, &name));
            }
            let new = self.prepare_update(rt, &old, obj.clone(), sub, &manager)?;
            match self.write(rt, ns, &name, &old, new, old_rv, dry_run).await {
                Err(WriteError::Conflict) if given_rv.is_none() => continue,
                Err(WriteError::Conflict) => return Err(ApiError::modified(rt, &name)),
                Err(WriteError::Api(e)) => return Err(e),
                Ok(written) => return respond(rt, ctx.output()?, 200, &written, &warnings),
            }
        }
    }

    /// Merges an incoming object over the stored one: system fields are kept, the parts a
    /// subresource does not own are kept, generation moves with the spec, and the result is
    /// defaulted and validated.
    pub(crate) fn prepare_update(
        &self,
        rt: &'static ResourceType,
        old: &Value,
        mut new: Value,
        sub: Option<Subresource>,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let name = object::name(old).to_string();
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        let new_uid = object::uid(&new).to_string();
        if !new_uid.is_empty() && new_uid != object::uid(old) {
            return Err(ApiError::conflict(
                rt,
                &name,
                format!(
                    "Precondition failed: UID in precondition: {new_uid}, UID in object meta: {}",
                    object::uid(old)
                ),
                Vec::new(),
            ));
        }
        let old_meta = object::meta(old).cloned().unwrap_or_default();
        {
            let m = meta_mut(&mut new);
            m.insert("name".into(), json!(name));
            for f in [
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            let has_managed = m
                .get("managedFields")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if !has_managed {
                if let Some(mf) = old_meta.get("managedFields") {
                    m.insert("managedFields".into(), mf.clone());
                }
            }
            m.remove("selfLink");
        }
        if object::is_deleting(old) {
            let old_f = object::finalizers(old);
            if object::finalizers(&new).iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    format!("{} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted", rt.group_kind()),
                    vec![json!({"reason":"FieldValueForbidden","message":"Forbidden: no new finalizers can be added if the object is being deleted","field":"metadata.finalizers"})],
                ));
            }
        }
        match sub {
            Some(Subresource::Status) => {
                if let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) {
                    let keys: Vec<String> = o.keys().chain(n.keys()).cloned().collect();
                    for k in keys {
                        if matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
                            continue;
                        }
                        match o.get(&k) {
                            Some(v) => n.insert(k, v.clone()),
                            None => n.remove(&k),
                        };
                    }
                }
            }
            _ if rt.has_subresource(Subresource::Status) => match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            },
            _ => {}
        }
        crate::strategy::prepare_for_update(rt, old, &mut new);
        defaults::apply_defaults(rt, &mut new);
        if tracks_generation(rt) && sub.is_none() && new.get("spec") != old.get("spec") {
            let gen = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut new).insert("generation".into(), json!(gen));
        }
        let errs = validation::validate_update(rt, &new, old);
        if !errs.is_empty() {
            return Err(invalid(rt, &name, &errs));
        }
        let root = root_message(rt)?;
        let now = object::now_rfc3339();
        let who = ManagerInfo {
            manager,
            api_version: &rt.api_version(),
            time: &now,
            subresource: sub.map(|s| s.name()),
        };
        apply::record_update(Some(old), &mut new, root, &who);
        Ok(new)
    }

    /// Writes `new` over `old` if nothing changed in between. An object that is being deleted
    /// and has no finalizers left is removed instead. A no-op change is not written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        old: &Value,
        mut new: Value,
        old_rv: i64,
        dry_run: bool,
    ) -> Result<Value, WriteError> {
        let key = rt.key(ns, name);
        if object::is_deleting(&new)
            && object::finalizers(&new).is_empty()
            && !pending_grace(rt, &new)
            && !namespace_pending(rt, &new)
        {
            if dry_run {
                return Ok(new);
            }
            return match self.store.delete(&key, Some(old_rv)).await {
                Ok((_, rev)) => {
                    object::set_resource_version(&mut new, rev);
                    Ok(new)
                }
                Err(StoreError::Conflict { .. }) => Err(WriteError::Conflict),
                Err(e) => Err(WriteError::Api(store_error(rt, name, e))),
            };
        }
        object::set_resource_version(&mut new, old_rv);
        if &new == old || dry_run {
            return Ok(new);
        }
        match self
            .store
            .update(&key, object::encode(&new), Some(old_rv))
            .await
        {
            Ok(kv) => {
                object::set_resource_version(&mut new, kv.mod_revision);
                Ok(new)
            }
            Err(StoreError::Conflict { .. }) => Err(WriteError::Conflict),
            Err(e) => Err(WriteError::Api(store_error(rt, name, e))),
        }
    }

    async fn patch(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let name = ctx.name().to_string();
        let ct = ctx.content_type.as_deref().unwrap_or("");
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media == APPLY_CT {
            return self.apply(ctx).await;
        }
        let ty = PatchType::from_content_type(&media).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {media})"
            ))
        })?;
        let root = root_message(rt)?;
        let mode = field_validation(&ctx.query)?;
        let manager = ctx.manager();
        let dry_run = ctx.dry_run()?;
        let sub = ctx.path.subresource;
        loop {
            let old = self
                .get_object(rt, ns, &name)?
                .ok_or_else(|| ApiError::not_found(rt, &name))?;
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            let mut patched = patch::apply_patch(&old, &ctx.body, ty, Some(root))
                .map_err(|e| patch_error(rt, &name, e))?;
            let warnings = check_fields(rt, root, &mut patched, mode)?;
            let patched_rv = object::resource_version(&patched)?;
            let pinned = patched_rv.is_some_and(|rv| rv != old_rv);
            if pinned {
                return Err(ApiError::modified(rt, &name));
            }
            let new = self.prepare_update(rt, &old, patched, sub, &manager)?;
            match self.write(rt, ns, &name, &old, new, old_rv, dry_run).await {
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Api(e)) => return Err(e),
                Ok(written) => return respond(rt, ctx.output()?, 200, &written, &warnings),
            }
        }
    }

    async fn apply(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let name = ctx.name().to_string();
        let Some(manager) = ctx.query.get("fieldManager").map(str::to_string) else {
            return Err(ApiError::BadRequest(
                "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests"
                    .to_string(),
            ));
        };
        let force = ctx.query.flag("force")?.unwrap_or(false);
        let mut config = codec::yaml_to_json(&ctx.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
        if !config.is_object() {
            return Err(ApiError::BadRequest(
                "apply patch must be an object".to_string(),
            ));
        }
        codec::check_kind(&config, rt, rt.kind, &rt.api_version())?;
        let body_name = object::name(&config);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let root = root_message(rt)?;
        let warnings = check_fields(rt, root, &mut config, field_validation(&ctx.query)?)?;
        let dry_run = ctx.dry_run()?;
        let sub = ctx.path.subresource;
        let api_version = rt.api_version();
        loop {
            let now = object::now_rfc3339();
            let who = ManagerInfo {
                manager: &manager,
                api_version: &api_version,
                time: &now,
                subresource: sub.map(|s| s.name()),
            };
            let old = self.get_object(rt, ns, &name)?;
            let applied = apply::apply(old.as_ref(), &config, root, &who, force)
                .map_err(|e| apply_error(rt, &name, &e))?;
            let Some(old) = old else {
                if sub.is_some() {
                    return Err(ApiError::not_found(rt, &name));
                }
                let mut applied = applied;
                meta_mut(&mut applied).insert("name".into(), json!(name));
                let created = self.create_object(rt, ns, applied, None, dry_run).await?;
                return respond(rt, ctx.output()?, 201, &created, &warnings);
            };
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            let new = self.prepare_update(rt, &old, applied, sub, &manager)?;
            match self.write(rt, ns, &name, &old, new, old_rv, dry_run).await {
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Api(e)) => return Err(e),
                Ok(written) => return respond(rt, ctx.output()?, 200, &written, &warnings),
            }
        }
    }

    async fn delete(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let opts = crate::delete::DeleteOptions::parse(&ctx.query, &ctx.body)?;
        let dry_run = ctx.dry_run()? || opts.dry_run;
        let (obj, gone) = self
            .delete_object(rt, ns, ctx.name(), &opts, dry_run)
            .await?;
        if gone && !matches!(rt.plural, "pods" | "namespaces") {
            let v = status::success(ctx.name(), rt.group, rt.plural, object::uid(&obj));
            return Ok(codec::json_response(200, &v));
        }
        respond(rt, ctx.output()?, 200, &obj, &[])
    }

    async fn delete_collection(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let opts = crate::delete::DeleteOptions::parse(&ctx.query, &ctx.body)?;
        let dry_run = ctx.dry_run()? || opts.dry_run;
        let prefix = match ctx.path.namespace.as_deref() {
            Some(ns) if rt.namespaced => rt.namespace_prefix(ns),
            _ => rt.key_prefix(),
        };
        let res = self.store.range(&prefix, None, 0);
        let mut deleted = Vec::new();
        for kv in &res.kvs {
            let obj = object::decode(kv)?;
            if !(labels.matches(&object::labels(&obj)) && fields.matches(rt, &obj)) {
                continue;
            }
            let ns = object::meta_str(&obj, "namespace").map(str::to_string);
            match self
                .delete_object(rt, ns.as_deref(), object::name(&obj), &opts, dry_run)
                .await
            {
                Ok((o, _)) => deleted.push(o),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        respond_list(
            rt,
            ctx.output()?,
            deleted,
            self.store.current_revision(),
            None,
        )
    }

    async fn get_scale(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let obj = self
            .get_object(rt, ns, ctx.name())?
            .ok_or_else(|| ApiError::not_found(rt, ctx.name()))?;
        Ok(codec::json_response(200, &crate::strategy::to_scale(&obj)))
    }

    /// PUT or PATCH of `<resource>/scale`: only `spec.replicas` reaches the parent.
    async fn write_scale(
        &self,
        ctx: RequestContext,
        is_put: bool,
    ) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let name = ctx.name().to_string();
        let manager = ctx.manager();
        let dry_run = ctx.dry_run()?;
        let scale_root = schema::kind_message("autoscaling", "v1", "Scale");
        loop {
            let old = self
                .get_object(rt, ns, &name)?
                .ok_or_else(|| ApiError::not_found(rt, &name))?;
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            let scale = crate::strategy::to_scale(&old);
            let new_scale = if is_put {
                let ty = BodyType::from_content_type(ctx.content_type.as_deref())?;
                codec::decode_object(ty, &ctx.body, "Scale")?
            } else {
                let media = ctx
                    .content_type
                    .as_deref()
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                let ty = PatchType::from_content_type(&media).ok_or_else(|| {
                    ApiError::UnsupportedMediaType(format!(
                        "unsupported patch type {media} for scale"
                    ))
                })?;
                patch::apply_patch(&scale, &ctx.body, ty, scale_root)
                    .map_err(|e| patch_error(rt, &name, e))?
            };
            if let Some(rv) = object::resource_version(&new_scale)? {
                if rv != old_rv {
                    return Err(ApiError::modified(rt, &name));
                }
            }
            let replicas = new_scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::Invalid {
                    message: format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
                    name: name.clone(),
                    group: "autoscaling".to_string(),
                    kind: "Scale".to_string(),
                    causes: vec![json!({"reason":"FieldValueInvalid","message":format!("Invalid value: {replicas}: must be greater than or equal to 0"),"field":"spec.replicas"})],
                });
            }
            let mut parent = old.clone();
            parent["spec"]["replicas"] = json!(replicas);
            let new = self.prepare_update(rt, &old, parent, None, &manager)?;
            match self.write(rt, ns, &name, &old, new, old_rv, dry_run).await {
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Api(e)) => return Err(e),
                Ok(written) => {
                    return Ok(codec::json_response(
                        200,
                        &crate::strategy::to_scale(&written),
                    ))
                }
            }
        }
    }

    async fn bind(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let name = ctx.name().to_string();
        let ty = BodyType::from_content_type(ctx.content_type.as_deref())?;
        let binding = codec::decode_object(ty, &ctx.body, "Binding")?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid(rt, &name, format!("Binding \"{name}\" is invalid: target.name: Required value"), vec![json!({"reason":"FieldValueRequired","message":"Required value","field":"target.name"})]))?
            .to_string();
        loop {
            let old = self
                .get_object(rt, ns, &name)?
                .ok_or_else(|| ApiError::not_found(rt, &name))?;
            let old_rv = object::resource_version(&old)?.unwrap_or(0);
            if object::is_deleting(&old) {
                return Err(ApiError::conflict(
                    rt,
                    &name,
                    format!("pod {name} is being deleted, cannot be assigned to a host"),
                    Vec::new(),
                ));
            }
            if let Some(current) = old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Err(ApiError::conflict(
                    rt,
                    &name,
                    format!("pod {name} is already assigned to node \"{current}\""),
                    Vec::new(),
                ));
            }
            let mut new = old.clone();
            new["spec"]["nodeName"] = json!(node);
            match self.write(rt, ns, &name, &old, new, old_rv, false).await {
                Err(WriteError::Conflict) => continue,
                Err(WriteError::Api(e)) => return Err(e),
                Ok(_) => {
                    return Ok(codec::json_response(
                        201,
                        &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}),
                    ))
                }
            }
        }
    }

    async fn evict(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let eviction = if ctx.body.is_empty() {
            json!({})
        } else {
            let ty = BodyType::from_content_type(ctx.content_type.as_deref())?;
            codec::decode_object(ty, &ctx.body, "Eviction")?
        };
        let opts_body = eviction
            .get("deleteOptions")
            .map(|v| serde_json::to_vec(v).unwrap_or_default())
            .unwrap_or_default();
        let opts = crate::delete::DeleteOptions::parse(&Query::default(), &opts_body)?;
        self.delete_object(rt, ns, ctx.name(), &opts, opts.dry_run)
            .await?;
        Ok(codec::json_response(
            201,
            &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}),
        ))
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
