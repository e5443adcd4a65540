//! The debounce window: wait until the sources have been quiet for `quiet`, but never
//! longer than `max_wait` after the first change, so a constant stream still gets swapped.

use crate::source::Change;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Debounce settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    /// Quiet window after the last change (zero: no waiting at all).
    pub quiet: Duration,
    /// Longest wait after the first change.
    pub(crate) max_wait: Duration,
}

impl Debounce {
    /// Waits for the burst that began at `first_change` to settle. Returns early if the
    /// sender is gone.
    pub(crate) async fn settle(&self, changes: &mut watch::Receiver<Change>, first_change: Instant) {
        if self.quiet.is_zero() {
            return;
        }
        let deadline = first_change + self.max_wait;
        loop {
            let seen = changes.borrow_and_update().generation;
            let quiet_end = (Instant::now() + self.quiet).min(deadline);
            tokio::select! {
                () = tokio::time::sleep_until(quiet_end) => return,
                changed = changes.wait_for(|c| c.generation > seen) => {
                    if changed.is_err() || Instant::now() >= deadline {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Notifier;

    const SETTINGS: Debounce =
        Debounce { quiet: Duration::from_millis(100), max_wait: Duration::from_secs(1) };

    #[tokio::test(start_paused = true)]
    async fn a_single_change_waits_one_quiet_window() {
        let (_notifier, mut rx) = Notifier::new(0);
        let start = Instant::now();
        SETTINGS.settle(&mut rx, start).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn each_change_restarts_the_quiet_window() {
        let (notifier, mut rx) = Notifier::new(0);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                notifier.changed();
            }
            notifier
        });
        SETTINGS.settle(&mut rx, start).await;
        // Last change at 150 ms, then 100 ms of quiet.
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        drop(sender.await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_constant_stream_is_cut_at_max_wait() {
        let (notifier, mut rx) = Notifier::new(0);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                notifier.changed();
            }
        });
        SETTINGS.settle(&mut rx, start).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        sender.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_quiet_returns_at_once() {
        let (_notifier, mut rx) = Notifier::new(0);
        let start = Instant::now();
        let none = Debounce { quiet: Duration::ZERO, max_wait: Duration::ZERO };
        none.settle(&mut rx, start).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
