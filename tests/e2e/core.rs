//! Core pipeline: API → snapshot → atomic swap (issue: core).

use crate::support::{NS, WAIT, Workspace, assert_complete_snapshot, configmap, wait_for};
use fake_apiserver::FakeApiServer;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

async fn swaps(sidecar: &crate::support::Sidecar) -> f64 {
    sidecar.metric("configsnap_swaps_total").await.unwrap_or(-1.0)
}

async fn wait_swaps(sidecar: &crate::support::Sidecar, n: f64) {
    let started = std::time::Instant::now();
    loop {
        let current = swaps(sidecar).await;
        if current >= n {
            assert_eq!(current, n, "more swaps than expected; log:\n{}", sidecar.log());
            return;
        }
        assert!(started.elapsed() < WAIT, "waiting for {n} swaps, have {current}; log:\n{}", sidecar.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// Fake API: Kubernetes is incidental (bytes, modes, manifests on disk); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_writes_selected_configmaps_with_exact_bytes_and_modes() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply(
        "configmaps",
        configmap("web", &[("nginx.conf", "events {}\n"), ("index.html", "<h1>v1</h1>")]),
    )
    .expect("web");
    let binary = FakeApiServer::configmap(NS, "blob")
        .label("configsnap.io/include", "true")
        .binary("data.bin", [0_u8, 1, 2, 255, 254, 0])
        .build();
    api.apply("configmaps", binary).expect("blob");
    let private = FakeApiServer::configmap(NS, "private")
        .label("configsnap.io/include", "true")
        .annotation("configsnap.io/file-mode", "0600")
        .data("token.txt", "s")
        .build();
    api.apply("configmaps", private).expect("private");
    api.apply("configmaps", FakeApiServer::configmap(NS, "other").data("x", "y").build())
        .expect("unselected");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[]);
    wait_for("initial files", WAIT, || ws.read("private/token.txt").is_some()).await;
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("events {}\n"));
    assert_eq!(ws.read("web/index.html").as_deref(), Some("<h1>v1</h1>"));
    assert_eq!(std::fs::read(ws.dir().join("blob/data.bin")).expect("binary"), [0, 1, 2, 255, 254, 0]);
    let mode = |rel: &str| std::fs::metadata(ws.dir().join(rel)).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode("private/token.txt"), 0o600);
    assert_eq!(mode("web/nginx.conf"), 0o644);
    assert!(!ws.dir().join("other").exists(), "an unselected ConfigMap was written");
    let json = |path: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(ws.dir().join(path)).expect("manifest");
        serde_json::from_str(&text).expect("manifest json")
    };
    let root = json("..data/..manifest.json");
    assert_eq!(root["objects"], 3);
    assert!(root["hash"].as_str().is_some_and(|h| h.starts_with("sha256:")));
    let web = json("web/..manifest.json");
    assert_eq!(web["source"]["namespace"], NS);
    assert_eq!(web["source"]["name"], "web");
    assert_eq!(web["files"].as_array().map(Vec::len), Some(2));
    drop(sidecar);
}

// Fake API: Kubernetes is incidental (one swap per change); the same kubectl flows run in real_apiserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_add_delete_and_label_removal_each_swap_once() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    // The label removal empties the selection: allowed here, held by default (see failsafe).
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0", "--allow-empty"]);
    wait_swaps(&sidecar, 1.0).await;

    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update");
    wait_for("update", WAIT, || ws.read("web/a").as_deref() == Some("2")).await;
    wait_swaps(&sidecar, 2.0).await;
    assert_complete_snapshot(&ws.dir());

    api.apply("configmaps", configmap("extra", &[("b", "1")])).expect("add");
    wait_for("add", WAIT, || ws.read("extra/b").is_some()).await;
    wait_swaps(&sidecar, 3.0).await;
    assert_complete_snapshot(&ws.dir());

    api.delete("configmaps", NS, "extra").expect("delete");
    wait_for("delete", WAIT, || !ws.dir().join("extra").exists()).await;
    wait_swaps(&sidecar, 4.0).await;
    assert_complete_snapshot(&ws.dir());

    api.apply("configmaps", FakeApiServer::configmap(NS, "web").data("a", "2").build()).expect("unlabel");
    wait_for("label removal", WAIT, || !ws.dir().join("web").exists()).await;
    wait_swaps(&sidecar, 5.0).await;
    assert_complete_snapshot(&ws.dir());

    // A sentinel change proves no late extra swap is pending: it must be the 6th.
    api.apply("configmaps", configmap("sentinel", &[("s", "1")])).expect("sentinel");
    wait_for("sentinel", WAIT, || ws.read("sentinel/s").is_some()).await;
    wait_swaps(&sidecar, 6.0).await;
    let target = ws.data_target().expect("..data");
    assert!(ws.dir().join(&target).join("..manifest.json").exists());
}

