//! Fail safe and tell the truth: every SIGTERM exits 0, write failures and held or
//! refused snapshots show on `/readyz` and `/metrics`, an emptied selection is held, and
//! an app that refuses a reload gets the last good snapshot back.

use crate::support::{Sidecar, WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::time::Duration;

/// `/readyz`'s `status.state`, and the whole body.
async fn readyz(sidecar: &Sidecar) -> (String, serde_json::Value) {
    let body = sidecar.get("/readyz").await.map(|(_, body)| body).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    (json["status"]["state"].as_str().unwrap_or_default().to_owned(), json)
}

async fn wait_state(sidecar: &Sidecar, state: &str, bound: Duration) -> serde_json::Value {
    wait_until(&format!("/readyz state {state}"), bound, || async { readyz(sidecar).await.0 == state }).await;
    readyz(sidecar).await.1
}

// Fake API: Kubernetes is incidental (SIGTERM exit code); 60 starts, 10 with connections refused on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sigterm_exits_0_synced_50_times_and_during_an_outage_10_times() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    for round in 0..60 {
        let outage = round >= 50;
        api.faults().set_refuse(outage).await.expect("refuse toggle");
        let mut sidecar = ws.start(&["--startup-timeout=200ms"]);
        if outage {
            wait_until("up, the API down", WAIT, || async { sidecar.get("/healthz").await.is_some() }).await;
        } else {
            wait_state(&sidecar, "fresh", WAIT).await;
        }
        sidecar.signal(nix::sys::signal::Signal::SIGTERM);
        let status = sidecar.wait_exit(Duration::from_secs(30)).await;
        assert_eq!(
            status.code(),
            Some(0),
            "round {round} (outage: {outage}) exited {status:?}:\n{}",
            sidecar.log()
        );
    }
}

/// Makes `dir` refuse new entries, for root too (immutable flag), else by mode.
fn freeze(dir: &std::path::Path, frozen: bool) {
    let flag = if frozen { "+i" } else { "-i" };
    let chattr = std::process::Command::new("chattr").arg(flag).arg(dir).status();
    if !chattr.is_ok_and(|s| s.success()) {
        use std::os::unix::fs::PermissionsExt;
        let mode = if frozen { 0o555 } else { 0o755 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

// Fake API: Kubernetes is incidental (a failed write to --dir); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_counted_shown_stale_and_cleared_once_it_lands() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_state(&sidecar, "fresh", WAIT).await;
    let objects = ws.dir().join("..objects");
    freeze(&objects, true);
    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update");
    let body = wait_state(&sidecar, "stale", WAIT).await;
    freeze(&objects, false);
    let reason = body["status"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("writing the snapshot failed"), "{body}");
    assert_eq!(body["lastError"].as_str(), Some(reason.as_str()));
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "the previous files stay");
    let failures = sidecar.metric("configsnap_swap_failures_total{reason=\"permission\"}").await;
    assert!(failures.is_some_and(|n| n >= 1.0), "{failures:?}");
    // The retry lands once the directory takes writes again, and the error clears.
    wait_for("the retried write lands", Duration::from_secs(60), || ws.read("web/a").as_deref() == Some("2"))
        .await;
    let body = wait_state(&sidecar, "fresh", WAIT).await;
    assert!(body["lastError"].is_null(), "{body}");
}

// Fake API: Kubernetes is incidental (a full volume); the WriteFailed Event is read from the fake's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_too_big_for_the_volume_is_held_while_every_other_change_lands() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    api.apply("configmaps", configmap("api", &[("b", "1")])).expect("api");
    let ws = Workspace::new(&api);
    // No file of the sidecar may grow past 256 KiB (`ulimit -f` counts 512-byte blocks);
    // SIGXFSZ ignored, so a write past it fails with EFBIG, as ENOSPC would on a full volume.
    let limit = Some("trap '' XFSZ && ulimit -f 512".to_owned());
    let sidecar = ws.start_in_shell(limit, &["--debounce=0", "--max-wait=0"]);
    wait_state(&sidecar, "fresh", WAIT).await;
    let big = "x".repeat(400 * 1024);
    api.apply("configmaps", configmap("web", &[("a", &big)])).expect("grow web");
    api.apply("configmaps", configmap("api", &[("b", "2")])).expect("update api");
    wait_for("api's change lands without web's", WAIT, || ws.read("api/b").as_deref() == Some("2")).await;
    let body = wait_state(&sidecar, "stale", WAIT).await;
    let reason = body["status"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("web") && reason.contains("do not fit"), "{body}");
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "web's previous files stay");
    // Retried (each attempt counted), reported once per version, on the object too.
    sidecar.wait_metric("configsnap_swap_failures_total{reason=\"file_too_large\"}", 2.0).await;
    assert_eq!(
        sidecar.log_count(
            "object does not fit on the volume; its previous files stay, every other change is applied"
        ),
        1,
        "{}",
        sidecar.log()
    );
    wait_until("a WriteFailed Event on web", WAIT, || async {
        api.events(crate::support::NS)
            .iter()
            .any(|e| e["reason"] == "WriteFailed" && e["regarding"]["name"] == "web")
    })
    .await;
    assert_eq!(ws.read("api/b").as_deref(), Some("2"), "the retries keep the other change");
    crate::support::assert_complete_snapshot(&ws.dir());
    // Once it fits it lands, and the error clears.
    api.apply("configmaps", configmap("web", &[("a", "3")])).expect("shrink web");
    wait_for("web's fitting version lands", WAIT, || ws.read("web/a").as_deref() == Some("3")).await;
    let body = wait_state(&sidecar, "fresh", WAIT).await;
    assert!(body["lastError"].is_null(), "{body}");
    crate::support::assert_complete_snapshot(&ws.dir());
}

