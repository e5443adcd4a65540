//! Every kind of Warning Event the sidecar writes is accepted by the real server and
//! regards the object concerned: a rejected object, a snapshot refused by validation, a
//! reload the app refused (and the rollback), an emptied selection held.

use crate::cluster::{Cluster, USER, WAIT, configmap, wait_file};
use configsnap_kit::wait_for;

/// `(reason, regarded name)` of every events.k8s.io Event in the namespace.
fn events(cluster: &Cluster) -> Vec<(String, String)> {
    let list: serde_json::Value =
        serde_json::from_str(&cluster.kubectl(&["get", "events.events.k8s.io", "-o", "json"])).expect("json");
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                    (field(&e["reason"]), field(&e["regarding"]["name"]))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_event(cluster: &Cluster, reason: &str, regarding: &str) {
    let what = format!("a {reason} Event regarding {regarding}");
    wait_for(&what, WAIT, || events(cluster).iter().any(|(r, n)| r == reason && n == regarding)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_warning_event_is_accepted_and_regards_the_object_concerned() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("web", &[("a", "good")]), &[]);
    let sidecar = cluster.sidecar(
        "events",
        &[
            "--validate-cmd=! grep -rq BAD $CONFIGSNAP_STAGED_DIR",
            "--exec=! grep -q REFUSE $CONFIGSNAP_DIR/web/a",
            "--pod-name=events-test",
        ],
    );
    wait_file(&cluster, "events", "web/a", Some(b"good")).await;

    cluster.apply(&configmap("web", &[("a", "BAD")]), &[]);
    wait_event(&cluster, "ValidationFailed", "web").await;
    cluster.apply(&configmap("web", &[("a", "REFUSE")]), &[]);
    wait_event(&cluster, "ReloadFailed", "web").await;
    wait_event(&cluster, "RolledBack", "web").await;
    wait_file(&cluster, "events", "web/a", Some(b"good")).await;

    let bad_mode = configmap("loose", &[("k", "v")])
        .replace("  labels:\n", "  annotations:\n    configsnap.io/file-mode: \"0777\"\n  labels:\n");
    cluster.apply(&bad_mode, &[]);
    wait_event(&cluster, "Rejected", "loose").await;

    cluster.kubectl(&["delete", "configmap", "web", "loose"]);
    wait_event(&cluster, "SelectionHeld", "web").await;
    wait_file(&cluster, "events", "web/a", Some(b"good")).await;

    let refused: Vec<_> =
        cluster.sidecar_requests().into_iter().filter(|(_, _, code)| *code >= 400).collect();
    assert!(refused.is_empty(), "requests of {USER} the server refused: {refused:?}\n{}", sidecar.log());
}
