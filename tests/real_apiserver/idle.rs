//! A long idle on a server started with `--min-request-timeout=30`: for 5 minutes the
//! watches are renewed from their resourceVersion, with no LIST and no reload. (kube's
//! watcher asks for 290 s watches with `timeoutSeconds`, which the server honours over
//! its minimum: at least one watch ends and is renewed in 5 minutes.)

use crate::cluster::{Cluster, RELOADS, WAIT, configmap, wait_file};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_idle_minutes_with_watches_ended_by_the_server_cost_no_list_and_no_reload() {
    let cluster = Cluster::start(&["--min-request-timeout=30"]);
    cluster.apply(&configmap("web", &[("a", "1")]), &[]);
    let sidecar = cluster.sidecar("idle", &[]);
    sidecar.wait_state("fresh", WAIT).await;
    wait_file(&cluster, "idle", "web/a", Some(b"1")).await;
    let lists_before = cluster.configmap_lists();
    let watches_before = watches(&cluster);

    // The idle period itself is the scenario, not a bound on anything.
    tokio::time::sleep(Duration::from_secs(300)).await;

    let renewed = watches(&cluster) - watches_before;
    let lists = cluster.configmap_lists() - lists_before;
    eprintln!("in 5 idle minutes: {renewed} watches of ConfigMaps, {lists} LISTs");
    assert!(renewed >= 1, "a watch asked for 290 s ends within 5 minutes: {renewed} ended");
    assert_eq!(lists, 0, "an idle sidecar relisted");
    assert_eq!(sidecar.metric(RELOADS).await.unwrap_or(0.0), 0.0, "an idle sidecar reloaded");
    assert_eq!(sidecar.readyz().await.1["status"]["state"], "fresh");
    // The server's bookmarks (about one a minute) kept each watch under the 2-minute
    // --watch-idle-timeout: none was taken for stalled.
    let stalled = sidecar.metric("configsnap_watch_errors_total{reason=\"stalled\"}").await.unwrap_or(0.0);
    assert_eq!(stalled, 0.0, "a quiet watch on the real server was taken for stalled");
    let requests = cluster.sidecar_requests().len();
    eprintln!("requests by the sidecar so far: {requests}");
    // And it still follows the server.
    cluster.apply(&configmap("web", &[("a", "2")]), &[]);
    wait_file(&cluster, "idle", "web/a", Some(b"2")).await;
}

/// Watches of ConfigMaps the sidecar opened so far.
fn watches(cluster: &Cluster) -> usize {
    cluster
        .sidecar_requests()
        .iter()
        .filter(|(verb, resource, _)| verb == "watch" && resource == "configmaps")
        .count()
}
