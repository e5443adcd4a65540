//! API faults of issue 12 (findings 2, 3 and 4): failed requests are reported at once and in
//! plain words, a frozen watch is replaced, and a blip after a recovered outage resumes
//! from the first backoff step. Each test waits for conditions with generous bounds; the
//! timing figures are in the `fleet503` bench.

use crate::support::{Sidecar, WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::time::Duration;

/// The backoff maximum (30 s) plus 5 s to reconnect and swap: the longest a recovery may
/// take once the API is back.
const RECOVERY: Duration = Duration::from_secs(35);
/// The count of 503 answers.
const UNAVAILABLE: &str = "configsnap_watch_errors_total{reason=\"unavailable\"}";
/// The rate-limited source error line.
const SOURCE_ERROR: &str = "source error; retrying with backoff, files stay as they are";

async fn readyz(sidecar: &Sidecar) -> Option<serde_json::Value> {
    let (_, body) = sidecar.get("/readyz").await?;
    serde_json::from_str(&body).ok()
}

/// True when `/readyz` says `state` and, when degraded, its reason contains `cause`.
async fn reports(sidecar: &Sidecar, state: &str, cause: &str) -> bool {
    readyz(sidecar).await.is_some_and(|body| {
        let status = &body["status"];
        status["state"] == state && status["reason"].as_str().unwrap_or_default().contains(cause)
    })
}

/// Waits until `configsnap_watch_errors_total{reason}` counted at least `at_least`.
async fn wait_errors(sidecar: &Sidecar, reason: &str, at_least: f64) {
    let name = format!("configsnap_watch_errors_total{{reason=\"{reason}\"}}");
    wait_until(&format!("{name} >= {at_least}"), WAIT, || async {
        sidecar.metric(&name).await.is_some_and(|v| v >= at_least)
    })
    .await;
}

/// A synced sidecar with fast swaps, and its API and workspace.
async fn synced(extra: &[&str]) -> (FakeApiServer, Workspace, Sidecar) {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    let mut args = vec!["--debounce=0", "--max-wait=0"];
    args.extend_from_slice(extra);
    let sidecar = ws.start(&args);
    wait_for("first sync", WAIT, || ws.read("web/a").is_some()).await;
    wait_until("fresh", WAIT, || reports(&sidecar, "fresh", "")).await;
    (api, ws, sidecar)
}

/// An error window of `status` (with `retry_after`) on every request, open watches cut: the
/// sidecar reports `cause` and `reason` while it lasts, and takes the change made during it
/// once it closes, without a relist.
async fn an_error_window_is_reported_then_recovered(
    status: u16,
    retry_after: Option<u32>,
    reason: &str,
    cause: &str,
) {
    let (api, ws, sidecar) = synced(&[]).await;
    api.reset_stats();
    let window = tokio::time::Instant::now() + Duration::from_secs(8);
    api.faults().fail_until(window, status, retry_after);
    api.faults().drop_watches();
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("update during the window");
    wait_until(&format!("/readyz degraded by {cause:?}"), WAIT, || reports(&sidecar, "degraded", cause))
        .await;
    wait_errors(&sidecar, reason, 1.0).await;
    sidecar.wait_metric("configsnap_degraded", 1.0).await;
    wait_for("the source error logged", WAIT, || sidecar.log_count(SOURCE_ERROR) >= 1).await;
    assert_eq!(ws.read("web/a").as_deref(), Some("0"), "files stay as they are");
    tokio::time::sleep_until(window).await;
    wait_for("the change after the window", RECOVERY, || ws.read("web/a").as_deref() == Some("1")).await;
    wait_until("fresh after the window", WAIT, || reports(&sidecar, "fresh", "")).await;
    sidecar.wait_metric("configsnap_degraded", 0.0).await;
    assert_eq!(api.stats().lists, 0, "a valid resourceVersion resumes without a relist");
    let log = sidecar.log();
    assert!(!log.contains("failed with status"), "no client-library line per failed request:\n{log}");
    assert!(log.matches(SOURCE_ERROR).count() <= 2, "one line, repeats at most every 30 s:\n{log}");
}

// Fake API: 8 s of 503 on every request, on demand, which a real server cannot be made to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_window_is_reported_in_plain_words_and_the_next_change_lands_after_it() {
    let cause = "the API server answered 503 Service Unavailable to the ConfigMap watch";
    an_error_window_is_reported_then_recovered(503, None, "unavailable", cause).await;
}

