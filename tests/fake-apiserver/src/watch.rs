//! WATCH: chunked streams of newline-delimited JSON events with bookmarks and faults.
//!
//! Each watch gets an unbounded per-watcher channel registered in the store under the same
//! lock that decides its starting point, so there are no gaps or duplicates between the
//! initial state/history replay and live events. Memory is bounded by how far a client lags;
//! a watch whose client goes away is unregistered on the next write.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, header};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::http::{Body, Query, flag, selectors, status_object, status_response};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Counters, Shared};
use crate::store::{Event, WatchFrom, WatchMsg, WatchStart};
use crate::validate::kind_for;

/// Serializes one watch event line (`{"type":..,"object":..}\n`).
fn frame(kind: &str, obj: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    serde_json::to_writer(&mut out, obj).unwrap_or_default();
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

struct Filter {
    plural: String,
    ns: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.label.matches(obj) && self.field.matches(obj)
    }

    /// Watch-cache semantics: selector transitions become ADDED/DELETED. An object that stops
    /// matching is sent as DELETED with its previous state stamped with the new
    /// resourceVersion, like the real cacher.
    fn render(&self, ev: &Event) -> Option<Bytes> {
        if ev.plural != self.plural || self.ns.as_ref().is_some_and(|n| *n != ev.namespace) {
            return None;
        }
        let was = ev.old.as_ref().filter(|o| self.matches(o));
        if ev.deleted {
            return was.map(|_| frame("DELETED", &ev.obj));
        }
        match (was, self.matches(&ev.obj)) {
            (None, true) => Some(frame("ADDED", &ev.obj)),
            (Some(_), true) => Some(frame("MODIFIED", &ev.obj)),
            (Some(old), false) => {
                let mut last = (**old).clone();
                last["metadata"]["resourceVersion"] = json!(ev.rv.to_string());
                Some(frame("DELETED", &last))
            }
            (None, false) => None,
        }
    }
}

/// Decrements the open-watch gauge when the stream is dropped.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.stats.open_watches.fetch_sub(1, Relaxed);
    }
}

struct WatchState {
    guard: OpenGuard,
    filter: Filter,
    kind: &'static str,
    initial: VecDeque<Bytes>,
    rx: Option<UnboundedReceiver<WatchMsg>>,
    seen_rv: u64,
    deadline: Instant,
    bookmarks: bool,
    ticker: Option<Interval>,
    abort_next: bool,
    /// Freeze epoch at open (see `Faults::freeze_watches`).
    epoch: u64,
    /// Opened while `Faults::set_freeze_new_watches(true)`.
    frozen_at_open: bool,
}

impl WatchState {
    fn bookmark(&self) -> Bytes {
        frame(
            "BOOKMARK",
            &json!({"kind": self.kind, "apiVersion": "v1", "metadata": {"resourceVersion": self.seen_rv.to_string()}}),
        )
    }

    /// A frozen watch never sends or ends again: it waits here until the client drops it.
    async fn stay_frozen(&self) {
        if self.frozen_at_open || self.guard.0.faults.is_frozen(self.epoch) {
            std::future::pending::<()>().await;
        }
    }

    /// Next body frame; `None` ends the stream cleanly, `Some(Err)` aborts the connection.
    async fn next(&mut self) -> Option<Result<Frame<Bytes>, std::io::Error>> {
        self.stay_frozen().await;
        if self.abort_next {
            return Some(Err(std::io::Error::other("injected watch truncation")));
        }
        let bytes = loop {
            if let Some(b) = self.initial.pop_front() {
                break b;
            }
            let rx = self.rx.as_mut()?;
            tokio::select! {
                biased;
                msg = rx.recv() => match msg? {
                    WatchMsg::Event(ev) => {
                        self.seen_rv = self.seen_rv.max(ev.rv);
                        if let Some(b) = self.filter.render(&ev) {
                            break b;
                        }
                    }
                    WatchMsg::Bookmark if self.bookmarks => break self.bookmark(),
                    WatchMsg::Bookmark => {}
                },
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.stay_frozen().await;
                    return None;
                }
                _ = async { self.ticker.as_mut()?.tick().await; Some(()) }, if self.ticker.is_some() => {
                    break self.bookmark();
                }
            }
        };
        self.stay_frozen().await;
        let shared = &self.guard.0;
        tokio::select! {
            _ = shared.faults.wait_not_hanging() => {}
            _ = tokio::time::sleep_until(self.deadline) => return None,
        }
        if shared.faults.truncate_next.swap(false, SeqCst) {
            self.abort_next = true;
            return Some(Ok(Frame::data(bytes.slice(..bytes.len() / 2))));
        }
        Some(Ok(Frame::data(bytes)))
    }
}

