//! A tower layer on one watch loop's client: it hears what kube's errors drop (the
//! `Retry-After` header), tells the loop's [`Probe`] when a watch has proved itself, and
//! ends a request or a watch that stays silent (no headers, no event, no bookmark) for the
//! idle timeout, so a frozen connection is replaced instead of waited on for minutes.

use super::probe::Probe;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// A watch that is still open this long after its `200`, without an ERROR event, counts
/// as healthy even before its first event (an idle namespace sends only bookmarks). Long
/// enough for the API server's immediate `410 Expired` to arrive first. Not after a stall
/// (see [`Probe::trusts_quiet_watch`]).
const PROBATION: Duration = Duration::from_secs(1);

/// Why the layer ended a request.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// No response headers within the idle timeout.
    #[error("failed to get an answer from the API server within {}s", .0.as_secs())]
    NoAnswer(Duration),
    /// A response body (a watch) sent nothing, not even a bookmark, within the idle timeout.
    #[error("failed to hear anything, not even a bookmark, for {}s", .0.as_secs())]
    Silent(Duration),
}

/// Wraps the client's service with [`Observed`].
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    probe: Arc<Probe>,
    idle: Duration,
}

impl ObserveLayer {
    /// Reports to `probe`; ends requests silent for `idle`.
    pub(crate) fn new(probe: Arc<Probe>, idle: Duration) -> Self {
        Self { probe, idle }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner, probe: Arc::clone(&self.probe), idle: self.idle }
    }
}

/// The service made by [`ObserveLayer`].
#[derive(Clone)]
pub(crate) struct Observed<S> {
    inner: S,
    probe: Arc<Probe>,
    idle: Duration,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observed<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<IdleBody<ResBody>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let is_watch = request.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        let (probe, idle) = (Arc::clone(&self.probe), self.idle);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = tokio::time::timeout(idle, response)
                .await
                .map_err(|_| Box::new(Error::NoAnswer(idle)))?
                .map_err(Into::into)?;
            if let Some(delay) = retry_after(&response) {
                probe.retry_after(delay);
            }
            let on_trial = (is_watch && response.status().is_success()).then_some(probe);
            Ok(response.map(|body| IdleBody::new(body, idle, on_trial)))
        })
    }
}

/// The `Retry-After` of a 429 or 503 answer, in seconds (the API server's form).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A response body that fails with [`Error::Silent`] when no frame arrives for the idle
/// timeout (and then ends, dropping the connection), and that reports a watch healthy once
/// it delivered a frame that is not an ERROR event, or stayed open for [`PROBATION`].
pub(crate) struct IdleBody<B> {
    inner: Option<B>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    trial: Option<Trial>,
}

/// A watch not yet known healthy: whom to tell, and when quiet is enough (if ever).
struct Trial {
    probe: Arc<Probe>,
    probation: Option<Pin<Box<Sleep>>>,
}

// === impl IdleBody ===

impl<B> IdleBody<B> {
    fn new(inner: B, idle: Duration, on_trial: Option<Arc<Probe>>) -> Self {
        let trial = on_trial.map(|probe| {
            let probation = probe.trusts_quiet_watch().then(|| Box::pin(tokio::time::sleep(PROBATION)));
            Trial { probe, probation }
        });
        Self { inner: Some(inner), idle, timer: Box::pin(tokio::time::sleep(idle)), trial }
    }

    /// Ends the trial: `passed` reports the watch healthy.
    fn judge(&mut self, passed: bool) {
        if let Some(trial) = self.trial.take()
            && passed
        {
            trial.probe.healthy();
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                let is_error = frame.data_ref().is_some_and(|data| is_error_event(data));
                this.judge(!is_error);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.judge(false);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.judge(false);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(probation) = this.trial.as_mut().and_then(|t| t.probation.as_mut())
                    && probation.as_mut().poll(cx).is_ready()
                {
                    this.judge(true);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.inner = None;
                    return Poll::Ready(Some(Err(Box::new(Error::Silent(this.idle)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// True when a watch frame carries an ERROR event (`{"type":"ERROR",...}`).
fn is_error_event(data: &[u8]) -> bool {
    data.windows(7).any(|w| w == b"\"ERROR\"")
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
