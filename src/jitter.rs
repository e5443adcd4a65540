//! Random spread for retry delays, shared by every retry loop (watch backoff, webhook
//! retries, write retries), so many sidecars never retry in step.

use std::time::Duration;

/// A delay between 50 % and 100 % of `delay` ("equal jitter": spread, yet never longer).
#[must_use]
pub(crate) fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000), "{d:?}");
        }
    }
}
