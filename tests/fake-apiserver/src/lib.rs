//! A fake Kubernetes API server for tests: real HTTP/1.1 on loopback, Kubernetes API semantics.
//!
//! It serves the namespaced core/v1 resources `configmaps` and `secrets` (objects kept as
//! [`serde_json::Value`]) with LIST (label/field selectors, `limit`/`continue` pagination,
//! `resourceVersion`/`resourceVersionMatch`), GET, WATCH (resume from a resourceVersion,
//! `410 Expired` ERROR events for compacted versions, bookmarks, `sendInitialEvents`
//! streaming lists, `timeoutSeconds`) and POST/PUT/DELETE, so a real kube-rs client
//! (`kube::runtime::watcher`) can talk to it over a socket. Fault injection lives in
//! [`Faults`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fake_apiserver::FakeApiServer;
//! let server = FakeApiServer::start().await?;
//! let cm = FakeApiServer::configmap("default", "app").label("app", "web").data("k", "v").build();
//! let rv = server.apply("configmaps", cm).expect("valid object");
//! assert_eq!(server.current_resource_version(), rv);
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), "default")?;
//! # Ok(()) }
//! ```

mod builders;
mod events;
mod faults;
mod http;
mod list;
mod patch;
mod selector;
mod server;
mod store;
mod util;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use builders::{ConfigMapBuilder, SecretBuilder};
pub use faults::Faults;

use server::Shared;
use store::PutMode;

