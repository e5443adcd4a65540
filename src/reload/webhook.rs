//! HTTP reload: call each `--webhook-url` (e.g. Prometheus `/-/reload`), `http://` or
//! `https://`, expect 2xx (or `--webhook-status-code`), retry with jittered exponential
//! backoff. Credentials in the URL become a Basic header, headers from
//! `--webhook-header-file` are added; neither is ever logged.

pub(crate) mod headers;

use super::Failure;
use super::Settings;
use crate::snapshot::ContentHash;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// First retry delay; doubles each attempt (jittered), capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Header carrying the snapshot hash, so the app can log what it reloaded.
pub(crate) const HASH_HEADER: &str = "x-configsnap-hash";

/// A pooled HTTP/1 client for webhooks and verification.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Client ===

impl Client {
    /// A client with a small connection pool, for `http://` and `https://` URLs.
    ///
    /// TLS trusts the bundled Mozilla roots (what distroless ships too), or, when
    /// `SSL_CERT_FILE` or `SSL_CERT_DIR` is set (e.g. to a mounted private CA), the
    /// certificates found there.
    #[must_use]
    pub(crate) fn new() -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.enforce_http(false);
        let provider = || std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let custom_roots =
            std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if custom_roots {
            builder.with_provider_and_native_roots(provider()).unwrap_or_else(|error| {
                tracing::warn!(%error, "no certificates in SSL_CERT_FILE/SSL_CERT_DIR; using the bundled roots");
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(provider())
                    .expect("ring must support the default TLS versions")
            })
        } else {
            builder
                .with_provider_and_webpki_roots(provider())
                .expect("ring must support the default TLS versions")
        };
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        Self { inner }
    }

    /// Calls `url` until it answers 2xx (or the `--webhook-status-code`) or the retries are
    /// spent. The header file is read at each attempt (a rotated token is picked up).
    pub(crate) async fn deliver(
        &self,
        url: &Uri,
        settings: &Settings,
        hash: ContentHash,
    ) -> Result<(), Failure> {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let extra = match &settings.webhook_header_file {
                Some(path) => headers::read(path).map_err(|e| Failure::unreachable(e.to_string())),
                None => Ok(Vec::new()),
            };
            let result = match extra {
                Ok(extra) => {
                    let call =
                        Call { method: settings.webhook_method.clone(), hash: Some(hash), extra: &extra };
                    self.exchange(url, call, settings.webhook_status, settings.webhook_timeout).await
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(error) if attempt > settings.webhook_retries => {
                    let message =
                        format!("{} after {attempt} attempts: {error}", super::redact_url(&url.to_string()));
                    return Err(Failure { message, refused: error.refused });
                }
                Err(error) => {
                    tracing::debug!(url = %super::redact_url(&url.to_string()), attempt, %error, "webhook failed; retrying");
                    tokio::time::sleep(crate::jitter::jitter(delay)).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One request; `Ok` on a 2xx answer within `timeout`.
    pub(crate) async fn call(
        &self,
        method: hyper::Method,
        url: &Uri,
        hash: Option<ContentHash>,
        timeout: Duration,
    ) -> Result<(), Failure> {
        self.exchange(url, Call { method, hash, extra: &[] }, None, timeout).await
    }

    /// One request; `Ok` when the status is `expect` (any 2xx when `None`) within `timeout`.
    /// Another status is a refusal (the app answered no); anything else means unreachable.
    async fn exchange(
        &self,
        url: &Uri,
        call: Call<'_>,
        expect: Option<u16>,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let (uri, authorization) = split_credentials(url).map_err(Failure::unreachable)?;
        let mut request = hyper::Request::builder()
            .method(call.method)
            .uri(uri)
            .header("user-agent", concat!("configsnap/", env!("CARGO_PKG_VERSION")));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(hash) = call.hash {
            request = request.header(HASH_HEADER, hash.to_string());
        }
        for (name, value) in call.extra {
            request = request.header(name, value);
        }
        let request =
            request.body(Empty::new()).map_err(|e| Failure::unreachable(format!("bad request: {e}")))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| Failure::unreachable(format!("request failed: {}", with_causes(&e))))?;
            let status = response.status();
            // Drain the body so the connection can be reused.
            let _ = response.into_body().collect().await;
            let good = expect.map_or_else(|| status.is_success(), |code| status.as_u16() == code);
            if good { Ok(()) } else { Err(Failure::refused(format!("answered {status}"))) }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(Failure::unreachable(format!("no answer within {timeout:?}"))))
    }
}

/// What one request carries besides its URL.
struct Call<'a> {
    method: hyper::Method,
    hash: Option<ContentHash>,
    extra: &'a [(hyper::header::HeaderName, hyper::header::HeaderValue)],
}

/// The URL without `user:password@`, and the Basic authorization header it implies.
fn split_credentials(url: &Uri) -> Result<(Uri, Option<String>), String> {
    let Some(authority) = url.authority() else {
        return Ok((url.clone(), None));
    };
    let Some((userinfo, host)) = authority.as_str().rsplit_once('@') else {
        return Ok((url.clone(), None));
    };
    let mut parts = url.clone().into_parts();
    parts.authority = Some(host.parse().map_err(|e| format!("bad host: {e}"))?);
    let uri = Uri::from_parts(parts).map_err(|e| format!("bad URL: {e}"))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(percent_decode(userinfo));
    Ok((uri, Some(format!("Basic {encoded}"))))
}

/// Decodes `%XX` escapes (userinfo in a URL is percent-encoded); bad escapes stay as is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// `error` and every cause under it (`client error (Connect): … : invalid peer
/// certificate: UnknownIssuer`), so a log line says why a call failed.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "webhook/tests.rs"]
mod tests;
