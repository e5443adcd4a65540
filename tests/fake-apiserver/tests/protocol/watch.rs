//! WATCH: resume order, initial events, bookmarks, 410 Expired and timeouts.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Options};

use super::{cms, put, summary};
use crate::common::{Item, Watch, client, enc, rv};

/// A server without periodic bookmarks, so event sequences are exact.
async fn quiet_server() -> FakeApiServer {
    let opts = Options { bookmark_interval: Duration::ZERO, ..Options::default() };
    FakeApiServer::start_with(opts).await.expect("server starts")
}

fn ev(t: &str, name: &str, rv: u64) -> (String, String, u64) {
    (t.to_string(), name.to_string(), rv)
}

// Fake API: checks the fake server's own watch resume order, which the other tests rely on.
#[tokio::test]
async fn watch_from_a_resource_version_delivers_later_events_in_order() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let b = put(&server, "b", &[]);
    let c = client();
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}"))).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.headers["transfer-encoding"], "chunked");
    assert_eq!(summary(&w.event().await), ev("ADDED", "b", b));
    let a2 = put(&server, "a", &[("v", "2")]);
    let gone = server.delete("configmaps", "ns", "b").expect("exists");
    assert_eq!(summary(&w.event().await), ev("MODIFIED", "a", a2));
    assert_eq!(summary(&w.event().await), ev("DELETED", "b", gone));
}

// Fake API: checks the fake server's own synthetic ADDED events for a watch without resourceVersion.
#[tokio::test]
async fn watch_without_resource_version_starts_with_synthetic_added_events() {
    let server = quiet_server().await;
    let a = put(&server, "a", &[("app", "web")]);
    put(&server, "b", &[("app", "db")]);
    let c = client();
    let url = cms(&server, &format!("watch=1&labelSelector={}", enc("app=web")));
    let mut w = Watch::open(&c, &url).await;
    let first = w.event().await;
    assert_eq!(summary(&first), ev("ADDED", "a", a));
    assert_eq!(first["object"]["kind"], "ConfigMap", "watch objects carry their kind");
    let c2 = put(&server, "c", &[("app", "web")]);
    assert_eq!(summary(&w.event().await), ev("ADDED", "c", c2));
}

// Fake API: checks the fake server's own selector transitions (ADDED, DELETED) on a watch.
#[tokio::test]
async fn watch_reports_objects_entering_and_leaving_the_selector_as_added_and_deleted() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[("app", "db")]);
    let c = client();
    let url = cms(&server, &format!("watch=1&resourceVersion={start}&labelSelector={}", enc("app=web")));
    let mut w = Watch::open(&c, &url).await;
    let joined = put(&server, "a", &[("app", "web")]);
    let left = put(&server, "a", &[("app", "db")]);
    assert_eq!(summary(&w.event().await), ev("ADDED", "a", joined));
    let deleted = w.event().await;
    assert_eq!(summary(&deleted), ev("DELETED", "a", left));
    assert_eq!(deleted["object"]["metadata"]["labels"]["app"], "web", "the last state that matched");
}

// Fake API: checks the fake server's own bookmarks (only with allowWatchBookmarks, latest RV).
#[tokio::test]
async fn watch_sends_bookmarks_only_when_allowed() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let mut with =
        Watch::open(&c, &cms(&server, &format!("watch=1&resourceVersion={start}&allowWatchBookmarks=true")))
            .await;
    let mut without = Watch::open(&c, &cms(&server, &format!("watch=1&resourceVersion={start}"))).await;
    // Another namespace: not seen by these watches, but it moves the resourceVersion.
    let other = server.apply("configmaps", FakeApiServer::configmap("other", "x").build()).expect("valid");
    server.send_bookmarks();
    let bm = with.event().await;
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(bm["object"]["kind"], "ConfigMap");
    assert_eq!(rv(&bm["object"]), other, "a bookmark carries the latest resourceVersion");
    assert!(bm["object"]["metadata"].get("name").is_none(), "{bm}");
    let b = put(&server, "b", &[]);
    assert_eq!(summary(&without.event().await), ev("ADDED", "b", b), "no bookmark before it");
}

