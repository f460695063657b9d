//! DELETE of one object and of a collection (deletecollection).

use super::*;

impl<S: Store> ApiServer<S> {
    pub(super) async fn delete(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn delete_collection(
        &self,
        ctx: RequestContext,
    ) -> Result<Response<Body>, ApiError> {
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
}