// Fake API: Kubernetes is incidental (a full volume at the very first sync); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_snapshot_whose_only_object_does_not_fit_is_retried_not_held_as_an_empty_selection() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", &"x".repeat(400 * 1024))])).expect("web");
    let ws = Workspace::new(&api);
    // As above: no file may grow past 256 KiB, so web never fits.
    let limit = Some("trap '' XFSZ && ulimit -f 512".to_owned());
    let sidecar = ws.start_in_shell(limit, &["--debounce=0", "--max-wait=0"]);
    // Retried with no new change (the original failure and at least one retry)…
    sidecar.wait_metric("configsnap_swap_failures_total{reason=\"file_too_large\"}", 2.0).await;
    // …and never mistaken for an emptied selection (what is left without web is nothing).
    let held = sidecar.metric("configsnap_snapshots_refused_total{reason=\"empty_selection\"}").await;
    assert!(held.unwrap_or(0.0) == 0.0, "held as empty: {held:?}\n{}", sidecar.log());
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("shrink web");
    wait_for("web's fitting version lands", WAIT, || ws.read("web/a").as_deref() == Some("1")).await;
    crate::support::assert_complete_snapshot(&ws.dir());
}

/// A tmpfs of `size` mounted on `at` until dropped; `None` when mounting is not allowed.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Self> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then(|| Self(at.to_owned()))
    }

    /// [`Tmpfs::mount`], failing the test when it cannot mount (it needs root, or
    /// CAP_SYS_ADMIN) unless `CONFIGSNAP_ALLOW_SKIP` is set: never `ok` having checked nothing.
    fn mount_or_skip(at: &std::path::Path, size: &str) -> Option<Self> {
        let mounted = Self::mount(at, size);
        if mounted.is_none() {
            assert!(
                std::env::var_os("CONFIGSNAP_ALLOW_SKIP").is_some(),
                "could not mount a {size} tmpfs (run the tests as root, or set CONFIGSNAP_ALLOW_SKIP=1 to skip this test)"
            );
            eprintln!("SKIPPED (CONFIGSNAP_ALLOW_SKIP): mounting a tmpfs needs root");
        }
        mounted
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// Fake API: Kubernetes is incidental (a full tmpfs); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_fits_only_without_the_new_root_is_held_while_every_other_change_lands() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("v", "0")])).expect("web");
    api.apply("configmaps", configmap("big", &[("blob", "small")])).expect("big");
    let ws = Workspace::new(&api);
    let Some(_volume) = Tmpfs::mount_or_skip(&ws.dir(), "300k") else { return };
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_for("the first snapshot", WAIT, || ws.read("web/v").as_deref() == Some("0")).await;
    // From a volume the new object does not fill to one it fills to the last page, so
    // that the root manifest written after it is what finds no room (4 KiB pages).
    for step in 1..=10 {
        let blob = "x".repeat(260 * 1024 + step * 4096 - 100);
        api.apply("configmaps", configmap("big", &[("blob", &blob)])).expect("grow big");
        api.apply("configmaps", configmap("web", &[("v", &step.to_string())])).expect("update web");
        let want = step.to_string();
        wait_for(&format!("web's change with big at {} bytes", blob.len()), WAIT, || {
            ws.read("web/v").as_deref() == Some(want.as_str())
        })
        .await;
        crate::support::assert_complete_snapshot(&ws.dir());
        api.apply("configmaps", configmap("big", &[("blob", "small")])).expect("shrink big");
        wait_for("big shrunk", WAIT, || ws.read("big/blob").as_deref() == Some("small")).await;
    }
    let full = sidecar.metric("configsnap_swap_failures_total{reason=\"no_space\"}").await;
    assert!(full.unwrap_or_default() >= 1.0, "the volume never filled up: {}", sidecar.log());
}

