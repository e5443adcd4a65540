//! Tests of the idle timeout and the watch trial of [`IdleBody`].

use super::*;
use crate::events::Events;
use crate::status::StatusHandle;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use std::convert::Infallible;
use tokio::sync::mpsc;

type Chunks = Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>;

/// A body fed by hand, and the status its probe reports to (failing for `reason` at first).
fn failing_watch(
    reason: &'static str,
) -> (mpsc::UnboundedSender<&'static str>, IdleBody<StreamBody<Chunks>>, StatusHandle) {
    let idle = Duration::from_secs(120);
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let chunks: Chunks = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))), rx))
    }));
    let status = StatusHandle::default();
    let probe =
        Probe::new("ConfigMap watch", Events::new(Arc::default(), status.clone()).reporter().source());
    probe.failed(reason, "the ConfigMap watch failed");
    (tx, IdleBody::new(StreamBody::new(chunks), idle, Some(probe)), status)
}

fn watch_body(
    idle: Duration,
) -> (mpsc::UnboundedSender<&'static str>, IdleBody<StreamBody<Chunks>>, StatusHandle) {
    let (tx, body, status) = failing_watch("unavailable");
    let IdleBody { inner, trial, .. } = body;
    let inner = inner.expect("fresh body");
    (tx, IdleBody { inner: Some(inner), idle, timer: Box::pin(tokio::time::sleep(idle)), trial }, status)
}

fn failing(status: &StatusHandle) -> bool {
    !status.get().source_faults.is_empty()
}

#[tokio::test(start_paused = true)]
async fn a_silent_body_fails_after_the_idle_timeout_then_ends() {
    let idle = Duration::from_secs(120);
    let (tx, body, _) = watch_body(idle);
    let mut frames = body.into_data_stream();
    tx.send("{\"type\":\"BOOKMARK\"}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok());
    tokio::time::advance(idle - Duration::from_secs(1)).await;
    tx.send("{\"type\":\"ADDED\"}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok(), "each frame restarts the idle timer");
    let error = frames.next().await.expect("an error").expect_err("silent");
    assert!(matches!(error.downcast_ref::<Error>(), Some(Error::Silent(d)) if *d == idle), "{error}");
    assert!(frames.next().await.is_none(), "then the body ends");
}

#[tokio::test(start_paused = true)]
async fn a_watch_is_healthy_after_a_first_frame_that_is_not_an_error() {
    let (tx, body, status) = watch_body(Duration::from_secs(120));
    let mut frames = body.into_data_stream();
    tx.send("{\"type\":\"BOOKMARK\",\"object\":{}}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok());
    assert!(!failing(&status));
}

#[tokio::test(start_paused = true)]
async fn a_watch_whose_first_frame_is_an_error_event_is_not_healthy() {
    let (tx, body, status) = watch_body(Duration::from_secs(120));
    let mut frames = body.into_data_stream();
    tx.send("{\"type\":\"ERROR\",\"object\":{\"code\":410}}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok());
    tx.send("{\"type\":\"ADDED\"}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok());
    assert!(failing(&status), "the trial ended with the error event; the loop reports recovery itself");
}

#[tokio::test(start_paused = true)]
async fn a_quiet_watch_is_healthy_once_open_for_its_probation() {
    let (_tx, body, status) = watch_body(Duration::from_secs(120));
    let mut frames = body.into_data_stream();
    let waited = tokio::time::timeout(PROBATION * 2, frames.next()).await;
    assert!(waited.is_err(), "nothing was sent");
    assert!(!failing(&status));
}

#[tokio::test(start_paused = true)]
async fn after_a_stall_only_a_frame_proves_a_reopened_watch() {
    let (tx, body, status) = failing_watch(crate::source::kube::probe::STALLED);
    let mut frames = body.into_data_stream();
    let waited = tokio::time::timeout(PROBATION * 2, frames.next()).await;
    assert!(waited.is_err(), "nothing was sent");
    assert!(failing(&status), "quiet after a stall proves nothing");
    tx.send("{\"type\":\"BOOKMARK\"}\n").expect("open");
    assert!(frames.next().await.expect("a frame").is_ok());
    assert!(!failing(&status), "a bookmark does");
}

#[test]
fn retry_after_is_read_from_429_and_503_only() {
    let answer = |status: u16, value: &str| {
        Response::builder().status(status).header("Retry-After", value).body(()).expect("response")
    };
    assert_eq!(retry_after(&answer(429, "3")), Some(Duration::from_secs(3)));
    assert_eq!(retry_after(&answer(503, "10")), Some(Duration::from_secs(10)));
    assert_eq!(retry_after(&answer(500, "3")), None);
    assert_eq!(retry_after(&answer(429, "Wed, 21 Oct 2026 07:28:00 GMT")), None, "dates are not used");
}
