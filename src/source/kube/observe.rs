//! A tower layer on the kube client that reports each successfully opened watch, so the
//! status turns fresh as soon as the API answers again (an idle resumed watch emits no
//! event that kube-runtime would surface).

use futures::future::BoxFuture;
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

type Callback = Arc<dyn Fn() + Send + Sync>;

/// Wraps the client's service with [`WatchConnected`].
#[derive(Clone)]
pub struct WatchConnectedLayer {
    on_connected: Callback,
}

impl WatchConnectedLayer {
    /// Calls `on_connected` whenever a watch request is answered with a 2xx status.
    pub fn new(on_connected: impl Fn() + Send + Sync + 'static) -> Self {
        Self { on_connected: Arc::new(on_connected) }
    }
}

impl<S> Layer<S> for WatchConnectedLayer {
    type Service = WatchConnected<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WatchConnected { inner, on_connected: Arc::clone(&self.on_connected) }
    }
}

/// The service made by [`WatchConnectedLayer`].
#[derive(Clone)]
pub struct WatchConnected<S> {
    inner: S,
    on_connected: Callback,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WatchConnected<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let is_watch = request.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        let on_connected = Arc::clone(&self.on_connected);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if is_watch && matches!(&response, Ok(r) if r.status().is_success()) {
                on_connected();
            }
            response
        })
    }
}