// Fake API: Kubernetes is incidental (a full tmpfs); WriteFailed Events are read from the fake's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_objects_too_big_at_once_are_each_told_about_while_the_rest_lands() {
    let api = FakeApiServer::start().await.expect("fake api");
    for name in ["web", "a", "b"] {
        api.apply("configmaps", configmap(name, &[("v", "0")])).expect("configmap");
    }
    let ws = Workspace::new(&api);
    let Some(_volume) = Tmpfs::mount_or_skip(&ws.dir(), "300k") else { return };
    let sidecar = ws.start(&["--debounce=200ms", "--max-wait=1s"]);
    wait_for("the first snapshot", WAIT, || ws.read("web/v").as_deref() == Some("0")).await;
    api.apply("configmaps", configmap("a", &[("v", &"a".repeat(500 * 1024))])).expect("grow a");
    api.apply("configmaps", configmap("b", &[("v", &"b".repeat(400 * 1024))])).expect("grow b");
    api.apply("configmaps", configmap("web", &[("v", "1")])).expect("update web");
    wait_for("web's change without a's and b's", WAIT, || ws.read("web/v").as_deref() == Some("1")).await;
    for name in ["a", "b"] {
        wait_until(&format!("a WriteFailed Event on {name}"), WAIT, || async {
            api.events(crate::support::NS)
                .iter()
                .any(|e| e["reason"] == "WriteFailed" && e["regarding"]["name"] == name)
        })
        .await;
        assert_eq!(ws.read(&format!("{name}/v")).as_deref(), Some("0"), "{name}'s previous files stay");
    }
    let told = "object does not fit on the volume; its previous files stay, every other change is applied";
    assert_eq!(sidecar.log_count(told), 2, "{}", sidecar.log());
    crate::support::assert_complete_snapshot(&ws.dir());
}

// Fake API: Kubernetes is incidental (empty-selection hold, last-good copy); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_object_is_held_with_the_files_and_last_good_kept() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    api.apply("configmaps", configmap("api", &[("b", "1")])).expect("api");
    let ws = Workspace::new(&api);
    let state = format!("--state-dir={}", ws.state().display());
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0", &state]);
    wait_state(&sidecar, "fresh", WAIT).await;
    // Deleting some objects removes their files at once.
    api.delete("configmaps", crate::support::NS, "api").expect("delete api");
    wait_for("api's files go", WAIT, || std::fs::symlink_metadata(ws.dir().join("api")).is_err()).await;
    wait_for("last-good follows", WAIT, || {
        configsnap::disk::read_current(&ws.state()).ok().flatten().is_some_and(|s| s.object_count() == 1)
    })
    .await;
    // Deleting the last one is held.
    api.delete("configmaps", crate::support::NS, "web").expect("delete web");
    let body = wait_state(&sidecar, "stale", WAIT).await;
    assert!(body["status"]["reason"].as_str().is_some_and(|r| r.contains("--allow-empty")), "{body}");
    sidecar.wait_metric("configsnap_snapshots_refused_total{reason=\"empty_selection\"}", 1.0).await;
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "the files stay");
    let saved = configsnap::disk::read_current(&ws.state()).expect("read").expect("a copy");
    assert_eq!(saved.read("web/a"), Some(b"1".to_vec()), "the last-good copy stays");
    assert_eq!(sidecar.get("/readyz").await.map(|r| r.0), Some(200), "the kept files are still a snapshot");
    // A new object ends the hold.
    api.apply("configmaps", configmap("next", &[("c", "1")])).expect("next");
    wait_for("the new object lands", WAIT, || ws.read("next/c").is_some()).await;
    wait_state(&sidecar, "fresh", WAIT).await;
    drop(sidecar);

    // With --allow-empty the selection empties.
    let allowed = ws.start(&["--debounce=0", "--max-wait=0", "--allow-empty"]);
    wait_state(&allowed, "fresh", WAIT).await;
    api.delete("configmaps", crate::support::NS, "next").expect("delete next");
    wait_for("emptied", WAIT, || std::fs::symlink_metadata(ws.dir().join("next")).is_err()).await;
}

