//! `--validate-cmd` with validators that walk the staged directory instead of naming a
//! file (`grep -r`, `find` without `-L`, a Python `os.walk`): each must see every file of
//! the snapshot, so a planted bad value is refused and the previous files stay.

use crate::support::{WAIT, Workspace, configmap, wait_for};
use fake_apiserver::FakeApiServer;

/// A Python walker that follows no link (like Go's `filepath.WalkDir`): fails on a file
/// holding BAD, and on a snapshot in which it found no file at all.
const PY_WALKER: &str = r"
import os, sys
root = os.environ['CONFIGSNAP_STAGED_DIR']
seen = 0
for base, dirs, files in os.walk(root):
    for name in files:
        path = os.path.join(base, name)
        if os.path.islink(path):
            continue
        seen += 1
        if b'BAD' in open(path, 'rb').read():
            print('bad value in', os.path.relpath(path, root)); sys.exit(1)
sys.exit(0 if seen else 2)
";

async fn refuses_a_planted_bad_value(validator: &str) {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("nginx.conf", "good")])).expect("web");
    api.apply("configmaps", configmap("other", &[("x.conf", "x1")])).expect("other");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[&format!("--validate-cmd={validator}"), "--debounce=0"]);
    wait_for("the first snapshot lands", WAIT, || ws.read("web/nginx.conf").as_deref() == Some("good")).await;
    // What the README tells an app that walks the volume: below `web/` (trailing slash),
    // real files; at the top, only links.
    let below_web: Vec<(String, bool)> = std::fs::read_dir(ws.dir().join("web/"))
        .expect("list web/")
        .map(|e| e.expect("entry"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.file_type().expect("type").is_file()))
        .collect();
    assert!(below_web.contains(&("nginx.conf".to_owned(), true)), "{below_web:?}");
    let top = std::fs::symlink_metadata(ws.dir().join("web")).expect("web");
    assert!(top.file_type().is_symlink());
    let refused = "configsnap_snapshots_refused_total{reason=\"command\"}";
    api.apply("configmaps", configmap("web", &[("nginx.conf", "BAD value")])).expect("bad");
    sidecar.wait_metric(refused, 1.0).await;
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("good"), "{validator}: the old file stays");
    api.apply("configmaps", configmap("other", &[("x.conf", "x2")])).expect("other, while web is bad");
    sidecar.wait_metric(refused, 2.0).await;
    api.apply("configmaps", configmap("web", &[("nginx.conf", "fixed")])).expect("fixed");
    wait_for("the fix lands", WAIT, || ws.read("web/nginx.conf").as_deref() == Some("fixed")).await;
    assert_eq!(ws.read("other/x.conf").as_deref(), Some("x2"));
    let views = configsnap_kit::fs::names_with_prefix(&ws.dir(), "..staged-");
    assert_eq!(views.len(), 1, "one validation view, kept and updated: {views:?}");
}

// Fake API: Kubernetes is incidental (--validate-cmd walking the staged dir); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grep_r_on_the_staged_dir_refuses_a_bad_value() {
    refuses_a_planted_bad_value("! grep -rq BAD $CONFIGSNAP_STAGED_DIR").await;
}

// Fake API: Kubernetes is incidental (--validate-cmd walking the staged dir); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_without_l_on_the_staged_dir_refuses_a_bad_value() {
    // find prints each regular file holding BAD; any output fails the check. `-type f`
    // without `-L` matches no symlink: it sees the files only if they are real.
    refuses_a_planted_bad_value(
        "test -z \"$(find $CONFIGSNAP_STAGED_DIR -type f -exec grep -l BAD {} +)\" \
         && test -n \"$(find $CONFIGSNAP_STAGED_DIR -type f -name '*.conf')\"",
    )
    .await;
}

// Fake API: Kubernetes is incidental (--validate-cmd walking the staged dir); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_walker_that_follows_no_link_refuses_a_bad_value() {
    let python = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| std::process::Command::new(p).arg("-c").arg("pass").status().is_ok_and(|s| s.success()));
    let python = python.expect("python3 is needed by this test: install it (apt-get install python3)");
    let walker = serde_json::to_string(&[python, "-c", PY_WALKER]).expect("json");
    refuses_a_planted_bad_value(&walker).await;
}
