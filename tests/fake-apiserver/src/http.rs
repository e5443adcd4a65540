//! HTTP routing and the non-watch handlers (discovery, LIST, GET, POST/PUT/DELETE).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::PutMode;
use crate::util::parse_query;
use crate::validate::kind_for;

/// Response body type used by every handler.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;
/// Parsed query parameters.
pub(crate) type Query = HashMap<String, String>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed_unsync()
}

/// A JSON response with the given status code.
pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(serde_json::to_vec(v).unwrap_or_default()))
        .expect("valid response")
}

/// A `meta/v1 Status` failure object.
pub(crate) fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A failure response carrying a `Status` body.
pub(crate) fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(code, &status_object(code, reason, message))
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn api_error(e: &ApiError) -> Response<Body> {
    status_response(e.code(), e.reason(), e.message())
}

/// True for `true`/`1`, like the real server's boolean query parameters.
pub(crate) fn flag(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// Entry point for every request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    shared.stats.requests_total.fetch_add(1, Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    tracing::debug!(%method, %path, query = req.uri().query().unwrap_or(""), "fake-apiserver request");
    shared.faults.wait_not_hanging().await;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["version"]) => json_response(200, &version()),
        (&Method::GET, ["api"]) => json_response(
            200,
            &json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]
            }),
        ),
        (&Method::GET, ["apis"]) => json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [crate::events::group()]}),
        ),
        (&Method::GET, ["apis", "events.k8s.io"]) => {
            let mut group = crate::events::group();
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            json_response(200, &group)
        }
        (&Method::GET, ["apis", "events.k8s.io", "v1"]) => {
            json_response(200, &crate::events::resource_list())
        }
        (_, ["apis", "events.k8s.io", "v1", "namespaces", ns, "events", rest @ ..]) if rest.len() <= 1 => {
            if let Some(fault) = crate::events::write_fault(&shared, &method).await {
                return fault;
            }
            let (ns, name) = (ns.to_string(), rest.first().map(|s| s.to_string()));
            resource(&shared, method, Some(ns), "events".into(), name, query, req).await
        }
        (&Method::GET, ["apis", "events.k8s.io", "v1", "events"]) => {
            resource(&shared, method, None, "events".into(), None, query, req).await
        }
        (_, ["api", "v1", "namespaces", ns, "events", rest @ ..]) if rest.len() <= 1 => {
            let accept = header_str(&req, header::ACCEPT);
            crate::events::serve_core(&shared, &method, (Some(ns), rest.first().copied()), &query, &accept)
        }
        (_, ["api", "v1", "events"]) => {
            let accept = header_str(&req, header::ACCEPT);
            crate::events::serve_core(&shared, &method, (None, None), &query, &accept)
        }
        (&Method::GET, ["api", "v1"]) => json_response(200, &resource_list()),
        (_, ["api", "v1", "namespaces", ns, plural, rest @ ..]) if rest.len() <= 1 => {
            let ns = ns.to_string();
            let (plural, name) = (plural.to_string(), rest.first().map(|s| s.to_string()));
            resource(&shared, method, Some(ns), plural, name, query, req).await
        }
        (_, ["api", "v1", plural]) if *plural != "namespaces" => {
            let plural = plural.to_string();
            resource(&shared, method, None, plural, None, query, req).await
        }
        _ => status_response(404, "NotFound", "the server could not find the requested resource"),
    }
}

fn version() -> Value {
    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
           "compiler": "gc", "platform": "linux/amd64"})
}

fn resource_list() -> Value {
    let res = |name: &str, kind: &str, short: &str| {
        json!({
            "name": name, "singularName": "", "namespaced": true, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": [short]
        })
    };
    json!({"kind": "APIResourceList", "groupVersion": "v1",
           "resources": [res("configmaps", "ConfigMap", "cm"), res("secrets", "Secret", "secret"),
                         res("events", "Event", "ev")]})
}

