//! The idle pipeline's timers, under paused tokio time.

use super::{REPROBE, reprobe_due, until};
use std::time::Duration;
use tokio::time::Instant;

#[test]
fn a_dir_that_refuses_writes_is_reprobed_thirty_seconds_later_and_a_writable_one_never() {
    let now = Instant::now();
    assert_eq!(REPROBE, Duration::from_secs(30));
    assert_eq!(reprobe_due(true, now), Some(now + REPROBE));
    assert_eq!(reprobe_due(false, now), None);
}

#[tokio::test(start_paused = true)]
async fn until_resolves_at_its_instant_not_before_and_never_without_one() {
    let due = Instant::now() + Duration::from_secs(5);
    let early = tokio::time::timeout(Duration::from_millis(4_999), until(Some(due))).await;
    assert!(early.is_err(), "resolved before its instant");
    until(Some(due)).await;
    assert!(Instant::now() >= due);
    let never = tokio::time::timeout(Duration::from_secs(3_600), until(None)).await;
    assert!(never.is_err(), "resolved without an instant");
}
