//! Shared server state, listener/connection lifecycle and counters.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::FaultState;
use crate::store::Store;
use crate::{Options, Stats};

/// Locks a std mutex, ignoring poisoning (a panicking test must not cascade).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Request counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub lists: AtomicU64,
    pub watches: AtomicU64,
    pub watch_resumes: AtomicU64,
    pub gets: AtomicU64,
    pub writes: AtomicU64,
    pub errors_injected: AtomicU64,
    pub requests_total: AtomicU64,
    pub open_watches: AtomicU64,
    pub lists_by_plural: Mutex<BTreeMap<String, u64>>,
    pub watches_by_plural: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub(crate) fn bump(map: &Mutex<BTreeMap<String, u64>>, plural: &str) {
        *lock(map).entry(plural.to_string()).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            lists: self.lists.load(Relaxed),
            watches: self.watches.load(Relaxed),
            watch_resumes: self.watch_resumes.load(Relaxed),
            gets: self.gets.load(Relaxed),
            writes: self.writes.load(Relaxed),
            errors_injected: self.errors_injected.load(Relaxed),
            requests_total: self.requests_total.load(Relaxed),
            open_watches: self.open_watches.load(Relaxed),
            lists_by_plural: lock(&self.lists_by_plural).clone(),
            watches_by_plural: lock(&self.watches_by_plural).clone(),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.lists,
            &self.watches,
            &self.watch_resumes,
            &self.gets,
            &self.writes,
            &self.errors_injected,
            &self.requests_total,
        ] {
            c.store(0, Relaxed);
        }
        lock(&self.lists_by_plural).clear();
        lock(&self.watches_by_plural).clear();
    }
}

#[derive(Default)]
struct Tasks {
    accept: Option<JoinHandle<()>>,
    conns: HashMap<u64, JoinHandle<()>>,
    next: u64,
}

/// Everything the serving tasks share. Tasks hold `Arc<Shared>`; the public handle's Drop
/// aborts them, which breaks the cycle.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    /// Events (`events.k8s.io/v1`), apart: their writes must not evict the watch history
    /// of ConfigMaps and Secrets nor move their resourceVersions.
    pub events: Mutex<Store>,
    pub opts: Options,
    pub faults: FaultState,
    pub stats: Counters,
    pub addr: SocketAddr,
    tasks: Mutex<Tasks>,
    shutdown: watch::Sender<bool>,
    /// Serializes listener close/rebind.
    pub listener_lock: tokio::sync::Mutex<()>,
}

/// Binds a loopback listener with SO_REUSEADDR so the same port can be re-bound later.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Shared {
    pub(crate) fn new(opts: Options, addr: SocketAddr) -> Self {
        Self {
            store: Mutex::new(Store::new(opts.initial_resource_version, opts.history_capacity)),
            events: Mutex::new(Store::new(opts.initial_resource_version, opts.history_capacity)),
            opts,
            faults: FaultState::default(),
            stats: Counters::default(),
            addr,
            tasks: Mutex::default(),
            shutdown: watch::Sender::new(false),
            listener_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// The store that holds `plural`.
    pub(crate) fn store_for(&self, plural: &str) -> MutexGuard<'_, Store> {
        if plural == "events" { lock(&self.events) } else { lock(&self.store) }
    }

    /// Ends every open watch, of every store.
    pub(crate) fn drop_all_watchers(&self) {
        self.store().drop_watchers();
        lock(&self.events).drop_watchers();
    }

    /// Starts the accept loop on `listener`.
    pub(crate) fn spawn_accept(self: &Arc<Self>, listener: TcpListener) {
        let shared = self.clone();
        let handle = tokio::spawn(async move {
            let mut stop = shared.shutdown.subscribe();
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        tracing::trace!(%peer, "accepted connection");
                        let _ = stream.set_nodelay(true);
                        shared.spawn_conn(stream);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        if let Some(old) = lock(&self.tasks).accept.replace(handle) {
            old.abort();
        }
    }

    fn spawn_conn(self: &Arc<Self>, stream: tokio::net::TcpStream) {
        let shared = self.clone();
        let mut tasks = lock(&self.tasks);
        tasks.next += 1;
        let id = tasks.next;
        let handle = tokio::spawn(async move {
            let svc_shared = shared.clone();
            let svc = service_fn(move |req| {
                let s = svc_shared.clone();
                async move { Ok::<_, Infallible>(crate::http::handle(s, req).await) }
            });
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            let mut stop = shared.shutdown.subscribe();
            let res = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with error");
            }
            lock(&shared.tasks).conns.remove(&id);
        });
        tasks.conns.insert(id, handle);
    }

    /// Closes the listener (connections are then refused) and aborts every connection.
    pub(crate) async fn close_listener_and_conns(&self) {
        // Stop accepting first: a connection accepted while we abort the others would
        // otherwise survive the "API down" state.
        let accept = lock(&self.tasks).accept.take();
        if let Some(h) = accept {
            h.abort();
            let _ = h.await;
        }
        let conns = std::mem::take(&mut lock(&self.tasks).conns);
        self.drop_all_watchers();
        for h in conns.values() {
            h.abort();
        }
        for h in conns.into_values() {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
    }

    /// Re-binds the original address (retrying briefly) and restarts accepting.
    pub(crate) async fn rebind(self: &Arc<Self>) -> std::io::Result<()> {
        let mut last = None;
        for _ in 0..50 {
            match bind(self.addr) {
                Ok(l) => {
                    self.spawn_accept(l);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("rebind failed")))
    }

    /// Graceful stop: end watches, stop accepting, let connections finish (≤ 2 s), abort the rest.
    pub(crate) async fn shutdown(&self) {
        self.drop_all_watchers();
        self.shutdown.send_replace(true);
        let handles: Vec<_> = {
            let mut t = lock(&self.tasks);
            t.accept.take().into_iter().chain(std::mem::take(&mut t.conns).into_values()).collect()
        };
        for mut h in handles {
            if tokio::time::timeout(Duration::from_secs(2), &mut h).await.is_err() {
                h.abort();
            }
        }
    }

    /// Immediate stop (used by Drop): abort every task.
    pub(crate) fn abort_all(&self) {
        self.shutdown.send_replace(true);
        self.drop_all_watchers();
        let mut t = lock(&self.tasks);
        if let Some(a) = t.accept.take() {
            a.abort();
        }
        for (_, h) in t.conns.drain() {
            h.abort();
        }
    }
}