// Fake API: Kubernetes is incidental (an empty selection is not ready); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_empty_at_start_is_not_ready_and_says_why() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let typo = ws.start(&["--name=wbe"]);
    let body = wait_state(&typo, "stale", WAIT).await;
    assert!(body["status"]["reason"].as_str().is_some_and(|r| r.contains("no object matches")), "{body}");
    assert_eq!(typo.get("/readyz").await.map(|r| r.0), Some(503));
    assert!(ws.data_target().is_none(), "nothing is written for an empty selection");
}

// Fake API: Kubernetes is incidental (webhook refusal, rollback); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_reload_rolls_back_and_an_unreachable_one_is_retried() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("mode", "good")])).expect("good");
    let ws = Workspace::new(&api);
    // The app answers 500 to a reload while its config says bad, like Prometheus.
    let config = ws.dir().join("app/mode");
    let reloads = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = reloads.clone();
    let url = crate::support::http_server(move |_| {
        let mode = std::fs::read_to_string(&config).unwrap_or_default();
        seen.lock().expect("lock").push(mode.clone());
        async move { if mode.starts_with("bad") { 500 } else { 200 } }
    })
    .await;
    let sidecar = ws.start(&[
        &format!("--webhook-url={url}/-/reload"),
        "--webhook-retries=1",
        "--debounce=0",
        "--max-wait=0",
    ]);
    wait_state(&sidecar, "fresh", WAIT).await;
    api.apply("configmaps", configmap("app", &[("mode", "bad")])).expect("bad");
    sidecar.wait_metric("configsnap_rollbacks_total", 1.0).await;
    assert_eq!(ws.read("app/mode").as_deref(), Some("good"), "the good files are back");
    wait_for("the app reloaded the good files again", WAIT, || {
        reloads.lock().expect("lock").last().is_some_and(|m| m == "good")
    })
    .await;
    let body = wait_state(&sidecar, "stale", WAIT).await;
    assert!(body["status"]["reason"].as_str().is_some_and(|r| r.contains("answered 500")), "{body}");
    // The bad content stays blocked; a fix goes through.
    api.apply("configmaps", configmap("app", &[("mode", "good-2")])).expect("fixed");
    wait_for("the fix lands", WAIT, || ws.read("app/mode").as_deref() == Some("good-2")).await;
    wait_state(&sidecar, "fresh", WAIT).await;
    drop(sidecar);

    // An unreachable webhook is no refusal: the new files stay and the call is retried.
    let closed = format!("http://127.0.0.1:{}/-/reload", crate::support::free_port());
    let unreachable = ws.start(&[&format!("--webhook-url={closed}"), "--webhook-retries=0", "--debounce=0"]);
    wait_state(&unreachable, "fresh", WAIT).await;
    api.apply("configmaps", configmap("app", &[("mode", "good-3")])).expect("update");
    wait_for("the update lands", WAIT, || ws.read("app/mode").as_deref() == Some("good-3")).await;
    wait_until("the reload is retried", WAIT, || async {
        unreachable
            .metric("configsnap_reloads_total{method=\"webhook\",result=\"failure\"}")
            .await
            .is_some_and(|n| n >= 2.0)
    })
    .await;
    assert_eq!(unreachable.metric("configsnap_rollbacks_total").await, Some(0.0));
    assert_eq!(ws.read("app/mode").as_deref(), Some("good-3"));
}

