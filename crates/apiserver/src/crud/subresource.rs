//! The scale, binding and eviction subresources.

use super::*;

impl<S: Store> ApiServer<S> {
    pub(super) async fn get_scale(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let ns = ctx.namespace()?;
        let obj = self
            .get_object(rt, ns, ctx.name())?
            .ok_or_else(|| ApiError::not_found(rt, ctx.name()))?;
        Ok(codec::json_response(200, &crate::strategy::to_scale(&obj)))
    }

    /// PUT or PATCH of `<resource>/scale`: only `spec.replicas` reaches the parent.
    pub(super) async fn write_scale(
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

    pub(super) async fn bind(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn evict(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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
