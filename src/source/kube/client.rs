//! One watch loop's Kubernetes client: kube's stack (base URI, auth, extra headers, TLS)
//! without its retry layer and its per-failure ERROR log. kube's retry absorbed 429, 503
//! and 504 out of sight (the status said fresh while the API failed) and stacked its own
//! delays on the watch backoff; here each failed request reaches the watch loop at once,
//! which reports it and retries under one policy ([`super::WatchBackoff`]).

use super::layer::ObserveLayer;
use super::probe::Probe;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::Client;
use kube::client::{Body, ConfigExt};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;

/// A client whose requests `probe` observes, ending any silent for `idle`.
pub(super) fn build(config: &kube::Config, probe: Arc<Probe>, idle: Duration) -> Result<Client, kube::Error> {
    if let Some(proxy_url) = &config.proxy_url {
        // kube's own stack refuses proxies too without its proxy features (not enabled).
        return Err(kube::Error::ProxyProtocolUnsupported { proxy_url: Box::new(proxy_url.clone()) });
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    let https = config.rustls_https_connector_with_connector(http)?;
    let hyper: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(ObserveLayer::new(probe, idle))
        .service(hyper);
    Ok(Client::new(service, config.default_namespace.clone()))
}
