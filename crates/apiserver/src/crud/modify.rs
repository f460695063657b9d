//! PATCH in all four kinds (JSON patch, merge patch, strategic merge patch) and server-side
//! apply (which may create).

use super::*;

impl<S: Store> ApiServer<S> {
    pub(super) async fn patch(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn apply(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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
}
