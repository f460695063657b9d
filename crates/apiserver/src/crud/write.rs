//! Create and update: system fields, defaults, validation, and the compare-and-swap write
//! every handler ends in.

use super::*;

impl<S: Store> ApiServer<S> {
    pub(super) async fn create(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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
    pub(super) fn check_namespace_open(&self, ns: &str) -> Result<(), ApiError> {
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

    pub(super) async fn update(&self, ctx: RequestContext) -> Result<Response<Body>, ApiError> {
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
}