/// Server configuration for [`FakeApiServer::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of events kept for watch resumption (older rvs get `410 Expired`). Default 10 000.
    pub history_capacity: usize,
    /// Interval of periodic BOOKMARK events on watches with `allowWatchBookmarks=true`;
    /// `Duration::ZERO` disables them. Default 1 s (the real server uses about a minute).
    pub bookmark_interval: Duration,
    /// Port on 127.0.0.1; 0 (the default) picks an ephemeral port.
    pub port: u16,
    /// The resourceVersion before the first write. Default 1000.
    pub initial_resource_version: u64,
    /// Watch duration when the request has no `timeoutSeconds`. Default 30 min.
    pub default_watch_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history_capacity: 10_000,
            bookmark_interval: Duration::from_secs(1),
            port: 0,
            initial_resource_version: 1000,
            default_watch_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Snapshot of request counters ([`FakeApiServer::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// LIST requests served (including paginated continuations; not those answered by
    /// [`Faults::fail_requests`]).
    pub lists: u64,
    /// WATCH requests.
    pub watches: u64,
    /// WATCH requests resuming from a numeric, non-zero resourceVersion (kube's first watch
    /// after a LIST counts too: it starts from the list's resourceVersion).
    pub watch_resumes: u64,
    /// GET-one requests.
    pub gets: u64,
    /// POST/PUT/DELETE requests over HTTP (not the Rust helpers).
    pub writes: u64,
    /// Requests answered by [`Faults::fail_requests`].
    pub errors_injected: u64,
    /// Every HTTP request received, including discovery.
    pub requests_total: u64,
    /// Watches currently open (a gauge; not cleared by [`FakeApiServer::reset_stats`]).
    pub open_watches: u64,
    /// LIST requests per resource plural.
    pub lists_by_plural: BTreeMap<String, u64>,
    /// WATCH requests per resource plural.
    pub watches_by_plural: BTreeMap<String, u64>,
}

/// Errors from the store helpers, mirroring API server failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 422 Invalid: the object failed validation.
    Invalid(String),
    /// 400 BadRequest: malformed request or object.
    BadRequest(String),
    /// 404 NotFound: missing object or unsupported resource.
    NotFound(String),
    /// 409 AlreadyExists: create of an existing object.
    AlreadyExists(String),
    /// 409 Conflict: stale resourceVersion precondition.
    Conflict(String),
}

impl ApiError {
    /// HTTP status code of this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::Invalid(_) => 422,
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::AlreadyExists(_) | Self::Conflict(_) => 409,
        }
    }

    /// Kubernetes `Status.reason` of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::NotFound(_) => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict(_) => "Conflict",
        }
    }

    /// Human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid(m)
            | Self::BadRequest(m)
            | Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::Conflict(m) => m,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason(), self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

/// Shared write path of the Rust helpers and HTTP POST/PUT.
pub(crate) fn write_object(
    shared: &Shared,
    plural: &str,
    mut obj: Value,
    mode: PutMode,
    validated: bool,
) -> Result<Arc<Value>, ApiError> {
    if validate::kind_for(plural).is_none() {
        return Err(ApiError::NotFound(format!(
            "the server could not find the requested resource ({plural})"
        )));
    }
    if !obj.is_object() || obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::BadRequest("object and its metadata must be JSON objects".into()));
    }
    if plural == "secrets" {
        validate::fold_string_data(&mut obj);
    }
    if validated {
        let generated =
            obj.pointer("/metadata/generateName").and_then(Value::as_str).is_some_and(|g| !g.is_empty());
        let mut probe = obj.clone();
        if generated && obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").is_empty() {
            let g = obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("");
            probe["metadata"]["name"] = Value::String(format!("{g}xxxxx"));
        }
        validate::validate(plural, &probe)?;
    }
    shared.store_for(plural).put(plural, obj, mode, validated)
}

struct Handle {
    shared: Arc<Shared>,
    faults: Faults,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.abort_all();
    }
}

/// A running fake API server. Cheap to clone; when the last clone is dropped every task is
/// aborted (use [`FakeApiServer::shutdown`] for a graceful stop).
#[derive(Clone)]
pub struct FakeApiServer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer").field("addr", &self.addr()).finish()
    }
}

impl FakeApiServer {
    /// Starts a server on `127.0.0.1:0` with default [`Options`]. Must be called inside a
    /// tokio runtime.
    pub async fn start() -> std::io::Result<FakeApiServer> {
        Self::start_with(Options::default()).await
    }

    /// Starts a server with the given options.
    pub async fn start_with(opts: Options) -> std::io::Result<FakeApiServer> {
        let listener = server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port)))?;
        let shared = Arc::new(Shared::new(opts, listener.local_addr()?));
        shared.spawn_accept(listener);
        let faults = Faults { shared: shared.clone() };
        tracing::debug!(addr = %shared.addr, "fake-apiserver listening");
        Ok(FakeApiServer { handle: Arc::new(Handle { shared, faults }) })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The listening address (stable across [`Faults::set_refuse`]).
    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// A kubeconfig pointing at this server with `namespace` as the context namespace and a
    /// dummy bearer token (plain HTTP, so no CA data). kube 5 builds its TLS config even for
    /// `http://` and, with no CA, looks for the system roots unless its `webpki-roots`
    /// feature is on (it is, here and in configsnap): then no certificate file is opened.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    namespace: {namespace}\n    user: fake\n\
             current-context: fake\npreferences: {{}}\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            url = self.url()
        )
    }

    /// Writes [`FakeApiServer::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(namespace))
    }

    /// Creates or replaces `object` (keyed by `metadata.namespace`/`metadata.name`) in
    /// `plural` after validating it like the real API server (names, keys, sizes, `immutable`);
    /// returns its new resourceVersion. Like the real server, a write that changes nothing
    /// is a no-op: the old resourceVersion comes back and watches see no event.
    pub fn apply(&self, plural: &str, object: Value) -> Result<u64, ApiError> {
        write_object(self.shared(), plural, object, PutMode::Upsert, true).map(|o| rv_of(&o))
    }

    /// Like [`FakeApiServer::apply`] without validation, `immutable` included (to test
    /// client-side rules).
    /// Panics on an unsupported plural or when namespace/name are missing.
    pub fn apply_unvalidated(&self, plural: &str, object: Value) -> u64 {
        match write_object(self.shared(), plural, object, PutMode::Upsert, false) {
            Ok(o) => rv_of(&o),
            Err(e) => panic!("apply_unvalidated({plural}): {e}"),
        }
    }

    /// Deletes an object; returns the resourceVersion of the deletion, `None` if absent.
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) -> Option<u64> {
        self.shared().store_for(plural).delete(plural, namespace, name).map(|(rv, _)| rv)
    }

    /// The stored object (with `kind`, `apiVersion` and full metadata), if present.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared().store_for(plural).get(plural, namespace, name).map(|o| (*o).clone())
    }

    /// Every `events.k8s.io/v1` Event stored in `namespace`, as written (series patches
    /// applied), in name order.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        let store = self.shared().store_for("events");
        store
            .list_at("events", Some(namespace), None)
            .map_or_else(|()| Vec::new(), |(_, objects)| objects.iter().map(|o| (**o).clone()).collect())
    }

    /// The latest resourceVersion (the global counter).
    pub fn current_resource_version(&self) -> u64 {
        self.shared().store().rv()
    }

    /// Discards the event history: watches or exact lists from any older rv get `410 Expired`.
    pub fn compact(&self) {
        self.shared().store().compact();
    }

    /// Pushes a BOOKMARK to every open watch that allows bookmarks.
    pub fn send_bookmarks(&self) {
        self.faults().send_bookmarks();
    }

    /// A [`ConfigMapBuilder`] for `namespace/name`.
    pub fn configmap(namespace: &str, name: &str) -> ConfigMapBuilder {
        ConfigMapBuilder::new(namespace, name)
    }

    /// A [`SecretBuilder`] for `namespace/name`.
    pub fn secret(namespace: &str, name: &str) -> SecretBuilder {
        SecretBuilder::new(namespace, name)
    }

    /// Fault-injection controls.
    pub fn faults(&self) -> &Faults {
        &self.handle.faults
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        self.shared().stats.snapshot()
    }

    /// Resets the counters (except the `open_watches` gauge).
    pub fn reset_stats(&self) {
        self.shared().stats.reset();
    }

    /// Graceful stop: ends open watches cleanly, stops accepting, waits up to 2 s per
    /// connection, then aborts what remains. The server is unusable afterwards.
    pub async fn shutdown(&self) {
        self.shared().shutdown().await;
    }
}

fn rv_of(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0)
}
