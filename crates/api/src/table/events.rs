//! Table printer for Events of both APIs (`v1` and `events.k8s.io/v1`), which kubectl
//! shows as LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
//! The one thing to know: the two APIs store the same event under different field names;
//! [`EventPaths`] is the only place that knows both.

use serde_json::Value;

use super::{col, int_at, name, since, str_at, Column, Printed, NAME};

pub(super) const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", 0, ""),
    col("Type", "string", 0, ""),
    col("Reason", "string", 0, ""),
    col("Object", "string", 0, ""),
    col("Subobject", "string", 1, ""),
    col("Source", "string", 1, ""),
    col("Message", "string", 0, ""),
    col("First Seen", "string", 1, ""),
    col("Count", "string", 1, ""),
    super::Column {
        priority: 1,
        ..NAME
    },
];

pub(super) fn core_event(obj: &Value, now: i64) -> Printed {
    event(obj, now, &CORE_EVENT)
}

pub(super) fn events_api_event(obj: &Value, now: i64) -> Printed {
    event(obj, now, &EVENTS_API_EVENT)
}

/// Where each printed field lives in one of the two Event APIs.
struct EventPaths {
    first: &'static str,
    last: &'static str,
    count: &'static str,
    regarding: &'static str,
    source_component: &'static str,
    source_host: &'static str,
    message: &'static str,
    reporting_controller: &'static str,
}

const CORE_EVENT: EventPaths = EventPaths {
    first: "/firstTimestamp",
    last: "/lastTimestamp",
    count: "/count",
    regarding: "/involvedObject",
    source_component: "/source/component",
    source_host: "/source/host",
    message: "/message",
    reporting_controller: "/reportingComponent",
};

const EVENTS_API_EVENT: EventPaths = EventPaths {
    first: "/deprecatedFirstTimestamp",
    last: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    regarding: "/regarding",
    source_component: "/deprecatedSource/component",
    source_host: "/deprecatedSource/host",
    message: "/note",
    reporting_controller: "/reportingController",
};

fn event(obj: &Value, now: i64, paths: &EventPaths) -> Printed {
    let first_ts = str_at(obj, paths.first);
    let first = if first_ts.is_empty() {
        since(str_at(obj, "/eventTime"), now)
    } else {
        since(first_ts, now)
    };
    let last_ts = str_at(obj, paths.last);
    let mut last = if last_ts.is_empty() {
        first.clone()
    } else {
        since(last_ts, now)
    };
    let mut count = int_at(obj, paths.count);
    if let Some(series) = obj.get("series").filter(|s| s.is_object()) {
        last = since(str_at(series, "/lastObservedTime"), now);
        count = int_at(series, "/count");
    } else if count == 0 {
        // Singleton events carry no count in the new API.
        count = 1;
    }
    let regarding = obj.pointer(paths.regarding).unwrap_or(&Value::Null);
    let kind = str_at(regarding, "/kind").to_lowercase();
    let target = match str_at(regarding, "/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = match str_at(obj, paths.source_component) {
        "" => str_at(obj, paths.reporting_controller),
        c => c,
    };
    let instance = match str_at(obj, paths.source_host) {
        "" => str_at(obj, "/reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    Printed::cells(vec![
        last.into(),
        str_at(obj, "/type").into(),
        str_at(obj, "/reason").into(),
        target.into(),
        str_at(regarding, "/fieldPath").into(),
        source.into(),
        str_at(obj, paths.message).trim().into(),
        first.into(),
        count.into(),
        name(obj).into(),
    ])
}