// Fake API: 8 s of 429 with Retry-After, on demand, which a real server cannot be made to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_reported_and_the_next_change_lands_after_it() {
    let cause = "the API server answered 429 Too Many Requests to the ConfigMap watch";
    an_error_window_is_reported_then_recovered(429, Some(2), "throttled", cause).await;
}

// Fake API: frozen (open, silent) watches and 1 s bookmarks; a real server gives neither on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_watch_is_reported_as_stalled_while_it_lasts_and_replaced_without_a_relist() {
    // Bookmarks come every second from the fake API; three silent seconds are a stall.
    let (api, ws, sidecar) = synced(&["--watch-idle-timeout=3s"]).await;
    api.reset_stats();
    api.faults().set_freeze_new_watches(true);
    api.faults().freeze_watches();
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("update behind the frozen watch");
    wait_until("/readyz degraded: stalled", WAIT, || {
        reports(&sidecar, "degraded", "no event and no bookmark")
    })
    .await;
    wait_errors(&sidecar, "stalled", 2.0).await;
    assert!(
        reports(&sidecar, "degraded", "no event and no bookmark").await,
        "reopened frozen watches prove nothing"
    );
    assert_eq!(ws.read("web/a").as_deref(), Some("0"));
    api.faults().set_freeze_new_watches(false);
    wait_for("the change behind the stall", RECOVERY, || ws.read("web/a").as_deref() == Some("1")).await;
    wait_until("fresh once a watch delivers", WAIT, || reports(&sidecar, "fresh", "")).await;
    assert_eq!(api.stats().lists, 0, "a stalled watch resumes from its resourceVersion");
}

// Fake API: a frozen watch while the API stays healthy, which a real server cannot be made to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_watch_with_healthy_api_is_replaced_and_the_next_change_lands() {
    let (api, ws, sidecar) = synced(&["--watch-idle-timeout=3s"]).await;
    api.faults().freeze_watches();
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("update behind the frozen watch");
    wait_for("the change behind the frozen watch", RECOVERY, || ws.read("web/a").as_deref() == Some("1"))
        .await;
    wait_errors(&sidecar, "stalled", 1.0).await;
    wait_until("fresh again", WAIT, || reports(&sidecar, "fresh", "")).await;
}

// Fake API: 30 s of 503 then exactly one failed request, timed on demand; a real server gives neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_after_a_recovered_outage_is_counted_and_recovered() {
    let (api, ws, sidecar) = synced(&[]).await;
    // 30 s of 503 mean at least six failed attempts (0.8 + 1.6 + 3.2 + 6.4 + 12.8 s of
    // delay at most): the backoff's step has grown to 25.6 s by the end.
    let window = tokio::time::Instant::now() + Duration::from_secs(30);
    api.faults().fail_until(window, 503, None);
    api.faults().drop_watches();
    wait_errors(&sidecar, "unavailable", 4.0).await;
    tokio::time::sleep_until(window).await;
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("update after the outage");
    wait_for("recovered", RECOVERY, || ws.read("web/a").as_deref() == Some("1")).await;
    wait_until("fresh after the outage", WAIT, || reports(&sidecar, "fresh", "")).await;
    // "fresh" above means the watch loop's probe heard the recovery, which is what resets
    // the backoff: that a blip then waits one first step (≤ 0.8 s, not the ≥ 12.8 s the
    // outage reached) is asserted on the delays themselves, without a clock, in
    // `source::kube::backoff`'s tests. Here: one failed request is counted and recovered.
    let counted = sidecar.metric(UNAVAILABLE).await.unwrap_or_default();
    api.faults().fail_requests(1, 503, None);
    api.faults().drop_watches();
    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update in the blip");
    wait_for("the blip resumed", RECOVERY, || ws.read("web/a").as_deref() == Some("2")).await;
    wait_errors(&sidecar, "unavailable", counted + 1.0).await;
}