// Fake API: Kubernetes is incidental (a flag usage error); the fake only backs the kubeconfig.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_url_without_a_reload_method_is_a_usage_error() {
    let api = FakeApiServer::start().await.expect("fake api");
    let ws = Workspace::new(&api);
    let mut sidecar = ws.start(&["--verify-url=http://127.0.0.1:1/health"]);
    let status = sidecar.wait_exit(WAIT).await;
    assert_eq!(status.code(), Some(64), "{}", sidecar.log());
    assert!(sidecar.log().contains("needs a reload method"), "{}", sidecar.log());
}

// Fake API: Kubernetes is incidental (an unwritable --dir at start); the fake only backs the kubeconfig.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_dir_it_may_not_write_to_is_a_usage_error() {
    let api = FakeApiServer::start().await.expect("fake api");
    let ws = Workspace::new(&api);
    std::fs::create_dir_all(ws.dir()).expect("dir");
    freeze(&ws.dir(), true);
    let mut sidecar = ws.start(&[]);
    let status = sidecar.wait_exit(WAIT).await;
    freeze(&ws.dir(), false);
    assert_eq!(status.code(), Some(64), "{}", sidecar.log());
    let log = sidecar.log();
    assert!(log.contains("Operation not permitted") || log.contains("Permission denied"), "{log}");
}

/// A fake API with `web` (a=1), and a target dir holding its snapshot, no sidecar running.
async fn with_a_snapshot_on_disk() -> (FakeApiServer, Workspace) {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[]);
    wait_state(&sidecar, "fresh", WAIT).await;
    drop(sidecar);
    (api, ws)
}

// Fake API: Kubernetes is incidental (a read-only --dir, degraded); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_dir_that_refuses_writes_at_start_serves_its_snapshot_degraded_until_writable() {
    let (api, ws) = with_a_snapshot_on_disk().await;

    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update while stopped");
    freeze(&ws.dir(), true);
    let sidecar = ws.start(&["--debounce=0"]);
    let body = wait_state(&sidecar, "degraded", WAIT).await;
    let (code, _) = sidecar.readyz().await;
    assert_eq!(code, 200, "the app has a complete snapshot to read: {body}");
    let reason = body["status"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refuses writes"), "{body}");
    sidecar.wait_metric("configsnap_target_writable", 0.0).await;
    sidecar.wait_metric("configsnap_degraded", 1.0).await;
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "the files on disk stay");

    freeze(&ws.dir(), false);
    // The write is retried with backoff (at most 30 s apart): a bounded wait for it.
    wait_for("the update lands once the dir takes writes", Duration::from_secs(90), || {
        ws.read("web/a").as_deref() == Some("2")
    })
    .await;
    wait_state(&sidecar, "fresh", WAIT).await;
    sidecar.wait_metric("configsnap_target_writable", 1.0).await;
    sidecar.wait_metric("configsnap_degraded", 0.0).await;

    // The same when the dir starts refusing writes while configsnap runs.
    freeze(&ws.dir(), true);
    api.apply("configmaps", configmap("web", &[("a", "3")])).expect("update while frozen");
    wait_state(&sidecar, "degraded", WAIT).await;
    sidecar.wait_metric("configsnap_target_writable", 0.0).await;
    assert_eq!(sidecar.readyz().await.0, 200);
    freeze(&ws.dir(), false);
    wait_for("the update lands once writable again", Duration::from_secs(90), || {
        ws.read("web/a").as_deref() == Some("3")
    })
    .await;
    wait_state(&sidecar, "fresh", WAIT).await;
}

// Fake API: Kubernetes is incidental (a damaged snapshot on a read-only --dir); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_dir_that_refuses_writes_with_a_damaged_snapshot_is_a_usage_error() {
    let (_api, ws) = with_a_snapshot_on_disk().await;
    let file = std::fs::canonicalize(ws.dir().join("web/a")).expect("resolve");
    std::fs::remove_file(&file).expect("damage the snapshot");
    freeze(&ws.dir(), true);
    let mut sidecar = ws.start(&[]);
    let status = sidecar.wait_exit(WAIT).await;
    freeze(&ws.dir(), false);
    assert_eq!(status.code(), Some(64), "{}", sidecar.log());
}
