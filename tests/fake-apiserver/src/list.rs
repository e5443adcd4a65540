//! LIST: selectors, `limit`/`continue` pagination and `resourceVersion`/`resourceVersionMatch`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use hyper::Response;
use serde_json::{Value, json};

use crate::http::{Body, Query, json_response, selectors, status_response};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Counters, Shared};
use crate::util::{b64url_decode, b64url_encode};
use crate::validate::kind_for;

/// A request failure: HTTP code, `Status.reason`, message.
type Fail = (u16, &'static str, String);

/// `(namespace, name)`: the order of list items and the position a continue token resumes after.
type ItemKey = (String, String);

/// Which snapshot a LIST reads and where in it a page starts.
#[derive(Debug, Default)]
struct Plan {
    /// Read the store as of this rv (`None`: the latest).
    at: Option<u64>,
    /// A `NotOlderThan` lower bound (also what a bare `resourceVersion` means).
    not_older_than: Option<u64>,
    /// Resume after this item (continue token).
    after: Option<ItemKey>,
    /// The request came with a continue token.
    continued: bool,
}

fn bad(message: impl Into<String>) -> Fail {
    (400, "BadRequest", message.into())
}

/// Decoded continue token: (snapshot rv, last returned item).
fn decode_continue(token: &str) -> Option<(u64, ItemKey)> {
    let v: Value = serde_json::from_slice(&b64url_decode(token)?).ok()?;
    let rv = v.get("rv")?.as_u64()?;
    let start = v.get("start")?.as_str()?.strip_suffix('\u{0}')?;
    let (ns, name) = start.split_once('/')?;
    Some((rv, (ns.to_string(), name.to_string())))
}

/// A token shaped like the real server's: base64url JSON with the snapshot rv and the key
/// to start after.
fn encode_continue(rv: u64, (ns, name): &ItemKey) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}\u{0}")});
    b64url_encode(&serde_json::to_vec(&v).unwrap_or_default())
}

/// Validates `resourceVersion`, `resourceVersionMatch` and `continue` like the real server.
fn plan(q: &Query) -> Result<Plan, Fail> {
    let rv = match q.get("resourceVersion").map(String::as_str).unwrap_or("") {
        "" => None,
        s => Some(s.parse::<u64>().map_err(|_| bad(format!("invalid resource version: {s:?}")))?),
    };
    let rv_match = q.get("resourceVersionMatch").map_or("", String::as_str);
    if let Some(token) = q.get("continue").filter(|c| !c.is_empty()) {
        if rv.is_some() || !rv_match.is_empty() {
            return Err(bad("specifying resource version is not allowed when using continue"));
        }
        let (at, after) =
            decode_continue(token).ok_or_else(|| bad("continue key is not valid: invalid continue token"))?;
        return Ok(Plan { at: Some(at), after: Some(after), continued: true, ..Plan::default() });
    }
    match (rv_match, rv) {
        ("" | "NotOlderThan", rv) => Ok(Plan { not_older_than: rv, ..Plan::default() }),
        ("Exact", Some(n)) if n > 0 => Ok(Plan { at: Some(n), ..Plan::default() }),
        ("Exact", _) => Err(bad(
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\" or unset",
        )),
        (other, _) => Err(bad(format!(
            "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

fn key_of(o: &Value) -> ItemKey {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    (s("/metadata/namespace"), s("/metadata/name"))
}

/// Reads the snapshot a plan asks for: `(its rv, every object of the plural in scope)`.
fn snapshot(
    shared: &Shared,
    plural: &str,
    ns: Option<&str>,
    plan: &Plan,
) -> Result<(u64, Vec<Arc<Value>>), Fail> {
    let store = shared.store_for(plural);
    let current = store.rv();
    if let Some(n) = plan.at.or(plan.not_older_than).filter(|n| *n > current) {
        return Err((504, "Timeout", format!("Too large resource version: {n}, current: {current}")));
    }
    store.list_at(plural, ns, plan.at).map_err(|()| {
        let msg = if plan.continued {
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter, or use the continue token \
             in this response to retrieve the remainder of the results."
        } else {
            "The resourceVersion for the provided list is too old."
        };
        (410, "Expired", msg.to_string())
    })
}

/// The list body: one page of matching items (without `kind`/`apiVersion`, as the real
/// server sends them) and the list metadata.
fn page(
    plural: &str,
    rv: u64,
    objects: &[Arc<Value>],
    plan: &Plan,
    q: &Query,
    selectors: &(LabelSelector, FieldSelector),
) -> Value {
    let (label, field) = selectors;
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let matching: Vec<&Value> = objects
        .iter()
        .map(|o| &**o)
        .filter(|o| plan.after.as_ref().is_none_or(|a| key_of(o) > *a))
        .filter(|o| label.matches(o) && field.matches(o))
        .collect();
    let take = limit.map_or(matching.len(), |l| l.min(matching.len()));
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if take < matching.len() {
        meta["continue"] = json!(encode_continue(rv, &key_of(matching[take - 1])));
        // The real server cannot count what is left when a selector filters the list.
        if label.is_empty() && field.is_empty() {
            meta["remainingItemCount"] = json!(matching.len() - take);
        }
    }
    let items: Vec<Value> = matching[..take]
        .iter()
        .map(|o| {
            let mut v = (*o).clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    let kind = format!("{}List", kind_for(plural).unwrap_or("Object"));
    let api_version = crate::validate::api_version_for(plural);
    json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items})
}

/// Handles a LIST (`GET` on a collection without `watch`).
pub(crate) fn serve(shared: &Shared, plural: &str, ns: Option<&str>, q: &Query) -> Response<Body> {
    shared.stats.lists.fetch_add(1, Relaxed);
    Counters::bump(&shared.stats.lists_by_plural, plural);
    let result = selectors(q, plural).map_err(bad).and_then(|sel| {
        let plan = plan(q)?;
        let (rv, objects) = snapshot(shared, plural, ns, &plan)?;
        Ok(page(plural, rv, &objects, &plan, q, &sel))
    });
    match result {
        Ok(body) => json_response(200, &body),
        Err((code, reason, message)) => status_response(code, reason, &message),
    }
}
