//! Retry delays of the watch: exponential, jittered within the cap.
//!
//! kube's default (0.8 s doubling to 30 s) adds its jitter *on top* of each delay, so a
//! sidecar may wait up to a minute after the API returns. Here each delay is drawn in
//! `[½, 1]` of its step ("equal jitter"): reconnects of a fleet still spread out, and no
//! sidecar waits longer than [`MAX_DELAY`] once the API is back.

use kube::runtime::utils::Backoff;
use std::time::Duration;
use tokio::time::Instant;

/// First step.
pub const FIRST_DELAY: Duration = Duration::from_millis(800);
/// Largest delay: the longest a sidecar waits after the API returns.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// The watcher reports progress (even an `Init` between two failing lists), which asks for
/// a reset; honour it only after this long without a retry, as kube's default does, so a
/// failing list still backs off.
const RESET_AFTER: Duration = Duration::from_secs(120);

/// The watch's backoff policy.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    step: Duration,
    last_retry: Option<Instant>,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { step: FIRST_DELAY, last_retry: None }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let step = self.step;
        self.step = (step * 2).min(MAX_DELAY);
        self.last_retry = Some(Instant::now());
        Some(crate::jitter::jitter(step))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        if self.last_retry.is_none_or(|at| at.elapsed() >= RESET_AFTER) {
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_grow_stay_within_the_cap_and_reset_only_after_a_quiet_period() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = backoff.by_ref().take(12).collect();
        assert!(delays[0] >= FIRST_DELAY / 2 && delays[0] <= FIRST_DELAY, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= MAX_DELAY), "{delays:?}");
        assert!(delays[11] >= MAX_DELAY / 2, "{delays:?}");
        backoff.reset();
        assert!(backoff.next().expect("delay") >= MAX_DELAY / 2, "a reset right after a retry is ignored");
        tokio::time::advance(RESET_AFTER).await;
        backoff.reset();
        assert!(backoff.next().expect("delay") <= FIRST_DELAY, "a reset after a quiet period starts over");
    }
}
