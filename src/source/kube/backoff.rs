//! Retry delays of one watch loop: exponential, jittered within the cap, at least the
//! server's `Retry-After`, and back to the first step once the watch was healthy again.
//!
//! kube's default (0.8 s doubling to 30 s) adds its jitter *on top* of each delay, so a
//! sidecar may wait up to a minute after the API returns. Here each delay is drawn in
//! `[½, 1]` of its step ("equal jitter"): reconnects of a fleet still spread out, and no
//! sidecar waits longer than [`MAX_DELAY`] once the API is back.
//!
//! The watcher asks for a reset on any progress it reports, even the `Init` it emits
//! before each attempt to list, so a failing list would never back off; that request is
//! ignored. The reset comes from the [`Probe`] instead, which hears when the watch is
//! really healthy (a completed list, an event, a watch that proved itself): a blip after
//! a recovered outage then waits one first step, not the step the outage had reached.

use super::probe::Probe;
use kube::runtime::utils::Backoff;
use std::sync::Arc;
use std::time::Duration;

/// First step.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(800);
/// Largest delay, `Retry-After` included: the longest a sidecar waits after the API returns.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);

/// The backoff policy of one watch loop.
#[derive(Debug, Clone)]
pub(crate) struct WatchBackoff {
    step: Duration,
    probe: Arc<Probe>,
}

// === impl WatchBackoff ===

impl WatchBackoff {
    /// A policy starting at [`FIRST_DELAY`], reset and bounded by what `probe` hears.
    #[must_use]
    pub(crate) fn new(probe: Arc<Probe>) -> Self {
        Self { step: FIRST_DELAY, probe }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let (healthy, retry_after) = self.probe.take_for_retry();
        if healthy {
            self.step = FIRST_DELAY;
        }
        let step = self.step;
        self.step = (step * 2).min(MAX_DELAY);
        let delay = crate::jitter::jitter(step).max(retry_after.unwrap_or_default());
        Some(delay.min(MAX_DELAY))
    }
}

impl Backoff for WatchBackoff {
    /// Ignored: see the module docs; the [`Probe`] resets.
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Arc<Probe> {
        Probe::new("ConfigMap watch", crate::source::HealthReporter::discard())
    }

    #[test]
    fn delays_grow_within_the_cap_and_ignore_the_watchers_reset() {
        let mut backoff = WatchBackoff::new(probe());
        let mut delays: Vec<Duration> = backoff.by_ref().take(6).collect();
        backoff.reset();
        delays.extend(backoff.by_ref().take(6));
        assert!(delays[0] >= FIRST_DELAY / 2 && delays[0] <= FIRST_DELAY, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= MAX_DELAY), "{delays:?}");
        assert!(delays[6] >= MAX_DELAY / 2, "the watcher's reset is ignored: {delays:?}");
        assert!(delays[11] >= MAX_DELAY / 2, "{delays:?}");
    }

    #[test]
    fn a_healthy_watch_starts_the_next_retry_over() {
        let probe = probe();
        let mut backoff = WatchBackoff::new(Arc::clone(&probe));
        assert!(backoff.by_ref().take(10).last().expect("delay") >= MAX_DELAY / 2);
        probe.healthy();
        assert!(backoff.next().expect("delay") <= FIRST_DELAY, "a blip after recovery waits one first step");
        assert!(backoff.next().expect("delay") <= FIRST_DELAY * 2, "and grows again from there");
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_the_maximum() {
        let table = [(Duration::from_secs(5), Duration::from_secs(5)), (Duration::from_secs(120), MAX_DELAY)];
        for (asked, expected) in table {
            let probe = probe();
            let mut backoff = WatchBackoff::new(Arc::clone(&probe));
            probe.retry_after(asked);
            assert_eq!(backoff.next(), Some(expected), "Retry-After {asked:?}");
            assert!(backoff.next().expect("delay") <= FIRST_DELAY * 2, "consumed by one retry");
        }
    }
}
