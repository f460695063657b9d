//! Watch: a stream of `{"type":…,"object":…}` lines that starts from a resourceVersion (or
//! from the current state, sent as ADDED events), follows the store's change feed, filters by
//! selectors (turning an object that leaves a selector into DELETED), sends bookmarks, and ends
//! at `timeoutSeconds`.
//!
//! A start revision that has been compacted ends the watch with an ERROR event carrying a 410
//! `Expired` Status, which makes clients re-list.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gantry_api::registry::ResourceType;
use gantry_api::selector::{FieldSelector, LabelSelector};
use gantry_api::table;
use gantry_store::{Event, Store, StoreError};
use http::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::codec::Body;
use crate::crud::RequestContext;
use crate::object;
use crate::request::Output;
use crate::respond;
use crate::server::ApiServer;
use crate::status::ApiError;

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);
/// Default watch length when the client sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    rt: &'static ResourceType,
    labels: LabelSelector,
    fields: FieldSelector,
    name: Option<String>,
}

impl Filter {
    /// No selector needs the object's content: only its key (the name) decides.
    fn selects_by_key_only(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    fn key_matches(&self, key: &str) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| key.rsplit('/').next() == Some(n))
    }

    fn matches(&self, obj: &Value) -> bool {
        self.name.as_deref().is_none_or(|n| object::name(obj) == n)
            && self.labels.matches(&object::labels(obj))
            && self.fields.matches(self.rt, obj)
    }
}

impl<S: Store> ApiServer<S> {
    pub(crate) async fn watch(
        self: &Arc<Self>,
        ctx: RequestContext,
    ) -> Result<Response<Body>, ApiError> {
        let rt = ctx.path.rt;
        let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        fields
            .check_supported(rt)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let output = ctx.output()?;
        let bookmarks = ctx.query.flag("allowWatchBookmarks")?.unwrap_or(false);
        let send_initial = ctx.query.flag("sendInitialEvents")?;
        let timeout = ctx
            .query
            .int("timeoutSeconds")?
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64))
            .unwrap_or(DEFAULT_TIMEOUT);
        let rv = ctx.query.get("resourceVersion").unwrap_or("").to_string();
        if send_initial == Some(true) {
            let exact = ctx.query.get("resourceVersionMatch");
            if exact != Some("NotOlderThan") {
                return Err(ApiError::Invalid {
                    message: "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".to_string(),
                    name: String::new(),
                    group: "meta.k8s.io".to_string(),
                    kind: "ListOptions".to_string(),
                    causes: Vec::new(),
                });
            }
            if !bookmarks {
                return Err(ApiError::Invalid {
                    message: "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true".to_string(),
                    name: String::new(),
                    group: "meta.k8s.io".to_string(),
                    kind: "ListOptions".to_string(),
                    causes: Vec::new(),
                });
            }
        }
        let name = ctx
            .path
            .name
            .clone()
            .or_else(|| fields.single_name().map(str::to_string));
        let prefix = match (ctx.path.namespace.as_deref(), rt.namespaced) {
            (Some(ns), true) => rt.namespace_prefix(ns),
            _ => rt.key_prefix(),
        };
        let filter = Filter {
            rt,
            labels,
            fields,
            name,
        };
        // Initial state: an unset or "0" resourceVersion means "start from now, with what
        // exists sent as ADDED"; sendInitialEvents asks for the same from any version.
        let from_now = rv.is_empty() || rv == "0";
        let initial = send_initial.unwrap_or(from_now);
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut start_rev = 0;
        let mut initial_objects = Vec::new();
        if initial || from_now {
            let res = self.store.range(&prefix, None, 0);
            start_rev = res.revision;
            if initial {
                for kv in &res.kvs {
                    let obj = object::decode(kv)?;
                    if filter.matches(&obj) {
                        initial_objects.push(obj);
                    }
                }
            }
        }
        if !from_now {
            let requested: i64 = rv
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion \"{rv}\"")))?;
            if !initial {
                start_rev = requested;
            } else {
                start_rev = start_rev.max(requested);
            }
        }
        let watch = match self.store.watch(&prefix, start_rev) {
            Ok(w) => Some(w),
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => {
                let err = ApiError::Gone {
                    message: format!("too old resource version: {requested} ({compacted})"),
                };
                let line = event_line("ERROR", &err.to_status());
                let _ = tx.try_send(line);
                None
            }
            Err(StoreError::FutureRevision { .. }) => {
                // Ahead of us: start from the present, as a fresh list would.
                Some(
                    self.store
                        .watch(&prefix, self.store.current_revision())
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                )
            }
            Err(e) => return Err(ApiError::Internal(format!("watch failed: {e}"))),
        };
        if let Some(mut watch) = watch {
            tokio::spawn(async move {
                let mut enc = Encoder {
                    rt,
                    output,
                    sent_columns: false,
                };
                for obj in &initial_objects {
                    if tx.send(enc.event("ADDED", obj)).await.is_err() {
                        return;
                    }
                }
                if initial && send_initial == Some(true) {
                    let bm = bookmark(rt, start_rev, true);
                    if tx.send(event_line("BOOKMARK", &bm)).await.is_err() {
                        return;
                    }
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut last_rev = start_rev;
                let mut tick = tokio::time::interval(BOOKMARK_EVERY);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => return,
                        _ = tx.closed() => return,
                        _ = tick.tick(), if bookmarks => {
                            if tx.send(event_line("BOOKMARK", &bookmark(rt, last_rev, false))).await.is_err() {
                                return;
                            }
                        }
                        ev = watch.events.recv() => {
                            let Some(ev) = ev else { return };
                            last_rev = ev.revision();
                            let line = if enc.output == Output::Json && filter.selects_by_key_only() {
                                match spliced(&filter, &ev) {
                                    Spliced::Line(line) => line,
                                    Spliced::Skip => continue,
                                    Spliced::Decode => match translate(&filter, &ev) {
                                        Some((ty, obj)) => enc.event(ty, &obj),
                                        None => continue,
                                    },
                                }
                            } else {
                                let Some((ty, obj)) = translate(&filter, &ev) else { continue };
                                enc.event(ty, &obj)
                            };
                            if tx.send(line).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        } else {
            drop(tx);
        }
        let body = crate::codec::channel_body(rx);
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache, private"),
        );
        Ok(resp)
    }
}

enum Spliced {
    Line(Bytes),
    Skip,
    /// The stored bytes are not in the layout splicing needs; decode instead.
    Decode,
}

/// The watch line of an event built from the stored bytes without parsing them: the common
/// case of watchers without selectors (1,000 watchers cost 1,000 copies, not 1,000 parses).
fn spliced(filter: &Filter, ev: &Event) -> Spliced {
    if !filter.key_matches(ev.key()) {
        return Spliced::Skip;
    }
    let (ty, stored, rev) = match ev {
        Event::Put { kv, prev } => (
            if prev.is_some() { "MODIFIED" } else { "ADDED" },
            &kv.value,
            kv.mod_revision,
        ),
        Event::Delete { prev, revision } => ("DELETED", &prev.value, *revision),
    };
    let Some(object) = object::with_resource_version(stored, rev) else {
        return Spliced::Decode;
    };
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(ty.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(&object);
    line.extend_from_slice(b"}\n");
    Spliced::Line(Bytes::from(line))
}

/// Turns a store event into a watch event for this watcher, if it concerns it.
fn translate(filter: &Filter, ev: &Event) -> Option<(&'static str, Value)> {
    match ev {
        Event::Put { kv, prev } => {
            let new = object::decode(kv).ok()?;
            let old = prev.as_ref().and_then(|p| object::decode(p).ok());
            let was = old.as_ref().is_some_and(|o| filter.matches(o));
            let is = filter.matches(&new);
            match (was, is) {
                (_, true) if old.is_none() => Some(("ADDED", new)),
                (true, true) => Some(("MODIFIED", new)),
                (false, true) => Some(("ADDED", new)),
                (true, false) => Some(("DELETED", new)),
                (false, false) => None,
            }
        }
        Event::Delete { prev, revision } => {
            let mut old = object::decode(prev).ok()?;
            if !filter.matches(&old) {
                return None;
            }
            object::set_resource_version(&mut old, *revision);
            Some(("DELETED", old))
        }
    }
}

struct Encoder {
    rt: &'static ResourceType,
    output: Output,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, ty: &str, obj: &Value) -> Bytes {
        let object = match self.output {
            Output::Table => {
                let meta = json!({"resourceVersion": object::meta_str(obj, "resourceVersion").unwrap_or("")});
                let mut t = table::table(
                    self.rt,
                    std::slice::from_ref(obj),
                    meta,
                    &respond::table_options(),
                );
                if self.sent_columns {
                    t["columnDefinitions"] = Value::Array(Vec::new());
                }
                self.sent_columns = true;
                t
            }
            Output::PartialMetadata => respond::partial(obj),
            Output::Json | Output::Yaml => obj.clone(),
        };
        event_line(ty, &object)
    }
}

fn bookmark(rt: &ResourceType, rev: i64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rev.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta})
}

