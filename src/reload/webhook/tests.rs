//! Tests of webhook calls: credentials, header files, expected status, TLS.

use super::*;
use crate::snapshot::ContentHash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn credentials_become_a_basic_header() {
    let url: Uri = "http://user:pa%40ss@127.0.0.1:9/-/reload".parse().expect("uri");
    let (uri, auth) = split_credentials(&url).expect("split");
    assert_eq!(uri.to_string(), "http://127.0.0.1:9/-/reload");
    assert_eq!(auth.as_deref(), Some("Basic dXNlcjpwYUBzcw=="));
    let plain: Uri = "http://127.0.0.1:9/x".parse().expect("uri");
    assert_eq!(split_credentials(&plain).expect("split").1, None);
}

/// Answers each of `n` connections with `status`, sending back the request head.
async fn server(status: u16, n: usize) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::channel(n.max(1));
    tokio::spawn(async move {
        for _ in 0..n {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned()).await;
        }
    });
    (base, rx)
}

fn settings(header_file: Option<std::path::PathBuf>, status: Option<u16>) -> Settings {
    Settings {
        signal: nix::sys::signal::Signal::SIGHUP,
        target: None,
        webhooks: Vec::new(),
        webhook_method: hyper::Method::POST,
        webhook_timeout: Duration::from_secs(5),
        webhook_retries: 0,
        webhook_status: status,
        webhook_header_file: header_file,
        exec: None,
        exec_timeout: Duration::from_secs(5),
        reload_on_start: false,
    }
}

#[tokio::test]
async fn headers_from_the_file_are_sent_and_the_expected_status_is_enforced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("headers");
    std::fs::write(&file, "Authorization: Bearer t0ken\n").expect("write");
    let (base, mut heads) = server(204, 2).await;
    let url: Uri = format!("{base}/-/reload").parse().expect("uri");
    let client = Client::new();
    let hash = ContentHash([7; 32]);
    client.deliver(&url, &settings(Some(file.clone()), None), hash).await.expect("204 is a 2xx");
    let head = heads.recv().await.expect("a request").to_ascii_lowercase();
    assert!(head.contains("authorization: bearer t0ken"), "{head}");
    let err = client.deliver(&url, &settings(Some(file), Some(200)), hash).await.expect_err("200 expected");
    assert!(err.message.contains("204"), "{err}");
}

#[tokio::test]
async fn an_unreadable_header_file_fails_the_call_without_sending_it() {
    let url: Uri = "http://127.0.0.1:9/-/reload".parse().expect("uri");
    let missing = std::path::PathBuf::from("/nonexistent/headers");
    let err = Client::new()
        .deliver(&url, &settings(Some(missing), None), ContentHash([7; 32]))
        .await
        .expect_err("no file");
    assert!(err.message.contains("webhook header file"), "{err}");
}

#[tokio::test]
async fn https_urls_speak_tls() {
    // The server records the first byte it gets and hangs up: 0x16 opens a TLS handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url: Uri = format!("https://{}/-/reload", listener.local_addr().expect("addr")).parse().expect("uri");
    let first = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.ok()?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.ok()?;
        Some(byte[0])
    });
    let err = Client::new()
        .call(hyper::Method::POST, &url, None, Duration::from_secs(5))
        .await
        .expect_err("hung up");
    assert!(err.message.contains("request failed"), "{err}");
    assert_eq!(first.await.expect("server task"), Some(0x16), "a TLS record first");
}
