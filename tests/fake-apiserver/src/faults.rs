//! Fault injection: dropped/truncated watches, error responses, hangs and refused connections.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::server::{Shared, lock};

/// A pending "fail the next n requests" instruction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailSpec {
    pub remaining: usize,
    pub status: u16,
    pub retry_after: Option<u32>,
}

/// Fault flags read by the serving code.
pub(crate) struct FaultState {
    pub truncate_next: AtomicBool,
    pub fail: Mutex<Option<FailSpec>>,
    pub hang: watch::Sender<bool>,
    pub refusing: AtomicBool,
    pub expire_resumes: AtomicBool,
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            truncate_next: AtomicBool::new(false),
            fail: Mutex::new(None),
            hang: watch::Sender::new(false),
            refusing: AtomicBool::new(false),
            expire_resumes: AtomicBool::new(false),
        }
    }
}

impl FaultState {
    /// Consumes one injected failure, if any is pending: `(status, retry_after)`.
    pub(crate) fn take_failure(&self) -> Option<(u16, Option<u32>)> {
        let mut f = lock(&self.fail);
        let spec = f.as_mut()?;
        spec.remaining -= 1;
        let out = (spec.status, spec.retry_after);
        if spec.remaining == 0 {
            *f = None;
        }
        Some(out)
    }

    /// Resolves once the server is not hanging.
    pub(crate) async fn wait_not_hanging(&self) {
        let mut rx = self.hang.subscribe();
        let _ = rx.wait_for(|h| !*h).await;
    }
}

/// Fault-injection controls of a [`crate::FakeApiServer`]; obtain with
/// [`crate::FakeApiServer::faults`]. All methods are thread-safe.
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("addr", &self.shared.addr).finish()
    }
}

impl Faults {
    /// Ends every open watch stream now with a clean end of the chunked body (as when the
    /// API server closes a watch). Clients are expected to resume from their last rv.
    pub fn drop_watches(&self) {
        self.shared.store().drop_watchers();
    }

    /// The next event written on any watch is cut half-way and the connection is aborted
    /// (no terminating chunk), simulating a broken connection mid-event.
    pub fn truncate_next_watch_event(&self) {
        self.shared.faults.truncate_next.store(true, SeqCst);
    }

    /// The next `n` resource requests (list, watch, get and writes; not discovery/`/version`)
    /// are answered with HTTP `status` and a matching `Status` body (500 InternalError,
    /// 503 ServiceUnavailable, 429 TooManyRequests, ...), with a `Retry-After` header when
    /// `retry_after` is given. `n == 0` clears a pending instruction.
    pub fn fail_requests(&self, n: usize, status: u16, retry_after: Option<u32>) {
        *lock(&self.shared.faults.fail) = (n > 0).then_some(FailSpec { remaining: n, status, retry_after });
    }

    /// While `true`, requests get no response at all (new requests hang, open watches stop
    /// sending); setting `false` releases them.
    pub fn set_hang(&self, hang: bool) {
        self.shared.faults.hang.send_replace(hang);
    }

    /// "API down": `true` closes the listening socket (connects fail with ECONNREFUSED) and
    /// aborts all open connections and watches; `false` re-binds the same port
    /// (SO_REUSEADDR, retried for up to ~2.5 s). Idempotent.
    pub async fn set_refuse(&self, refuse: bool) -> std::io::Result<()> {
        let _guard = self.shared.listener_lock.lock().await;
        let was = self.shared.faults.refusing.swap(refuse, SeqCst);
        match (was, refuse) {
            (false, true) => self.shared.close_listener_and_conns().await,
            (true, false) => {
                if let Err(e) = self.shared.rebind().await {
                    self.shared.faults.refusing.store(true, SeqCst);
                    return Err(e);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// While `true`, every watch that resumes from a numeric resourceVersion gets the
    /// `410 Expired` ERROR event, forcing clients to relist.
    pub fn set_expire_all_watch_resumes(&self, expire: bool) {
        self.shared.faults.expire_resumes.store(expire, SeqCst);
    }

    /// Pushes one BOOKMARK (at each watch's latest rv) to every open watch now, regardless
    /// of the periodic interval (still only on watches with `allowWatchBookmarks=true`).
    pub fn send_bookmarks(&self) {
        self.shared.store().broadcast_bookmark();
    }
}
