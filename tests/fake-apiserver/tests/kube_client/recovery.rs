//! The watcher under faults: resume without relist, relist on 410, API down, 5xx, 429.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Options};
use kube::runtime::watcher;

use crate::support::{Ev, Watcher, apply, init_apply, put, wait_stats};

fn web() -> watcher::Config {
    watcher::Config::default().labels("app=web")
}

/// A server without periodic bookmarks: the watcher's resourceVersion only moves with the
/// events it sees, so a compaction can leave it behind.
async fn quiet_server() -> FakeApiServer {
    let opts = Options { bookmark_interval: Duration::ZERO, ..Options::default() };
    FakeApiServer::start_with(opts).await.expect("server starts")
}

// Fake API: watches dropped on demand; checks kube's watcher resumes on the fake without a LIST.
#[tokio::test]
async fn watch_resumes_from_last_resource_version_without_relist() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    let before = wait_stats(&server, "watch open", |s| s.open_watches == 1).await;
    server.faults().drop_watches();
    // Written while no watch is open: the resumed watch must still deliver it.
    put(&server, "b", "web", "1");
    let seen = w.expect(apply("b")).await;
    assert!(seen.is_empty(), "no Init, no error, nothing else: {seen:?}");
    let after = server.stats();
    assert_eq!(after.lists, 1, "no relist");
    assert!(after.watch_resumes > before.watch_resumes, "{before:?} -> {after:?}");
}

// Fake API: a torn watch chunk on demand; checks kube's watcher resumes on the fake without a LIST.
#[tokio::test]
async fn watcher_resumes_after_a_truncated_watch_event_without_relist() {
    let server = FakeApiServer::start().await.expect("server starts");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    wait_stats(&server, "watch open", |s| s.open_watches == 1).await;
    server.faults().truncate_next_watch_event();
    put(&server, "a", "web", "1");
    let seen = w.expect(apply("a")).await;
    assert!(seen.iter().all(Ev::is_error), "{seen:?}");
    assert_eq!(server.stats().lists, 1, "no relist");
}

// Fake API: exact control of bookmarks and compaction, so kube's watcher falls behind and gets 410.
#[tokio::test]
async fn watcher_relists_when_its_resource_version_was_compacted() {
    let server = quiet_server().await;
    put(&server, "a", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    wait_stats(&server, "watch open", |s| s.open_watches == 1).await;
    // Unseen by the watcher (other label), so its resourceVersion falls behind the compaction.
    put(&server, "x", "db", "1");
    put(&server, "b", "web", "1");
    w.expect(apply("b")).await;
    put(&server, "y", "db", "1");
    server.compact();
    server.faults().drop_watches();
    let seen = w.expect(Ev::Init).await;
    assert!(
        seen.iter().any(|e| matches!(e, Ev::Error(m) if m.contains("410") || m.contains("too old"))),
        "the 410 ERROR event reaches the stream: {seen:?}"
    );
    assert_eq!(w.initial_sync().await, [init_apply("a"), init_apply("b"), Ev::InitDone]);
    assert_eq!(server.stats().lists, 2);
}

// Fake API: a 410 on every resume on demand; checks kube's watcher relists against the fake.
#[tokio::test]
async fn watcher_relists_when_every_resume_is_expired() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    wait_stats(&server, "watch open", |s| s.open_watches == 1).await;
    server.faults().set_expire_all_watch_resumes(true);
    server.faults().drop_watches();
    w.expect(Ev::Init).await;
    w.until(|e| *e == Ev::InitDone).await;
    server.faults().set_expire_all_watch_resumes(false);
    assert!(server.stats().lists >= 2);
    // Once resumes are accepted again the watcher settles and follows changes.
    put(&server, "b", "web", "1");
    w.until(|e| *e == apply("b") || *e == init_apply("b")).await;
}

// Fake API: connections refused on demand; checks kube's watcher resumes against the fake.
#[tokio::test]
async fn watcher_recovers_after_the_api_refuses_connections_for_a_while() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    wait_stats(&server, "watch open", |s| s.open_watches == 1).await;
    server.faults().set_refuse(true).await.expect("refuse");
    put(&server, "b", "web", "1");
    // The watch is cut and reconnecting fails: the watcher reports an error and backs off.
    w.until(Ev::is_error).await;
    server.faults().set_refuse(false).await.expect("accept again");
    let seen = w.expect(apply("b")).await;
    assert!(seen.iter().all(Ev::is_error), "resumed, not relisted: {seen:?}");
    assert_eq!(server.stats().lists, 1);
}

// Fake API: exactly three 503s on demand; checks kube's retry layer hides them.
#[tokio::test]
async fn client_retries_injected_503s_before_the_watcher_sees_them() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    server.faults().fail_requests(3, 503, None);
    let mut w = Watcher::start(&server, web()).await;
    let events = w.until(|e| *e == Ev::InitDone).await;
    assert_eq!(events, [Ev::Init, init_apply("a"), Ev::InitDone], "kube's retry layer hides 503");
    let stats = server.stats();
    assert_eq!((stats.errors_injected, stats.lists), (3, 1));
}

// Fake API: exactly two 500s on demand; checks kube's watcher backs off and recovers.
#[tokio::test]
async fn watcher_backs_off_and_recovers_after_injected_500s() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    server.faults().fail_requests(2, 500, None);
    let mut w = Watcher::start(&server, web()).await;
    let events = w.until(|e| *e == Ev::InitDone).await;
    assert_eq!(
        events.iter().filter(|e| e.is_error()).count(),
        2,
        "500 is not retried by the client: {events:?}"
    );
    assert!(events.ends_with(&[init_apply("a"), Ev::InitDone]), "{events:?}");
    put(&server, "b", "web", "1");
    w.expect(apply("b")).await;
}

// Fake API: a 429 with Retry-After on demand; checks kube's client waits it out.
#[tokio::test]
async fn client_waits_out_retry_after_on_429() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    server.faults().fail_requests(1, 429, Some(1));
    let started = tokio::time::Instant::now();
    let mut w = Watcher::start(&server, web()).await;
    let events = w.until(|e| *e == Ev::InitDone).await;
    assert_eq!(events, [Ev::Init, init_apply("a"), Ev::InitDone]);
    // The behaviour under test is a wait, so time is the condition: only a lower bound,
    // which a loaded machine can never break (it can only make the wait longer).
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After honoured");
    assert_eq!(server.stats().errors_injected, 1);
}