// Fake API: checks the fake server's own bookmark interval, which the stall tests rely on.
#[tokio::test]
async fn watch_sends_periodic_bookmarks_at_the_configured_interval() {
    let opts = Options { bookmark_interval: Duration::from_millis(100), ..Options::default() };
    let server = FakeApiServer::start_with(opts).await.expect("server starts");
    let start = put(&server, "a", &[]);
    let c = client();
    let mut w =
        Watch::open(&c, &cms(&server, &format!("watch=1&resourceVersion={start}&allowWatchBookmarks=true")))
            .await;
    for _ in 0..2 {
        let bm = w.event().await;
        assert_eq!((bm["type"].as_str(), rv(&bm["object"])), (Some("BOOKMARK"), start));
    }
}

// Fake API: checks the fake server's own 410 Expired ERROR event inside a 200 watch.
#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_a_410_expired_error_event() {
    let server = quiet_server().await;
    let old = put(&server, "a", &[]);
    put(&server, "a", &[("v", "2")]);
    server.compact();
    let c = client();
    let mut w =
        Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={old}&allowWatchBookmarks=true")))
            .await;
    assert_eq!(w.status, 200, "the real server reports 410 inside a successful watch");
    assert_eq!(w.headers["transfer-encoding"], "chunked");
    let e = w.event().await;
    assert_eq!(e["type"], "ERROR");
    let status = &e["object"];
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["code"], 410);
    assert_eq!(status["reason"], "Expired");
    assert!(matches!(w.next().await, Item::End), "the watch ends after the error");
    // The current resourceVersion is still a valid starting point.
    let now = server.current_resource_version();
    let mut ok = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={now}"))).await;
    let b = put(&server, "b", &[]);
    assert_eq!(summary(&ok.event().await), ev("ADDED", "b", b));
}

// Fake API: checks the fake server's own clean end of a watch after timeoutSeconds.
#[tokio::test]
async fn watch_ends_cleanly_after_timeout_seconds() {
    let server = quiet_server().await;
    let start = put(&server, "a", &[]);
    let c = client();
    let mut w =
        Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={start}&timeoutSeconds=1"))).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), w.next()).await.expect("ends within 3 s");
    assert!(matches!(ended, Item::End), "{ended:?}");
    assert_eq!(server.stats().open_watches, 0);
}

// Fake API: checks the fake server's own streaming list (sendInitialEvents, initial-events-end bookmark).
#[tokio::test]
async fn streaming_list_ends_initial_events_with_an_annotated_bookmark() {
    let server = quiet_server().await;
    let a = put(&server, "a", &[("app", "web")]);
    put(&server, "b", &[("app", "db")]);
    let c = client();
    let q = format!(
        "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&allowWatchBookmarks=true&labelSelector={}",
        enc("app=web")
    );
    let mut w = Watch::open(&c, &cms(&server, &q)).await;
    assert_eq!(summary(&w.event().await), ev("ADDED", "a", a));
    let end = w.event().await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    assert_eq!(rv(&end["object"]), server.current_resource_version());
    assert_eq!(server.stats().lists, 0);
}

// Fake API: checks the fake server's own 422 for malformed sendInitialEvents watches.
#[tokio::test]
async fn send_initial_events_needs_not_older_than_and_bookmarks() {
    let server = quiet_server().await;
    let c = client();
    for q in [
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true",
        "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        "watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=1",
    ] {
        let w = Watch::open(&c, &cms(&server, q)).await;
        assert_eq!(w.status, 422, "{q}");
    }
}

// Fake API: checks the fake server's own quiet watch (nothing sent without a change).
#[tokio::test]
async fn watch_sends_nothing_while_nothing_changes() {
    let server = quiet_server().await;
    let c = client();
    let now = server.current_resource_version();
    let mut w = Watch::open(&c, &cms(&server, &format!("watch=true&resourceVersion={now}"))).await;
    let quiet = tokio::time::timeout(Duration::from_millis(200), w.next()).await;
    assert!(quiet.is_err(), "no event without a change: {quiet:?}");
}
