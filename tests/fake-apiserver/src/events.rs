//! Events: `events.k8s.io/v1` stored as written (create, patch, get, list, watch) and the
//! core/v1 view of the same objects (`involvedObject` from `regarding`), so
//! `kubectl get events` and `kubectl describe configmap` show them. Writes can be made to
//! answer 403 or to be slow ([`crate::Faults::set_event_writes_status`],
//! [`crate::Faults::set_event_writes_delay`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use hyper::{Method, Response};
use serde_json::{Value, json};

use crate::http::{Body, Query, flag, json_response, status_response};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;

/// The plural events are stored under.
pub(crate) const PLURAL: &str = "events";

/// Applies the event-write knobs to a write: `Some(response)` when it must fail.
pub(crate) async fn write_fault(shared: &Shared, method: &Method) -> Option<Response<Body>> {
    if !matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        return None;
    }
    let delay = shared.faults.event_delay_ms.load(SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match shared.faults.event_status.load(SeqCst) {
        0 => None,
        403 => Some(status_response(
            403,
            "Forbidden",
            "events.events.k8s.io is forbidden: User \"system:serviceaccount:fake:configsnap\" cannot create \
             resource \"events\" in API group \"events.k8s.io\"",
        )),
        code => Some(status_response(
            code,
            "InternalError",
            &format!("injected event write failure (HTTP {code})"),
        )),
    }
}

/// The core/v1 view of one `events.k8s.io/v1` Event.
pub(crate) fn to_core(event: &Value) -> Value {
    let get = |p: &str| event.pointer(p).cloned().unwrap_or(Value::Null);
    let first = seconds(event.pointer("/eventTime"));
    let last = seconds(event.pointer("/series/lastObservedTime")).or_else(|| first.clone());
    let count = event.pointer("/series/count").and_then(Value::as_u64).unwrap_or(1);
    let mut core = json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": get("/metadata"),
        "involvedObject": get("/regarding"),
        "reason": get("/reason"),
        "message": get("/note"),
        "type": get("/type"),
        "action": get("/action"),
        "eventTime": get("/eventTime"),
        "reportingComponent": get("/reportingController"),
        "reportingInstance": get("/reportingInstance"),
        "source": {"component": get("/reportingController")},
        "firstTimestamp": first, "lastTimestamp": last, "count": count,
    });
    if let Some(related) = event.get("related") {
        core["related"] = related.clone();
    }
    if let Some(series) = event.get("series") {
        core["series"] = series.clone();
    }
    core
}

/// A MicroTime cut to whole seconds (core/v1 `firstTimestamp`/`lastTimestamp` are Time).
fn seconds(time: Option<&Value>) -> Option<Value> {
    let time = time?.as_str()?;
    let cut = time.split_once('.').map_or(time.to_owned(), |(whole, _)| format!("{whole}Z"));
    Some(Value::String(cut))
}

/// GET on `/api/v1/[namespaces/{ns}/]events[/{name}]`: the core/v1 view (list or one), as
/// a `meta.k8s.io/v1` Table when `accept` asks for one (what `kubectl get events` prints).
pub(crate) fn serve_core(
    shared: &Arc<Shared>,
    method: &Method,
    (ns, name): (Option<&str>, Option<&str>),
    q: &Query,
    accept: &str,
) -> Response<Body> {
    if *method != Method::GET || flag(q, "watch") {
        return status_response(
            405,
            "MethodNotAllowed",
            "the fake API server serves core/v1 events read-only (get, list); write events.k8s.io/v1",
        );
    }
    let store = shared.store_for(PLURAL);
    if let Some(name) = name {
        return match store.get(PLURAL, ns.unwrap_or_default(), name) {
            Some(event) => json_response(200, &to_core(&event)),
            None => status_response(404, "NotFound", &format!("events {name:?} not found")),
        };
    }
    let selectors = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str)).and_then(|l| {
        Ok((l, FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), "core-events")?))
    });
    let (label, field) = match selectors {
        Ok(s) => s,
        Err(message) => return status_response(400, "BadRequest", &message),
    };
    let rv = store.rv();
    let items: Vec<Value> = match store.list_at(PLURAL, ns, None) {
        Ok((_, objects)) => objects
            .iter()
            .map(|e| to_core(e))
            .filter(|e| label.matches(e) && field.matches(e))
            .map(|mut e| {
                if let Some(m) = e.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                e
            })
            .collect(),
        Err(()) => Vec::new(),
    };
    if accept.contains("as=Table") {
        return json_response(200, &table(&items, rv));
    }
    json_response(
        200,
        &json!({"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}

/// The columns `kubectl get events` prints from a real server.
fn table(events: &[Value], rv: u64) -> Value {
    let column = |name: &str, priority: u8| {
        json!({"name": name, "type": "string", "format": if name == "Name" { "name" } else { "" },
               "description": name, "priority": priority})
    };
    let now = now_seconds();
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            let text = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            let last = e.pointer("/lastTimestamp").and_then(Value::as_str).and_then(parse_seconds);
            let age = last.map_or_else(|| "<unknown>".to_owned(), |t| human(now.saturating_sub(t)));
            let object = format!("{}/{}", text("/involvedObject/kind").to_lowercase(), text("/involvedObject/name"));
            json!({"cells": [age, text("/type"), text("/reason"), object, text("/message"), text("/metadata/name")],
                   "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                              "metadata": e.get("metadata").cloned().unwrap_or(Value::Null)}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()},
           "columnDefinitions": [column("Last Seen", 0), column("Type", 0), column("Reason", 0),
                                 column("Object", 0), column("Message", 0), column("Name", 1)],
           "rows": rows})
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since 1970 of `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_seconds(time: &str) -> Option<u64> {
    let num = |range: std::ops::Range<usize>| time.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// An age as kubectl prints it: `42s`, `5m`, `3h`, `2d`.
fn human(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Discovery of `events.k8s.io/v1`.
pub(crate) fn resource_list() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "events.k8s.io/v1",
           "resources": [{"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
                          "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                          "shortNames": ["ev"]}]})
}

/// The `events.k8s.io` group for `/apis`.
pub(crate) fn group() -> Value {
    let version = json!({"groupVersion": "events.k8s.io/v1", "version": "v1"});
    json!({"name": "events.k8s.io", "versions": [version.clone()], "preferredVersion": version})
}