/// Handles `GET ...?watch=true`.
pub(crate) fn serve(shared: &Arc<Shared>, plural: &str, ns: Option<&str>, q: &Query) -> Response<Body> {
    shared.stats.watches.fetch_add(1, Relaxed);
    Counters::bump(&shared.stats.watches_by_plural, plural);
    let (label, field) = match selectors(q, plural) {
        Ok(s) => s,
        Err(e) => return status_response(400, "BadRequest", &e),
    };
    // `sendInitialEvents` (true or false) is only valid with resourceVersionMatch=NotOlderThan;
    // `true` also needs bookmarks, because the end of the initial events is a BOOKMARK.
    let initial_set = q.contains_key("sendInitialEvents");
    let send_initial = flag(q, "sendInitialEvents");
    let bookmarks = flag(q, "allowWatchBookmarks");
    let rv_match = q.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
    if initial_set && rv_match != "NotOlderThan" {
        return status_response(
            422,
            "Invalid",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        );
    }
    if send_initial && !bookmarks {
        return status_response(
            422,
            "Invalid",
            "allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true",
        );
    }
    if !initial_set && !rv_match.is_empty() {
        return status_response(
            422,
            "Invalid",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        );
    }
    let rv = match q.get("resourceVersion").map(String::as_str).unwrap_or("") {
        "" | "0" => 0,
        s => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return status_response(400, "BadRequest", &format!("invalid resource version: {s:?}"));
            }
        },
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(shared.opts.default_watch_timeout, Duration::from_secs);
    let from = match (initial_set, send_initial, rv) {
        (_, true, _) => WatchFrom::Snapshot,
        // sendInitialEvents=false: no synthetic events, start at the requested or latest rv.
        (true, false, 0) => WatchFrom::Now,
        (false, _, 0) => WatchFrom::Snapshot,
        (_, false, n) => WatchFrom::Resume(n),
    };
    if matches!(from, WatchFrom::Resume(_)) {
        shared.stats.watch_resumes.fetch_add(1, Relaxed);
    }
    let force_expire = shared.faults.expire_resumes.load(SeqCst);
    let (start, rx) = shared.store_for(plural).subscribe(plural, ns, from, force_expire);
    shared.stats.open_watches.fetch_add(1, Relaxed);
    let kind = kind_for(plural).unwrap_or("Object");
    let filter = Filter { plural: plural.into(), ns: ns.map(String::from), label, field };
    let mut initial = VecDeque::new();
    let mut seen_rv = rv;
    match start {
        WatchStart::Snapshot(at, objects) => {
            initial.extend(objects.iter().filter(|o| filter.matches(o)).map(|o| frame("ADDED", o)));
            seen_rv = at;
            if send_initial {
                initial.push_back(frame(
                    "BOOKMARK",
                    &json!({"kind": kind, "apiVersion": "v1", "metadata": {
                    "resourceVersion": at.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}}),
                ));
            }
        }
        WatchStart::Resume(base, events) => {
            seen_rv = base;
            for ev in events {
                seen_rv = seen_rv.max(ev.rv);
                initial.extend(filter.render(&ev));
            }
        }
        WatchStart::TooOld(requested, oldest) => {
            let msg = format!("too old resource version: {requested} ({oldest})");
            initial.push_back(frame("ERROR", &status_object(410, "Expired", &msg)));
        }
    }
    let (epoch, frozen_at_open) = shared.faults.watch_epoch();
    let interval = shared.opts.bookmark_interval;
    let ticker = (bookmarks && !interval.is_zero()).then(|| {
        let mut t = tokio::time::interval_at(Instant::now() + interval, interval);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let state = WatchState {
        guard: OpenGuard(shared.clone()),
        filter,
        kind,
        initial,
        rx,
        seen_rv,
        deadline: Instant::now() + timeout,
        bookmarks,
        ticker,
        abort_next: false,
        epoch,
        frozen_at_open,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        let item = st.next().await?;
        Some((item, st))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("valid response")
}
