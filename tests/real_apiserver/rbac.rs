//! The deploy RBAC is enough and no more: with it the sidecar is ready; without `watch`
//! on ConfigMaps, or `create` on Events, `/readyz`, the log and a metric name the
//! missing permission in plain words; restoring the Role heals it without a restart.

use crate::cluster::{Cluster, WAIT, configmap, wait_file};
use configsnap_kit::wait_until;

/// Replaces the verbs of rule `rule` of the Role.
fn set_verbs(cluster: &Cluster, rule: usize, verbs: &[&str]) {
    let patch =
        serde_json::json!([{ "op": "replace", "path": format!("/rules/{rule}/verbs"), "value": verbs }]);
    cluster.kubectl(&["patch", "role", "configsnap", "--type=json", "-p", &patch.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_role_is_enough_and_a_missing_permission_is_named_then_healed() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("web", &[("a", "1")]), &[]);
    let sidecar = cluster.sidecar("rbac", &[]);
    sidecar.wait_state("fresh", WAIT).await;
    wait_file(&cluster, "rbac", "web/a", Some(b"1")).await;
    let forbidden_secrets = cluster.cp.kubectl_output(&[
        "--kubeconfig",
        &cluster.tmp.path().join("kubeconfig").display().to_string(),
        "get",
        "secrets",
        "-n",
        crate::cluster::NS,
    ]);
    assert!(!forbidden_secrets.status.success(), "the deploy Role must not grant Secrets");

    // Without watch: the next watch (after a restart ends the open one) is refused.
    set_verbs(&cluster, 0, &["get", "list"]);
    cluster.cp.control("restart-apiserver");
    let body = sidecar.wait_state("degraded", WAIT).await;
    let reason = body["status"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("403") && reason.contains("cannot watch resource \"configmaps\""), "{body}");
    assert_eq!(sidecar.readyz().await.0, 200, "the files on disk stay usable");
    wait_until("the forbidden watch is counted", WAIT, || async {
        sidecar.metric("configsnap_watch_errors_total{reason=\"forbidden\"}").await.is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(sidecar.log().contains("cannot watch resource"), "the log names it");

    // Restored: healed without a restart, and a change lands.
    set_verbs(&cluster, 0, &["get", "list", "watch"]);
    sidecar.wait_state("fresh", WAIT).await;
    cluster.apply(&configmap("web", &[("a", "2")]), &[]);
    wait_file(&cluster, "rbac", "web/a", Some(b"2")).await;

    // Without create on Events: counted as forbidden, logged, and the files still update.
    set_verbs(&cluster, 1, &["get"]);
    cluster.apply(&configmap("web", &[("a", "3")]), &[]);
    wait_file(&cluster, "rbac", "web/a", Some(b"3")).await;
    wait_until("a refused Event is counted", WAIT, || async {
        sidecar.metric("configsnap_events_total{result=\"forbidden\"}").await.is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(sidecar.log().contains("cannot create resource"), "{}", sidecar.log());
    set_verbs(&cluster, 1, &["create"]);
}
