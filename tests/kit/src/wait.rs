//! Bounded waits: poll a condition until it holds or a bound passes, then fail saying
//! what was awaited.

use std::time::{Duration, Instant};

/// Upper bound of an ordinary wait in the tests (a condition that takes longer is a bug,
/// even on a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(20);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(5);

/// Polls `condition` until it holds or `timeout` passes; panics with `what`.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Like [`wait_for`] with an async condition.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}
