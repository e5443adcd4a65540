//! Scale: thousands of selected objects, under a small file-descriptor limit.

use crate::support::{Workspace, assert_complete_snapshot, configmap, wait_for};
use fake_apiserver::{FakeApiServer, Options};
use std::time::Duration;

/// Objects in the namespace, all selected.
const OBJECTS: usize = 5000;
/// The fd limit: a swap must need O(1) fds, not one per object.
const FD_LIMIT: u32 = 64;
/// Bound of the first sync of 5,000 objects (a debug binary on a loaded 2-core machine).
const FIRST_SYNC: Duration = Duration::from_secs(240);
/// Bound of each later update.
const UPDATE: Duration = Duration::from_secs(60);

fn visible_entries(dir: &std::path::Path) -> usize {
    // Only the visible links, not `..data`, `..objects`, `..tree`, roots or a view.
    let visible = |e: &std::fs::DirEntry| !e.file_name().to_string_lossy().starts_with("..");
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().filter(visible).count())
}

// Fake API: Kubernetes is incidental (5,000 objects under 64 fds); the fake loads them in-process, fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_objects_become_ready_and_keep_updating_with_64_fds() {
    five_thousand_objects_under_64_fds(&[]).await;
}

// Fake API: Kubernetes is incidental (the validation view of 5,000 objects under 64 fds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_objects_with_a_walking_validator_keep_updating_with_64_fds() {
    five_thousand_objects_under_64_fds(&["--validate-cmd=find $CONFIGSNAP_STAGED_DIR -type f -name k"]).await;
}

async fn five_thousand_objects_under_64_fds(extra: &[&str]) {
    let options = Options { history_capacity: 4 * OBJECTS, ..Options::default() };
    let api = FakeApiServer::start_with(options).await.expect("fake api");
    for i in 0..OBJECTS {
        api.apply("configmaps", configmap(&format!("cm-{i:05}"), &[("k", &format!("v0-{i}"))])).expect("cm");
    }
    let ws = Workspace::new(&api);
    let mut flags = vec!["--debounce=0", "--max-wait=0"];
    flags.extend_from_slice(extra);
    let mut sidecar = ws.start_with_fd_limit(Some(FD_LIMIT), &flags);
    wait_for("all 5,000 entries visible", FIRST_SYNC, || visible_entries(&ws.dir()) == OBJECTS).await;
    crate::support::wait_until("ready", UPDATE, || async {
        sidecar.get("/readyz").await.is_some_and(|r| r.0 == 200)
    })
    .await;
    for (n, i) in [17, 2500, 4999].into_iter().enumerate() {
        let value = format!("v{}-{i}", n + 1);
        api.apply("configmaps", configmap(&format!("cm-{i:05}"), &[("k", &value)])).expect("update");
        wait_for("the update lands", UPDATE, || ws.read(&format!("cm-{i:05}/k")).as_deref() == Some(&value))
            .await;
    }
    api.delete("configmaps", crate::support::NS, "cm-00042").expect("delete");
    wait_for("the deletion lands", UPDATE, || std::fs::symlink_metadata(ws.dir().join("cm-00042")).is_err())
        .await;
    assert_eq!(ws.read("cm-00043/k").as_deref(), Some("v0-43"));
    assert_complete_snapshot(&ws.dir());
    assert!(sidecar.running(), "configsnap exited:\n{}", sidecar.log());
    assert!(!sidecar.log().contains("Too many open files"), "ran out of fds:\n{}", sidecar.log());
}
