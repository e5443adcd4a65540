//! The admin server: `/healthz`, `/readyz` (JSON status) and `/metrics` on `--listen`.
//!
//! Small and hardened, because `--listen` is often reachable from the whole pod network:
//! GET only, small buffers, a header read timeout (which also closes a connection idle
//! before or between requests), a lifetime per connection, and at most
//! [`connection_cap`] connections at once, well below the fd limit so that swaps keep
//! their fds. When full, a new connection evicts the oldest one (an idle or slow client
//! holds its slot for seconds; a probe is answered in microseconds), so a flood of idle
//! connections cannot lock probes out. Accept errors (`EMFILE` and the like) back off
//! instead of spinning.

use crate::events::Events;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A slow client gets this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests here are one line and a few headers.
const MAX_BUFFER: usize = 16 * 1024;
/// Most connections served at once: probes and a scrape or two need a handful.
const MAX_CONNECTIONS: usize = 64;
/// Fewest connections served at once, however low the fd limit.
const MIN_CONNECTIONS: usize = 4;
/// File descriptors left for the sidecar's own work (writer, API client, reload
/// commands, the runtime) whatever the admin port sees.
const RESERVED_FDS: u64 = 128;
/// Longest life of one connection, however busy: a client that sends requests but never
/// reads the answers cannot hold a slot for ever. Scrapers reconnect.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// First and longest pause after a failed accept (EMFILE would otherwise spin).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));
/// A source loop that has not turned for this long is wedged: it beats every
/// [`crate::source::HEARTBEAT`], so this allows several missed beats on a loaded node.
const SILENT_AFTER: Duration = Duration::from_secs(120);
/// Content type of the OpenMetrics text format that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until `cancel`; connections get the rest of their request answered. A pipeline
/// step longer than `wedged_after` makes `/healthz` fail.
pub(crate) async fn serve(
    listener: TcpListener,
    events: Events,
    cancel: CancellationToken,
    wedged_after: Duration,
) {
    let connections = TaskTracker::new();
    let cap = connection_cap();
    let permits = Arc::new(Semaphore::new(cap));
    let live = Arc::new(Mutex::new(Live::default()));
    let mut backoff = ACCEPT_BACKOFF.0;
    tracing::debug!(max_connections = cap, "admin server started");
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF.0;
                stream
            }
            Err(error) => {
                // Out of fds (or memory): the listener stays readable, so retrying at once
                // would spin. Pause, doubling up to a second.
                if backoff == ACCEPT_BACKOFF.0 {
                    tracing::warn!(%error, "accepting an admin connection failed; backing off");
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let permit = if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            permit
        } else {
            lock(&live).evict_oldest();
            tokio::select! {
                () = cancel.cancelled() => break,
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            }
        };
        let evicted = CancellationToken::new();
        let id = lock(&live).add(evicted.clone());
        let (events, cancel, live) = (events.clone(), cancel.clone(), Arc::clone(&live));
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
                () = evicted.cancelled() => {}
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
                () = tokio::time::sleep(CONNECTION_LIFETIME) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
            lock(&live).remove(id);
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
}

/// How many admin connections to serve at once: [`MAX_CONNECTIONS`], or fewer when the
/// fd limit leaves less than that above [`RESERVED_FDS`].
#[must_use]
pub(crate) fn connection_cap() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let spare = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(MAX_CONNECTIONS);
    spare.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The connections being served, oldest first, each with the token that evicts it.
#[derive(Debug, Default)]
struct Live {
    next: u64,
    connections: VecDeque<(u64, CancellationToken)>,
}

// === impl Live ===

impl Live {
    fn add(&mut self, evict: CancellationToken) -> u64 {
        self.next += 1;
        self.connections.push_back((self.next, evict));
        self.next
    }

    fn remove(&mut self, id: u64) {
        self.connections.retain(|(live, _)| *live != id);
    }

    fn evict_oldest(&mut self) {
        if let Some((_, evict)) = self.connections.pop_front() {
            evict.cancel();
        }
    }
}

fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        events.observe(crate::outcome::Outcome::Source(crate::outcome::Health::TaskFailed {
            task: "watch",
            error: "stream ended",
        }));
        let (code, body) = get("/healthz", &events);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("watch"), "{body}");
        assert_eq!(get("/nope", &events).0, StatusCode::NOT_FOUND);
        assert!(get("/metrics", &events).1.contains("configsnap_swaps_total"));
    }

    /// One GET over a fresh connection: the status line, or `None` if it was not answered.
    async fn raw_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        String::from_utf8_lossy(&answer).lines().next().map(str::to_owned)
    }

    #[tokio::test]
    async fn a_flood_of_idle_connections_cannot_lock_probes_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, events, cancel.clone(), Duration::from_secs(300)));
        let mut idle = Vec::new();
        for _ in 0..(connection_cap() * 4) {
            idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        for _ in 0..20 {
            let status = tokio::time::timeout(Duration::from_secs(10), raw_get(addr, "/healthz")).await;
            assert_eq!(status.ok().flatten().as_deref(), Some("HTTP/1.1 200 OK"));
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops").expect("no panic");
    }

    /// Env var that makes [`connection_cap_under_a_lowered_fd_limit`] lower its own soft
    /// fd limit and print the cap.
    const PROBE_SOFT_LIMIT: &str = "CONFIGSNAP_TEST_NOFILE_SOFT";

    /// The cap at soft fd limit `soft`, from a child: this test binary re-run on one test,
    /// so lowering the limit never takes fds from the tests running beside this one.
    fn cap_in_a_child_with_soft_limit(soft: u64) -> usize {
        let exe = std::env::current_exe().expect("the test binary");
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "http::tests::connection_cap_under_a_lowered_fd_limit",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads=1"])
            .env(PROBE_SOFT_LIMIT, soft.to_string())
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        // The harness prints the test's name on the same line, before its output.
        let printed = stdout.split("connection_cap=").nth(1);
        let digits = printed.map(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>());
        digits.and_then(|n| n.parse().ok()).unwrap_or_else(|| {
            panic!("no cap printed at soft limit {soft}: {stdout}{}", String::from_utf8_lossy(&output.stderr))
        })
    }

    /// Not a test by itself: run by [`the_connection_cap_leaves_128_fds_and_stays_within_4_to_64`]
    /// in a child process.
    #[test]
    #[ignore = "run in a child process by the_connection_cap_leaves_128_fds_and_stays_within_4_to_64"]
    fn connection_cap_under_a_lowered_fd_limit() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let Some(soft) = std::env::var(PROBE_SOFT_LIMIT).ok().and_then(|v| v.parse().ok()) else { return };
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("lower the soft fd limit");
        println!("connection_cap={}", connection_cap());
    }

    #[test]
    fn the_connection_cap_leaves_128_fds_and_stays_within_4_to_64() {
        // Written out, not computed from the constants: 128 fds stay for the sidecar's own
        // work, at most 64 admin connections, at least 4 however low the limit.
        for (soft, want) in [(1_024, 64), (192, 64), (191, 63), (150, 22), (133, 5), (131, 4), (20, 4)] {
            assert_eq!(cap_in_a_child_with_soft_limit(soft), want, "soft fd limit {soft}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn healthz_fails_when_a_source_loop_stops_turning() {
        let events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
        events.observe(crate::outcome::Outcome::Source(crate::outcome::Health::Heartbeat("watch")));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(get("/healthz", &events).0, StatusCode::OK);
        tokio::time::advance(SILENT_AFTER).await;
        let (code, body) = get("/healthz", &events);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("watch loop"), "{body}");
    }
}