async fn resource(
    shared: &Arc<Shared>,
    method: Method,
    ns: Option<String>,
    plural: String,
    name: Option<String>,
    query: Query,
    req: Request<Incoming>,
) -> Response<Body> {
    if kind_for(&plural).is_none() {
        return status_response(404, "NotFound", "the server could not find the requested resource");
    }
    // Injected failures are for the watched resources: an Event must not consume them.
    let failure = if plural == crate::events::PLURAL { None } else { shared.faults.take_failure() };
    if let Some((code, retry_after)) = failure {
        shared.stats.errors_injected.fetch_add(1, Relaxed);
        let msg = match code {
            429 => "Too many requests, please try again later.".to_string(),
            _ => format!("injected failure (HTTP {code})"),
        };
        let mut status = status_object(code, reason_for(code), &msg);
        if let Some(secs) = retry_after {
            status["details"] = json!({"retryAfterSeconds": secs});
        }
        let mut resp = json_response(code, &status);
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        return resp;
    }
    match (method, name) {
        (Method::GET, None) if flag(&query, "watch") => {
            crate::watch::serve(shared, &plural, ns.as_deref(), &query)
        }
        (Method::GET, None) => crate::list::serve(shared, &plural, ns.as_deref(), &query),
        (Method::GET, Some(name)) => {
            shared.stats.gets.fetch_add(1, Relaxed);
            let ns = ns.unwrap_or_default();
            match shared.store_for(&plural).get(&plural, &ns, &name) {
                Some(obj) => json_response(200, &obj),
                None => not_found(&plural, &name),
            }
        }
        (Method::DELETE, Some(name)) => {
            shared.stats.writes.fetch_add(1, Relaxed);
            let ns = ns.unwrap_or_default();
            match shared.store_for(&plural).delete(&plural, &ns, &name) {
                Some((_, obj)) => json_response(
                    200,
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "kind": plural, "uid": obj.pointer("/metadata/uid")}
                    }),
                ),
                None => not_found(&plural, &name),
            }
        }
        (Method::PATCH, Some(name)) if ns.is_some() => {
            shared.stats.writes.fetch_add(1, Relaxed);
            let content_type = header_str(&req, header::CONTENT_TYPE);
            let body = match Limited::new(req.into_body(), 4 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return status_response(400, "BadRequest", &format!("failed to read body: {e}")),
            };
            let ns = ns.unwrap_or_default();
            match crate::patch::apply(shared, &plural, &ns, &name, &content_type, &body) {
                Ok(obj) => json_response(200, &obj),
                Err(e) => api_error(&e),
            }
        }
        (m @ (Method::POST | Method::PUT), name) if ns.is_some() && name.is_some() == (m == Method::PUT) => {
            shared.stats.writes.fetch_add(1, Relaxed);
            let body = match Limited::new(req.into_body(), 4 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return status_response(400, "BadRequest", &format!("failed to read body: {e}"));
                }
            };
            let ns = ns.unwrap_or_default();
            match write(shared, &plural, &ns, name, &body) {
                Ok((code, obj)) => json_response(code, &obj),
                Err(e) => api_error(&e),
            }
        }
        _ => status_response(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> String {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn not_found(plural: &str, name: &str) -> Response<Body> {
    let mut s = status_object(404, "NotFound", &format!("{plural} {name:?} not found"));
    s["details"] = json!({"name": name, "kind": plural});
    json_response(404, &s)
}

/// POST (name = None) or PUT (name = Some) of a JSON body.
fn write(
    shared: &Shared,
    plural: &str,
    ns: &str,
    name: Option<String>,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let mut obj: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("the body of the request was in an unknown format: {e}"))
    })?;
    if !obj.is_object() {
        return Err(ApiError::BadRequest("the body of the request must be a JSON object".into()));
    }
    let meta =
        obj.as_object_mut().and_then(|o| o.entry("metadata").or_insert_with(|| json!({})).as_object_mut());
    let Some(meta) = meta else {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    };
    match meta.get("namespace").and_then(Value::as_str) {
        Some(body_ns) if body_ns != ns => {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        _ => meta.insert("namespace".into(), json!(ns)),
    };
    let precondition =
        meta.get("resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    if let Some(url_name) = &name {
        let body_name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        if body_name != url_name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
    }
    let mode = if name.is_some() { PutMode::Update(precondition) } else { PutMode::Create };
    let code = if name.is_some() { 200 } else { 201 };
    crate::write_object(shared, plural, obj, mode, true).map(|o| (code, (*o).clone()))
}

/// Parses the label and field selectors of a LIST/WATCH request; the error is the message
/// of the 400 BadRequest the real server answers.
pub(crate) fn selectors(q: &Query, plural: &str) -> Result<(LabelSelector, FieldSelector), String> {
    let label = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
    let field = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), plural)?;
    Ok((label, field))
}
