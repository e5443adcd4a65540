//! A visible link that someone replaces in the shared volume (with a link to another
//! directory or to a file, a real directory, a dangling link) is put right while the
//! sidecar runs and at start, without following it or writing outside `--dir`; a log
//! line and a metric name it.

use crate::support::{WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::path::Path;

/// The four ways the visible link `web` gets replaced, each planted by `plant`.
fn plant(case: &str, dir: &Path, outside: &Path) {
    let web = dir.join("web");
    let tmp = dir.join("web.planted");
    match case {
        "link-to-dir" => std::os::unix::fs::symlink(outside.join("d"), &tmp).expect("plant"),
        "link-to-file" => std::os::unix::fs::symlink(outside.join("file"), &tmp).expect("plant"),
        "dangling-link" => std::os::unix::fs::symlink("..data/nowhere/web", &tmp).expect("plant"),
        "directory" => {
            std::fs::create_dir(&tmp).expect("plant dir");
            std::fs::write(tmp.join("nginx.conf"), "planted").expect("plant file");
            std::fs::remove_file(&web).expect("remove the link");
        }
        other => panic!("unknown case {other}"),
    }
    std::fs::rename(&tmp, &web).expect("replace the visible link");
}

fn web_is_ours(dir: &Path) -> bool {
    std::fs::read_link(dir.join("web")).ok().as_deref()
        == Some(Path::new(&configsnap::disk::visible_link_target("web")))
}

async fn repaired_while_running_and_at_start(case: &str) {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("nginx.conf", "v1")])).expect("web");
    api.apply("configmaps", configmap("api", &[("a.conf", "a1")])).expect("api");
    let ws = Workspace::new(&api);
    let outside = ws.tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("d")).expect("outside dir");
    std::fs::write(outside.join("d/nginx.conf"), "outside").expect("outside file");
    std::fs::write(outside.join("file"), "a file outside").expect("outside file");
    let before = configsnap_kit::fs::tree(&outside);

    let sidecar = ws.start(&["--debounce=0"]);
    wait_for("the first snapshot", WAIT, || ws.read("web/nginx.conf").as_deref() == Some("v1")).await;
    let metric =
        format!("configsnap_visible_link_repairs_total{{entry=\"web\",found=\"{}\"}}", found_label(case));

    // While running: put right as soon as it is noticed, and kept right through a swap.
    plant(case, &ws.dir(), &outside);
    sidecar.wait_metric(&metric, 1.0).await;
    wait_for("web is our link again", WAIT, || web_is_ours(&ws.dir())).await;
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("v1"));
    api.apply("configmaps", configmap("web", &[("nginx.conf", "v2")])).expect("update");
    wait_for("the update is visible through web", WAIT, || {
        ws.read("web/nginx.conf").as_deref() == Some("v2")
    })
    .await;
    let log = sidecar.log();
    assert!(log.contains("a visible link in the target dir was not configsnap's"), "{log}");
    drop(sidecar);

    // At start: planted while nothing ran.
    plant(case, &ws.dir(), &outside);
    let restarted = ws.start(&["--debounce=0"]);
    restarted.wait_metric(&metric, 1.0).await;
    assert!(web_is_ours(&ws.dir()), "repaired at start");
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("v2"));
    api.apply("configmaps", configmap("web", &[("nginx.conf", "v3")])).expect("update");
    wait_for("the next update", WAIT, || ws.read("web/nginx.conf").as_deref() == Some("v3")).await;
    assert_eq!(configsnap_kit::fs::tree(&outside), before, "nothing was written outside --dir");
    if case == "directory" {
        let aside = configsnap_kit::fs::names_with_prefix(&ws.dir(), "..aside-");
        assert_eq!(aside.len(), 2, "each planted directory is kept aside, not deleted: {aside:?}");
        for name in aside {
            assert_eq!(
                std::fs::read_to_string(ws.dir().join(name).join("nginx.conf")).expect("kept"),
                "planted"
            );
        }
    }
    wait_until("still ready", WAIT, || async { restarted.readyz().await.0 == 200 }).await;
}

fn found_label(case: &str) -> &'static str {
    match case {
        "directory" => "directory",
        _ => "link",
    }
}

// Fake API: Kubernetes is incidental (a replaced visible link is repaired); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visible_link_replaced_by_a_link_to_another_directory_is_repaired() {
    repaired_while_running_and_at_start("link-to-dir").await;
}

// Fake API: Kubernetes is incidental (a replaced visible link is repaired); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visible_link_replaced_by_a_link_to_a_file_is_repaired() {
    repaired_while_running_and_at_start("link-to-file").await;
}

// Fake API: Kubernetes is incidental (a replaced visible link is repaired); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visible_link_replaced_by_a_real_directory_is_repaired_and_the_directory_kept_aside() {
    repaired_while_running_and_at_start("directory").await;
}

// Fake API: Kubernetes is incidental (a replaced visible link is repaired); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visible_link_replaced_by_a_dangling_link_is_repaired() {
    repaired_while_running_and_at_start("dangling-link").await;
}
