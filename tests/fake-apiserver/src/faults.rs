//! Fault injection: dropped/truncated/frozen watches, error responses (counted or for a
//! time window), hangs and refused connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::server::{Shared, lock};

/// A pending "fail the next n requests" instruction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailSpec {
    pub remaining: usize,
    pub status: u16,
    pub retry_after: Option<u32>,
}

/// A pending "fail every request until an instant" instruction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailWindow {
    pub until: Instant,
    pub status: u16,
    pub retry_after: Option<u32>,
}

/// Fault flags read by the serving code.
pub(crate) struct FaultState {
    pub truncate_next: AtomicBool,
    pub fail: Mutex<Option<FailSpec>>,
    pub fail_window: Mutex<Option<FailWindow>>,
    /// Bumped by `freeze_watches`: a watch opened in an earlier epoch is frozen.
    pub freeze_epoch: AtomicU64,
    /// While set, every new watch is frozen once its headers are sent.
    pub freeze_new: AtomicBool,
    pub hang: watch::Sender<bool>,
    pub refusing: AtomicBool,
    pub expire_resumes: AtomicBool,
    /// Status every event write answers with (0: none).
    pub event_status: std::sync::atomic::AtomicU16,
    /// Milliseconds every event write waits before it is answered.
    pub event_delay_ms: AtomicU64,
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            truncate_next: AtomicBool::new(false),
            fail: Mutex::new(None),
            fail_window: Mutex::new(None),
            freeze_epoch: AtomicU64::new(0),
            freeze_new: AtomicBool::new(false),
            hang: watch::Sender::new(false),
            refusing: AtomicBool::new(false),
            expire_resumes: AtomicBool::new(false),
            event_status: std::sync::atomic::AtomicU16::new(0),
            event_delay_ms: AtomicU64::new(0),
        }
    }
}

impl FaultState {
    /// Consumes one injected failure, if any is pending: `(status, retry_after)`. An open
    /// failure window answers first and consumes nothing.
    pub(crate) fn take_failure(&self) -> Option<(u16, Option<u32>)> {
        {
            let mut window = lock(&self.fail_window);
            match *window {
                Some(w) if Instant::now() < w.until => return Some((w.status, w.retry_after)),
                Some(_) => *window = None,
                None => {}
            }
        }
        let mut f = lock(&self.fail);
        let spec = f.as_mut()?;
        spec.remaining -= 1;
        let out = (spec.status, spec.retry_after);
        if spec.remaining == 0 {
            *f = None;
        }
        Some(out)
    }

    /// The epoch a watch opened now belongs to, and whether it starts frozen.
    pub(crate) fn watch_epoch(&self) -> (u64, bool) {
        (self.freeze_epoch.load(SeqCst), self.freeze_new.load(SeqCst))
    }

    /// True when a watch opened in `epoch` must send nothing more.
    pub(crate) fn is_frozen(&self, epoch: u64) -> bool {
        self.freeze_epoch.load(SeqCst) > epoch
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
        self.shared.drop_all_watchers();
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

    /// Every resource request (as for [`Faults::fail_requests`]) is answered with HTTP
    /// `status` and a matching `Status` body until `until` (e.g. 503 for the 30 s of an
    /// outage), with a `Retry-After` header when `retry_after` is given. Open watches are
    /// not touched (combine with [`Faults::drop_watches`]). Takes precedence over a pending
    /// `fail_requests`, which resumes counting once the window closes; an instant in the
    /// past clears the window.
    pub fn fail_until(&self, until: Instant, status: u16, retry_after: Option<u32>) {
        *lock(&self.shared.faults.fail_window) = Some(FailWindow { until, status, retry_after });
    }

    /// Freezes every open watch: from now on it sends nothing (no event, no bookmark) and
    /// never closes, not even at its timeout, like a connection whose peer vanished without
    /// a FIN. Only the client dropping the connection ends it. New watches are not affected.
    pub fn freeze_watches(&self) {
        self.shared.faults.freeze_epoch.fetch_add(1, SeqCst);
    }

    /// While `true`, every new watch is answered `200` with its headers and then frozen as by
    /// [`Faults::freeze_watches`]; `false` lets later watches work again (those opened
    /// meanwhile stay frozen).
    pub fn set_freeze_new_watches(&self, freeze: bool) {
        self.shared.faults.freeze_new.store(freeze, SeqCst);
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

    /// Every Event write (create, patch) answers `status` (403: the Forbidden an RBAC
    /// without events gives); `None` lets them through again. Event reads are not touched,
    /// and the generic [`Faults::fail_requests`] never applies to events.
    pub fn set_event_writes_status(&self, status: Option<u16>) {
        self.shared.faults.event_status.store(status.unwrap_or(0), SeqCst);
    }

    /// Every Event write waits `delay` before it is answered (a slow API server).
    pub fn set_event_writes_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.faults.event_delay_ms.store(ms, SeqCst);
    }

    /// Pushes one BOOKMARK (at each watch's latest rv) to every open watch now, regardless
    /// of the periodic interval (still only on watches with `allowWatchBookmarks=true`).
    pub fn send_bookmarks(&self) {
        self.shared.store().broadcast_bookmark();
    }
}
