//! What one watch loop learns about its own health, shared by the HTTP layer that sees its
//! requests ([`super::layer`]), its backoff ([`super::WatchBackoff`]) and the loop itself:
//! a `Retry-After` the server asked for, and whether the watch has been healthy since the
//! last retry. Status changes are reported as [`Health`](crate::source::Health) under the loop's name, so one loop's
//! recovery never hides another loop's failure.

use crate::source::{Health, HealthReporter};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The failure reason of a watch that went silent.
pub(crate) const STALLED: &str = "stalled";

/// Health of one watch loop.
#[derive(Debug)]
pub(crate) struct Probe {
    watch: &'static str,
    reporter: HealthReporter,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The server's `Retry-After` from the last throttled or unavailable answer.
    retry_after: Option<Duration>,
    /// Healthy since the backoff last drew a delay: the next delay starts over.
    healthy_since_retry: bool,
    /// A failure was reported and no recovery since.
    failing: bool,
    /// The loop was reported current at least once.
    synced: bool,
    /// The last failure was a stall: a quiet reopened watch proves nothing.
    stalled: bool,
}

// === impl Probe ===

impl Probe {
    /// The probe of the loop named `watch` (as on `/healthz`, e.g. "ConfigMap watch").
    #[must_use]
    pub(crate) fn new(watch: &'static str, reporter: HealthReporter) -> Arc<Self> {
        Arc::new(Self { watch, reporter, state: Mutex::default() })
    }

    /// The server answered 429 or 503 with `Retry-After: delay`.
    pub(crate) fn retry_after(&self, delay: Duration) {
        self.lock().retry_after = Some(delay);
    }

    /// The watch is current: its list completed, an event arrived, or a (re)opened watch
    /// proved itself. Resets the backoff and, after a failure, clears the loop's fault.
    pub(crate) fn healthy(&self) {
        let report = {
            let mut state = self.lock();
            state.healthy_since_retry = true;
            state.retry_after = None;
            let report = state.failing || !state.synced;
            state.failing = false;
            state.stalled = false;
            state.synced = true;
            report
        };
        if report {
            self.reporter.report(Health::WatchHealthy(self.watch));
        }
    }

    /// A request failed: reported at once (status, metric, rate-limited log).
    pub(crate) fn failed(&self, reason: &'static str, cause: &str) {
        {
            let mut state = self.lock();
            state.failing = true;
            state.stalled = reason == STALLED;
        }
        self.reporter.report(Health::WatchFailed { watch: self.watch, reason, cause });
    }

    /// Whether a reopened watch that stays quiet (no ERROR) may count as healthy: not after
    /// a stall, when the same silence is the fault; then only an event or bookmark counts.
    pub(super) fn trusts_quiet_watch(&self) -> bool {
        !self.lock().stalled
    }

    /// For the backoff drawing its next delay: whether the watch was healthy since the last
    /// draw (start over), and the server's `Retry-After`, both consumed.
    pub(super) fn take_for_retry(&self) -> (bool, Option<Duration>) {
        let mut state = self.lock();
        (std::mem::take(&mut state.healthy_since_retry), state.retry_after.take())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
