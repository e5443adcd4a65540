//! Test helpers: a plain hyper client and a line-oriented watch reader with bounded waits.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Upper bound for any single wait in tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn request(
    c: &HttpClient,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> (u16, HeaderMap, Value) {
    let body = body.map_or_else(Bytes::new, |v| Bytes::from(serde_json::to_vec(v).unwrap()));
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let fut = async {
        let resp = c.request(req).await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, v)
    };
    tokio::time::timeout(WAIT, fut).await.expect("request timed out")
}

pub async fn get(c: &HttpClient, url: &str) -> (u16, HeaderMap, Value) {
    request(c, Method::GET, url, None).await
}

/// What the next read from a watch produced.
#[derive(Debug)]
pub enum Item {
    Event(Value),
    /// Clean end of the chunked body.
    End,
    /// The body errored (connection aborted / truncated).
    Aborted(String),
}

pub struct Watch {
    pub status: u16,
    pub headers: HeaderMap,
    body: Incoming,
    buf: Vec<u8>,
}

impl Watch {
    pub async fn open(c: &HttpClient, url: &str) -> Watch {
        let req = Request::builder().uri(url).body(Full::new(Bytes::new())).unwrap();
        let resp = tokio::time::timeout(WAIT, c.request(req))
            .await
            .expect("watch timed out")
            .expect("watch request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Watch { status, headers, body: resp.into_body(), buf: Vec::new() }
    }

    pub async fn next(&mut self) -> Item {
        tokio::time::timeout(WAIT, self.next_inner()).await.expect("no watch item in time")
    }

    async fn next_inner(&mut self) -> Item {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Item::Event(serde_json::from_slice(&line).expect("event is JSON"));
            }
            match self.body.frame().await {
                None if self.buf.is_empty() => return Item::End,
                None => {
                    return Item::Aborted(format!(
                        "clean end with partial line {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
                Some(Err(e)) => return Item::Aborted(e.to_string()),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }

    /// Next event, panicking on end/abort.
    pub async fn event(&mut self) -> Value {
        match self.next().await {
            Item::Event(v) => v,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Next non-BOOKMARK event.
    pub async fn non_bookmark(&mut self) -> Value {
        loop {
            let e = self.event().await;
            if e["type"] != "BOOKMARK" {
                return e;
            }
        }
    }
}

pub fn rv(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap().parse().unwrap()
}

pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