fn event_line(ty: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": ty, "object": object}))
        .expect("a Value always serialises");
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::KeyValue;

    fn kv(name: &str, rev: i64, data: &str) -> KeyValue {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d"}, "data": {"k": data}});
        KeyValue {
            key: format!("/registry/core/configmaps/d/{name}").into(),
            value: object::encode(&obj),
            create_revision: 1,
            mod_revision: rev,
        }
    }

    fn filter(name: Option<&str>) -> Filter {
        Filter {
            rt: gantry_api::registry::by_plural("", "v1", "configmaps").expect("served"),
            labels: LabelSelector::parse("").expect("empty"),
            fields: FieldSelector::parse("").expect("empty"),
            name: name.map(str::to_string),
        }
    }

    fn line(s: Spliced) -> Value {
        match s {
            Spliced::Line(b) => serde_json::from_slice(&b).expect("a JSON line"),
            _ => panic!("expected a line"),
        }
    }

    #[test]
    fn spliced_lines_equal_decoded_events() {
        let f = filter(None);
        let mut enc = Encoder {
            rt: f.rt,
            output: Output::Json,
            sent_columns: false,
        };
        let events = [
            Event::Put {
                kv: kv("a", 2, "x"),
                prev: None,
            },
            Event::Put {
                kv: kv("a", 3, "y"),
                prev: Some(kv("a", 2, "x")),
            },
            Event::Delete {
                prev: kv("a", 3, "y"),
                revision: 4,
            },
        ];
        for ev in &events {
            let (ty, obj) = translate(&f, ev).expect("matches");
            let decoded: Value = serde_json::from_slice(&enc.event(ty, &obj)).expect("JSON");
            assert_eq!(line(spliced(&f, ev)), decoded);
        }
        assert_eq!(
            line(spliced(&f, &events[2]))["object"]["metadata"]["resourceVersion"],
            "4"
        );
    }

    #[test]
    fn a_name_filter_skips_other_keys() {
        let f = filter(Some("b"));
        assert!(matches!(
            spliced(
                &f,
                &Event::Put {
                    kv: kv("a", 2, "x"),
                    prev: None
                }
            ),
            Spliced::Skip
        ));
        assert!(matches!(
            spliced(
                &f,
                &Event::Put {
                    kv: kv("b", 2, "x"),
                    prev: None
                }
            ),
            Spliced::Line(_)
        ));
    }
}
