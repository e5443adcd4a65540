//! Fault injection, each fault as documented on `Faults`.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Options};

use super::{cms, put, summary};
use crate::common::{Item, WAIT, Watch, client, get};

async fn quiet_server() -> FakeApiServer {
    let opts = Options { bookmark_interval: Duration::ZERO, ..Options::default() };
    FakeApiServer::start_with(opts).await.expect("server starts")
}

// Fake API: checks the fake's own drop_watches fault (clean end, lossless resume) the other tests use.
#[tokio::test]
async fn drop_watches_ends_every_open_watch_cleanly() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let url = cms(&server, &format!("watch=true&resourceVersion={start}"));
    let (mut w1, mut w2) = (Watch::open(&c, &url).await, Watch::open(&c, &url).await);
    assert_eq!(server.stats().open_watches, 2);
    server.faults().drop_watches();
    assert!(matches!(w1.next().await, Item::End));
    assert!(matches!(w2.next().await, Item::End));
    // A watch resumed from the last resourceVersion misses nothing written meanwhile.
    let b = put(&server, "b", &[]);
    let mut again = Watch::open(&c, &url).await;
    assert_eq!(summary(&again.event().await), ("ADDED".into(), "b".into(), b));
}

// Fake API: checks the fake's own torn-chunk fault, which a real server cannot give on demand.
#[tokio::test]
async fn truncate_next_watch_event_cuts_the_event_and_aborts_the_connection() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}"))).await;
    server.faults().truncate_next_watch_event();
    put(&server, "b", &[]);
    match w.next().await {
        Item::Aborted(_) => {}
        other => panic!("expected an aborted body, got {other:?}"),
    }
}

// Fake API: checks the fake's own injected 500s (Status body, /version spared) the fault tests use.
#[tokio::test]
async fn fail_requests_answers_500_with_a_status_then_serves_again() {
    let server = quiet_server().await;
    let c = client();
    server.faults().fail_requests(2, 500, None);
    let (code, _, _) = get(&c, &format!("{}/version", server.url())).await;
    assert_eq!(code, 200, "discovery and /version are not failed");
    for _ in 0..2 {
        let (code, headers, body) = get(&c, &cms(&server, "")).await;
        assert_eq!(
            (code, body["kind"].as_str(), body["reason"].as_str()),
            (500, Some("Status"), Some("InternalError"))
        );
        assert!(headers.get("retry-after").is_none());
    }
    let (code, _, _) = get(&c, &cms(&server, "")).await;
    assert_eq!(code, 200);
    let stats = server.stats();
    assert_eq!((stats.errors_injected, stats.lists), (2, 1), "injected failures are not counted as lists");
}

// Fake API: checks the fake's own injected 429 with Retry-After that the fault tests use.
#[tokio::test]
async fn fail_requests_429_carries_retry_after() {
    let server = quiet_server().await;
    let c = client();
    server.faults().fail_requests(1, 429, Some(3));
    let (code, headers, body) = get(&c, &cms(&server, "watch=true")).await;
    assert_eq!(code, 429);
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 3);
    let (code, _, _) = get(&c, &cms(&server, "")).await;
    assert_eq!(code, 200);
}

// Fake API: checks the fake's own hang fault (requests held until released) the outage tests use.
#[tokio::test]
async fn set_hang_holds_requests_until_released() {
    let server = quiet_server().await;
    server.faults().set_hang(true);
    let url = cms(&server, "");
    let pending = tokio::spawn(async move { get(&client(), &url).await.0 });
    let held = tokio::time::timeout(Duration::from_millis(300), async {
        while !pending.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(held.is_err(), "a hanging server must not answer");
    server.faults().set_hang(false);
    let code = tokio::time::timeout(WAIT, pending).await.expect("released").expect("no panic");
    assert_eq!(code, 200);
}

// Fake API: checks the fake's own hang fault on open watches that the outage tests use.
#[tokio::test]
async fn set_hang_stops_open_watches_from_sending() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}"))).await;
    server.faults().set_hang(true);
    let b = put(&server, "b", &[]);
    assert!(tokio::time::timeout(Duration::from_millis(300), w.next()).await.is_err());
    server.faults().set_hang(false);
    assert_eq!(summary(&w.event().await), ("ADDED".into(), "b".into(), b));
}

// Fake API: checks the fake's own refused-connections fault (same port after) the outage tests use.
#[tokio::test]
async fn set_refuse_refuses_connections_until_lifted_on_the_same_port() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}"))).await;
    server.faults().set_refuse(true).await.expect("refuse");
    assert!(!matches!(w.next().await, Item::Event(_)), "open watches are cut");
    let err = tokio::net::TcpStream::connect(server.addr()).await.expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    server.faults().set_refuse(false).await.expect("accept again");
    let (code, _, _) = get(&client(), &cms(&server, "")).await;
    assert_eq!(code, 200);
}

