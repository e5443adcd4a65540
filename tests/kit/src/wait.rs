//! Bounded waits: poll a condition until it holds or a bound passes, then fail saying
//! what was awaited.

use std::time::{Duration, Instant};

/// Upper bound of an ordinary wait in the tests (a condition that takes longer is a bug,
/// even on a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(20);

/// How often a condition is polled by [`wait_for`] and [`wait_until`].
const POLL: Duration = Duration::from_millis(5);

/// Polls `condition` every `every` until it holds (the instant it held) or `timeout`
/// passes (`None`): the one polling loop, for callers that handle a timeout themselves
/// (benchmarks measuring when, examples reporting an error).
pub async fn poll(
    timeout: Duration,
    every: Duration,
    mut condition: impl FnMut() -> bool,
) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `condition` until it holds or `timeout` passes; panics with `what`.
pub async fn wait_for(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    if poll(timeout, POLL, condition).await.is_none() {
        panic!("timed out after {timeout:?} waiting for: {what}");
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
