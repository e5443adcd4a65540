//! Loopback ports and a plain HTTP/1.1 GET.

use std::net::TcpListener;
use std::time::Duration;

/// A free loopback port (bound then released).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// What a GET got back.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lower-case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET over loopback: the whole response, `None` if nothing answers
/// within 5 s.
pub async fn fetch(url: &str) -> Option<Response> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = url.parse().ok()?;
    let exchange = async {
        let response = client.get(uri).await.ok()?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.ok()?
}

/// A plain HTTP/1.1 GET over loopback: status and body, `None` if nothing answers within
/// 5 s.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    fetch(url).await.map(|r| (r.status, r.body))
}
