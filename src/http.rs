//! The admin server: `/healthz`, `/readyz` (JSON status) and `/metrics` on `--listen`.
//! Small and hardened: header read timeout, small buffers, GET only.

use crate::events::Events;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A slow client gets this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests here are one line and a few headers.
const MAX_BUFFER: usize = 16 * 1024;
/// A source loop that has not turned for this long is wedged: it beats every
/// [`crate::source::HEARTBEAT`], so this allows several missed beats on a loaded node.
const SILENT_AFTER: Duration = Duration::from_secs(120);
/// Content type of the OpenMetrics text format that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until `cancel`; connections get the rest of their request answered. A pipeline
/// step longer than `wedged_after` makes `/healthz` fail.
pub async fn serve(listener: TcpListener, events: Events, cancel: CancellationToken, wedged_after: Duration) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let events = events.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &events, wedged_after);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_BUFFER)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// Answers one request.
fn respond<B>(request: &Request<B>, events: &Events, wedged_after: Duration) -> Response<Full<Bytes>> {
    let (code, content_type, body) = match request.uri().path() {
        "/metrics" if request.method() == Method::GET || request.method() == Method::HEAD => {
            let accept = request.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok());
            let (content_type, body) = events.metrics().negotiate(accept);
            (StatusCode::OK, content_type, body)
        }
        path => route(request.method(), path, events, wedged_after),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

/// Status, content type and body for a method and path.
fn route(
    method: &Method,
    path: &str,
    events: &Events,
    wedged_after: Duration,
) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
    }
    let status = events.status().get();
    match path {
        "/healthz" => match unhealthy(&status, wedged_after) {
            None => (StatusCode::OK, TEXT, "ok\n".into()),
            Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{reason}\n")),
        },
        "/readyz" => {
            let code = if status.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            (code, "application/json", format!("{}\n", status.to_json()))
        }
        "/metrics" => (StatusCode::OK, OPENMETRICS, events.metrics().encode()),
        _ => (StatusCode::NOT_FOUND, TEXT, "not found: try /healthz, /readyz or /metrics\n".into()),
    }
}

fn unhealthy(status: &crate::status::Status, wedged_after: Duration) -> Option<String> {
    if let Some(task) = &status.failed_task {
        return Some(format!("task {task} ended unexpectedly"));
    }
    if let Some((task, beat)) = status.heartbeats.iter().find(|(_, beat)| beat.elapsed() > SILENT_AFTER) {
        return Some(format!("the {task} loop has not turned for {}s", beat.elapsed().as_secs()));
    }
    let busy = status.busy_since.map(|since| since.elapsed())?;
    (busy > wedged_after).then(|| format!("the pipeline has been busy for {}s", busy.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::status::{Origin, StatusHandle};
    use std::sync::Arc;

    fn get(path: &str, events: &Events) -> (StatusCode, String) {
        let (code, _, body) = route(&Method::GET, path, events, Duration::from_secs(300));
        (code, body)
    }

    #[test]
    fn readyz_turns_ready_with_a_snapshot_and_unready_at_shutdown() {
        let events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
        assert_eq!(get("/readyz", &events).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/healthz", &events).0, StatusCode::OK);
        events.status().update(|s| s.origin = Origin::Live);
        let (code, body) = get("/readyz", &events);
        assert_eq!(code, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(json["ready"], true);
        events.status().update(|s| s.shutting_down = true);
        assert_eq!(get("/readyz", &events).0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn healthz_fails_when_a_task_died_and_unknown_paths_are_404() {
        let events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
        events.task_failed("watch", "stream ended");
        let (code, body) = get("/healthz", &events);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("watch"), "{body}");
        assert_eq!(get("/nope", &events).0, StatusCode::NOT_FOUND);
        assert!(get("/metrics", &events).1.contains("configsnap_swaps_total"));
    }

    #[tokio::test(start_paused = true)]
    async fn healthz_fails_when_a_source_loop_stops_turning() {
        let events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
        events.heartbeat("watch");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(get("/healthz", &events).0, StatusCode::OK);
        tokio::time::advance(SILENT_AFTER).await;
        let (code, body) = get("/healthz", &events);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("watch loop"), "{body}");
    }
}
