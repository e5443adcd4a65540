//! The `configsnap.io/target-dir` annotation end to end: several ConfigMaps filling one
//! folder, an update of one member, a key two members provide, and a member's removal.

use crate::support::{NS, WAIT, Workspace, assert_complete_snapshot, configmap, wait_for};
use fake_apiserver::FakeApiServer;
use std::os::unix::fs::MetadataExt;

/// A selected ConfigMap whose files go to `rules/`.
fn member(name: &str, data: &[(&str, &str)]) -> serde_json::Value {
    in_dir("rules", name, data)
}

fn in_dir(dir: &str, name: &str, data: &[(&str, &str)]) -> serde_json::Value {
    let mut builder = FakeApiServer::configmap(NS, name)
        .label("configsnap.io/include", "true")
        .annotation("configsnap.io/target-dir", dir);
    for (key, value) in data {
        builder = builder.data(key, *value);
    }
    builder.build()
}

// Fake API: Kubernetes is incidental (the target-dir annotation on disk); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_configmaps_share_one_folder_and_update_collide_and_leave_it_alone() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", member("alerts", &[("alerts.yaml", "a1")])).expect("alerts");
    api.apply("configmaps", member("records", &[("records.yaml", "r1")])).expect("records");
    api.apply("configmaps", configmap("web", &[("nginx.conf", "events {}")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    let both = || ws.read("rules/alerts.yaml").is_some() && ws.read("rules/records.yaml").is_some();
    wait_for("both members in rules/", WAIT, both).await;
    assert!(!ws.dir().join("alerts").exists() && !ws.dir().join("records").exists());
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("events {}"), "unannotated objects stay put");
    assert_complete_snapshot(&ws.dir());
    let inode = |rel: &str| std::fs::metadata(ws.dir().join(rel)).expect("stat").ino();
    let records_inode = inode("rules/records.yaml");

    api.apply("configmaps", member("alerts", &[("alerts.yaml", "a2")])).expect("update");
    wait_for("the update", WAIT, || ws.read("rules/alerts.yaml").as_deref() == Some("a2")).await;
    assert_eq!(inode("rules/records.yaml"), records_inode, "the other member's file is not rewritten");
    assert_complete_snapshot(&ws.dir());

    let clash = member("records", &[("records.yaml", "r2"), ("alerts.yaml", "from-records")]);
    api.apply("configmaps", clash).expect("colliding update");
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"collision\"}", 1.0).await;
    assert_eq!(ws.read("rules/alerts.yaml").as_deref(), Some("a2"));
    assert_eq!(ws.read("rules/records.yaml").as_deref(), Some("r1"), "the previous version stays");
    let log = sidecar.log();
    assert!(log.lines().any(|l| l.contains("object rejected") && l.contains("rules/alerts.yaml")), "{log}");

    api.apply("configmaps", in_dir("/etc", "bad", &[("x", "y")])).expect("absolute target");
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"bad_target_dir\"}", 1.0).await;

    api.delete("configmaps", NS, "alerts").expect("delete");
    let taken_over = || ws.read("rules/alerts.yaml").as_deref() == Some("from-records");
    wait_for("the loser's version once the owner is gone", WAIT, taken_over).await;
    assert_eq!(ws.read("rules/records.yaml").as_deref(), Some("r2"));
    assert_complete_snapshot(&ws.dir());
    api.delete("configmaps", NS, "records").expect("delete");
    wait_for("the folder goes with its last member", WAIT, || !ws.dir().join("rules").exists()).await;
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("events {}"));
    assert_complete_snapshot(&ws.dir());
    drop(sidecar);
}