// Fake API: checks the fake's own 410-on-every-resume fault that the relist tests use.
#[tokio::test]
async fn set_expire_all_watch_resumes_answers_every_resume_with_410() {
    let server = quiet_server().await;
    let now = put(&server, "a", &[]);
    let c = client();
    server.faults().set_expire_all_watch_resumes(true);
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={now}"))).await;
    let e = w.event().await;
    assert_eq!((e["type"].as_str(), e["object"]["code"].as_u64()), (Some("ERROR"), Some(410)));
    let mut fresh = Watch::open(&c, &cms(&server, "watch=true")).await;
    assert_eq!(fresh.event().await["type"], "ADDED", "a watch without resourceVersion is not a resume");
    server.faults().set_expire_all_watch_resumes(false);
    let mut resumed = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={now}"))).await;
    let b = put(&server, "b", &[]);
    assert_eq!(summary(&resumed.event().await), ("ADDED".into(), "b".into(), b));
}

// Fake API: checks the fake's own timed 503 window that the fault tests use.
#[tokio::test]
async fn fail_until_answers_every_request_until_the_instant_then_serves_again() {
    let server = quiet_server().await;
    let c = client();
    let until = tokio::time::Instant::now() + Duration::from_millis(400);
    server.faults().fail_until(until, 503, None);
    for _ in 0..5 {
        let (code, headers, body) = get(&c, &cms(&server, "")).await;
        assert_eq!((code, body["reason"].as_str()), (503, Some("ServiceUnavailable")));
        assert!(headers.get("retry-after").is_none());
    }
    let (code, _, _) = get(&c, &format!("{}/version", server.url())).await;
    assert_eq!(code, 200, "discovery and /version are not failed");
    tokio::time::sleep_until(until).await;
    let (code, _, _) = get(&c, &cms(&server, "")).await;
    assert_eq!(code, 200, "the window closed");
    assert_eq!(server.stats().errors_injected, 5);
}

// Fake API: checks the fake's own timed 429 window with Retry-After, and its clearing.
#[tokio::test]
async fn fail_until_429_carries_retry_after_and_an_instant_in_the_past_clears_it() {
    let server = quiet_server().await;
    let c = client();
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    server.faults().fail_until(far, 429, Some(2));
    let (code, headers, body) = get(&c, &cms(&server, "watch=true")).await;
    assert_eq!((code, body["reason"].as_str()), (429, Some("TooManyRequests")));
    assert_eq!(headers["retry-after"], "2");
    server.faults().fail_until(tokio::time::Instant::now(), 429, None);
    let (code, _, _) = get(&c, &cms(&server, "")).await;
    assert_eq!(code, 200);
}

// Fake API: checks the fake's own frozen-watch fault (silent past timeoutSeconds) the stall tests use.
#[tokio::test]
async fn freeze_watches_silences_open_watches_past_their_timeout_but_not_new_ones() {
    let server = FakeApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(50),
        ..Options::default()
    })
    .await
    .expect("server starts");
    let start = put(&server, "a", &[]);
    let c = client();
    let query = format!("watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={start}");
    let mut frozen = Watch::open(&c, &cms(&server, &query)).await;
    assert_eq!(frozen.event().await["type"], "BOOKMARK", "bookmarks flow before the freeze");
    server.faults().freeze_watches();
    let b = put(&server, "b", &[]);
    // Longer than the watch's own 1 s timeout: a frozen watch neither sends nor ends.
    let silent = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            if let Item::Event(e) = frozen.next().await {
                if e["type"] != "BOOKMARK" {
                    return e;
                }
            } else {
                panic!("a frozen watch must not end");
            }
        }
    })
    .await;
    assert!(silent.is_err(), "a frozen watch must send nothing, got {silent:?}");
    assert_eq!(server.stats().open_watches, 1);
    let mut fresh = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}"))).await;
    assert_eq!(summary(&fresh.non_bookmark().await), ("ADDED".into(), "b".into(), b));
}

// Fake API: checks the fake's own freeze-new-watches fault that the stall tests use.
#[tokio::test]
async fn set_freeze_new_watches_answers_200_then_sends_nothing_until_lifted() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let url = cms(&server, &format!("watch=true&resourceVersion={start}"));
    server.faults().set_freeze_new_watches(true);
    let mut frozen = Watch::open(&c, &url).await;
    assert_eq!(frozen.status, 200);
    put(&server, "b", &[]);
    assert!(tokio::time::timeout(Duration::from_millis(300), frozen.next()).await.is_err());
    server.faults().set_freeze_new_watches(false);
    assert!(tokio::time::timeout(Duration::from_millis(300), frozen.next()).await.is_err(), "stays frozen");
    let mut fresh = Watch::open(&c, &url).await;
    assert_eq!(fresh.event().await["object"]["metadata"]["name"], "b");
}