// Fake API: Kubernetes is incidental (atomic swap under a reader); 200 quick in-process updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_a_mixed_snapshot_during_200_swaps() {
    const SWAPS: usize = 200;
    let api = FakeApiServer::start().await.expect("fake api");
    let version = |n: usize| {
        let body = format!("version={n};{}", "x".repeat(4096));
        configmap("app", &[("a.conf", &body), ("b.conf", &body)])
    };
    api.apply("configmaps", version(0)).expect("v0");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_for("v0", WAIT, || ws.read("app/a.conf").is_some()).await;

    let dir = ws.dir();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut reads, mut pairs) = (0_u64, 0_u64);
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                // Through the visible link: each file is whole.
                if let Ok(text) = std::fs::read_to_string(dir.join("app/a.conf")) {
                    assert!(
                        text.starts_with("version=") && text.len() == text.find(';').expect(";") + 4097,
                        "torn file"
                    );
                    reads += 1;
                }
                // Through one resolved ..data: both files are of the same version.
                if let Ok(target) = std::fs::read_link(dir.join("..data")) {
                    let slot = configsnap::disk::visible_link_target("app");
                    let app = dir.join(&target).join(slot.trim_start_matches("..data/"));
                    let a = std::fs::read_to_string(app.join("a.conf"));
                    let b = std::fs::read_to_string(app.join("b.conf"));
                    if let (Ok(a), Ok(b)) = (a, b) {
                        assert_eq!(a, b, "mixed snapshot in {target:?}");
                        pairs += 1;
                    }
                }
            }
            (reads, pairs)
        })
    };
    for n in 1..=SWAPS {
        api.apply("configmaps", version(n)).expect("update");
        let expected = format!("version={n};");
        wait_for("each version", WAIT, || ws.read("app/a.conf").is_some_and(|t| t.starts_with(&expected)))
            .await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, pairs) = reader.join().expect("reader saw only whole snapshots");
    assert!(reads > 0 && pairs > 0, "the reader read nothing ({reads}, {pairs})");
    let swaps = sidecar.metric("configsnap_swaps_total").await.expect("swaps");
    assert!(swaps >= SWAPS as f64, "{swaps} swaps");
}

// Fake API: serves keys ("..data", "../x") a real server refuses to store (apply_unvalidated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_keys_are_rejected_while_other_configmaps_update() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("good", &[("a", "1")])).expect("good");
    api.apply("configmaps", configmap("bad", &[("ok", "1")])).expect("bad v1");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_for("initial", WAIT, || ws.read("bad/ok").is_some()).await;
    for key in ["..data", "../x"] {
        api.apply_unvalidated("configmaps", configmap("bad", &[("ok", "2"), (key, "evil")]));
        let n = api.current_resource_version();
        api.apply("configmaps", configmap("good", &[("a", &n.to_string())])).expect("good update");
        wait_for("the good update", WAIT, || ws.read("good/a") == Some(n.to_string())).await;
        assert_eq!(ws.read("bad/ok").as_deref(), Some("1"), "the bad ConfigMap's previous files must stay");
    }
    assert!(!ws.tmp.path().join("x").exists());
    let rejected = sidecar.metric("configsnap_rejected_objects_total{reason=\"invalid_key\"}").await;
    assert_eq!(rejected, Some(2.0));
    assert!(sidecar.log().contains("object rejected"), "{}", sidecar.log());
}

// Fake API: Kubernetes is incidental (a planted symlink in --dir); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_the_target_dir_is_not_followed() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("nginx.conf", "x")])).expect("web");
    let ws = Workspace::new(&api);
    let outside = ws.tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    std::os::unix::fs::symlink(&outside, ws.dir().join("web")).expect("plant");
    let _sidecar = ws.start(&[]);
    wait_for("swap", WAIT, || ws.data_target().is_some()).await;
    wait_for("visible link replaced", WAIT, || {
        std::fs::read_link(ws.dir().join("web"))
            .is_ok_and(|t| t == std::path::Path::new(&configsnap::disk::visible_link_target("web")))
    })
    .await;
    assert_eq!(std::fs::read_dir(&outside).expect("outside").count(), 0, "wrote through a planted link");
    assert_eq!(ws.read("web/nginx.conf").as_deref(), Some("x"));
}

// Fake API: Kubernetes is incidental (crash leftovers in --dir); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crash_are_cleaned_at_start_and_foreign_files_kept() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let orphan = ws.dir().join("..2020_01_01_00_00_00.000000001");
    std::fs::create_dir_all(orphan.join("web")).expect("orphan");
    std::fs::write(orphan.join("web/a"), "half").expect("half file");
    std::os::unix::fs::symlink("..2020_01_01_00_00_00.000000001", ws.dir().join("..data_tmp"))
        .expect("tmp link");
    std::fs::write(ws.dir().join("keep.txt"), "not ours").expect("foreign file");
    let _sidecar = ws.start(&[]);
    wait_for("sync", WAIT, || ws.read("web/a").as_deref() == Some("1")).await;
    assert!(!orphan.exists(), "orphan snapshot dir left");
    assert!(std::fs::symlink_metadata(ws.dir().join("..data_tmp")).is_err(), "..data_tmp left");
    assert_eq!(ws.read("keep.txt").as_deref(), Some("not ours"));
}
