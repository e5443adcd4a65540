//! Operating it: probes, metrics, logs, shutdown, `--once`, `--from-dir`, Secrets.

use crate::support::{NS, Sidecar, WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

async fn readyz(sidecar: &Sidecar) -> Option<(u16, serde_json::Value)> {
    let (code, body) = sidecar.get("/readyz").await?;
    Some((code, serde_json::from_str(&body).ok()?))
}

async fn state_is(sidecar: &Sidecar, code: u16, state: &str) -> bool {
    readyz(sidecar).await.is_some_and(|(c, body)| c == code && body["status"]["state"] == state)
}

// Fake API: connections refused before the first sync and lifted on demand; real outages are in outage.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_first_sync_and_the_api_outage_while_healthz_stays_up() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    api.faults().set_refuse(true).await.expect("refuse");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[]);
    wait_until("unready before the first sync", WAIT, || async {
        readyz(&sidecar).await.is_some_and(|(code, _)| code == 503)
    })
    .await;
    assert_eq!(sidecar.get("/healthz").await.map(|r| r.0), Some(200));

    api.faults().set_refuse(false).await.expect("accept");
    wait_until("ready and fresh", Duration::from_secs(40), || state_is(&sidecar, 200, "fresh")).await;
    assert_eq!(ws.read("web/a").as_deref(), Some("1"));

    api.faults().set_refuse(true).await.expect("refuse");
    wait_until("degraded in the outage", WAIT, || state_is(&sidecar, 200, "degraded")).await;
    sidecar.wait_metric("configsnap_degraded", 1.0).await;
    assert_eq!(sidecar.get("/healthz").await.map(|r| r.0), Some(200));

    api.faults().set_refuse(false).await.expect("accept");
    wait_until("fresh after recovery", Duration::from_secs(40), || state_is(&sidecar, 200, "fresh")).await;
    sidecar.wait_metric("configsnap_degraded", 0.0).await;
}

// Fake API: Kubernetes is incidental (/metrics); the rejection needs a key ("../x") a real server refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_for_a_swap_a_rejection_and_a_failed_reload() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let missing_pid = ws.tmp.path().join("no.pid");
    let sidecar =
        ws.start(&[&format!("--pid-file={}", missing_pid.display()), "--debounce=0", "--max-wait=0"]);
    sidecar.wait_metric("configsnap_swaps_total", 1.0).await;
    let (_, text) = sidecar.get("/metrics").await.expect("metrics");
    let samples = crate::support::metrics::parse(&text).expect("valid exposition");
    assert_eq!(samples.get("configsnap_selected_objects"), Some(&1.0));
    assert!(samples.contains_key("configsnap_build_info{version=\"0.1.0\"}"), "{text}");
    assert!(samples.contains_key("configsnap_swap_duration_seconds_count"), "{text}");

    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update");
    sidecar.wait_metric("configsnap_swaps_total", 2.0).await;
    sidecar.wait_metric("configsnap_reloads_total{method=\"signal\",result=\"failure\"}", 1.0).await;
    api.apply_unvalidated("configmaps", configmap("bad", &[("../x", "1")]));
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"invalid_key\"}", 1.0).await;
    let (_, text) = sidecar.get("/metrics").await.expect("metrics");
    let samples = crate::support::metrics::parse(&text).expect("valid exposition");
    assert!(samples["configsnap_last_sync_timestamp_seconds"] > 1.7e9);
    assert!(samples["configsnap_event_to_swap_seconds_count"] >= 1.0);
}

// Fake API: Kubernetes is incidental (logs, SIGTERM); 400 updates 2 ms apart from an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_sigterm_exits_zero_with_a_complete_snapshot() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    let mut sidecar = ws.start(&["--debounce=0", "--max-wait=0", "--shutdown-grace=5s"]);
    wait_for("first sync", WAIT, || ws.read("web/a").is_some()).await;
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for n in 1..=400 {
                let _ = api.apply("configmaps", configmap("web", &[("a", &n.to_string())]));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    wait_for("updates streaming", WAIT, || ws.read("web/a").is_some_and(|v| v != "0")).await;
    sidecar.signal(nix::sys::signal::Signal::SIGTERM);
    let status = sidecar.wait_exit(Duration::from_secs(6)).await;
    writer.abort();
    assert!(status.success(), "exit status {status:?}; log:\n{}", sidecar.log());
    crate::support::assert_complete_snapshot(&ws.dir());
    let log = sidecar.log();
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.is_object() && value["level"].is_string(), "{line}");
    }
    assert!(sidecar.log_count("snapshot swapped") >= 1, "{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
}

// Fake API: Kubernetes is incidental (--once exit codes); the dead API is connections refused on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_writes_and_exits_zero_and_fails_with_one_line_against_a_dead_api() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let mut once = ws.start(&["--once"]);
    let status = once.wait_exit(WAIT).await;
    assert!(status.success(), "{}", once.log());
    assert_eq!(ws.read("web/a").as_deref(), Some("1"));

    api.faults().set_refuse(true).await.expect("refuse");
    let empty = Workspace::new(&api);
    let mut dead = empty.start(&["--once", "--startup-timeout=1s"]);
    let status = dead.wait_exit(WAIT).await;
    assert_eq!(status.code(), Some(1), "{}", dead.log());
    let log = dead.log();
    let last = log.lines().last().expect("a reason");
    assert!(last.starts_with("configsnap: failed to get a first state"), "{last}");
}

// Fake API: Kubernetes is incidental (--once exit code when the app refuses); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_one_when_the_app_refuses_the_reload_even_without_rollback() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    // `false` exits 1: the app refuses. Without rollback the files stay, but the run failed.
    let mut once = ws.start(&["--once", "--reload-on-start", "--rollback-on-refusal=false", "--exec=false"]);
    let status = once.wait_exit(WAIT).await;
    assert_eq!(status.code(), Some(1), "{}", once.log());
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "no rollback: the refused files stay");
}

// Fake API: Kubernetes is incidental (Secret file modes, no value leaked); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_written_0600_and_their_values_never_logged_or_exported() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let secret = FakeApiServer::secret(NS, "creds")
        .label("configsnap.io/include", "true")
        .data("password", "hunter2-SECRET")
        .build();
    api.apply("secrets", secret).expect("secret");
    let clash = FakeApiServer::secret(NS, "web")
        .label("configsnap.io/include", "true")
        .data("a", "other-SECRET")
        .build();
    api.apply("secrets", clash).expect("clashing secret");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--secrets"]);
    wait_for("secret written", WAIT, || ws.read("creds/password").is_some()).await;
    assert_eq!(ws.read("creds/password").as_deref(), Some("hunter2-SECRET"));
    let mode = std::fs::metadata(ws.dir().join("creds/password")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "the ConfigMap keeps its name; the Secret collides");
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"collision\"}", 1.0).await;
    let (_, metrics) = sidecar.get("/metrics").await.expect("metrics");
    let (_, status) = sidecar.get("/readyz").await.expect("readyz");
    for text in [sidecar.log(), metrics, status] {
        assert!(!text.contains("SECRET"), "a secret value leaked: {text}");
    }
}

/// Writes a kubelet-style ConfigMap volume update into `dir`: new timestamped dir,
/// `..data_tmp` link renamed over `..data`, visible links, old dir removed.
fn kubelet_write(dir: &std::path::Path, version: u32, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("volume dir");
    let stamp = format!("..2026_01_01_00_00_{version:02}.000000001");
    for (path, content) in files {
        let file = dir.join(&stamp).join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, content).expect("write");
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(&stamp, dir.join("..data_tmp")).expect("data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    for (path, _) in files {
        let top = path.split('/').next().expect("top");
        let _ = std::os::unix::fs::symlink(format!("..data/{top}"), dir.join(top));
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).expect("remove old");
    }
}

// Fake API: none; --from-dir reads a kubelet-style volume the test writes, no API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_dir_follows_kubelet_updates_nested_keys_and_a_volume_that_appears_later() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let volume = tmp.path().join("volumes/app");
    let late = tmp.path().join("volumes/late");
    kubelet_write(&volume, 1, &[("app.conf", "v1"), ("conf.d/extra.conf", "e1")]);
    let target = tmp.path().join("config");
    let out = tmp.path().join("exec.out");
    let port = crate::support::free_port();
    let args = [
        format!("--dir={}", target.display()),
        format!("--from-dir={}", volume.display()),
        format!("--from-dir={}", late.display()),
        format!("--exec=echo reload >> {}", out.display()),
        format!("--listen=127.0.0.1:{port}"),
        "--log-format=json".into(),
    ];
    let _sidecar = crate::support::spawn_sidecar(&args, &tmp.path().join("no-kubeconfig"), tmp.path(), port);
    let read = |rel: &str| std::fs::read_to_string(target.join(rel)).ok();
    wait_for("initial volume", WAIT, || read("app/conf.d/extra.conf").as_deref() == Some("e1")).await;
    kubelet_write(&volume, 2, &[("app.conf", "v2"), ("conf.d/extra.conf", "e2")]);
    wait_for("kubelet update", WAIT, || read("app/conf.d/extra.conf").as_deref() == Some("e2")).await;
    assert_eq!(read("app/app.conf").as_deref(), Some("v2"));
    wait_for("one reload", WAIT, || std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == 1))
        .await;
    kubelet_write(&late, 1, &[("late.conf", "here")]);
    wait_for("a volume that appears later", WAIT, || read("late/late.conf").as_deref() == Some("here")).await;
}

// Fake API: Kubernetes is incidental (SIGTERM during a reload); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_makes_it_unready_at_once_and_lets_the_reload_in_progress_finish() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    let (started, finished) = (ws.tmp.path().join("exec.started"), ws.tmp.path().join("exec.finished"));
    let exec = format!("--exec=touch {}; sleep 1; touch {}", started.display(), finished.display());
    let mut sidecar = ws.start(&[&exec, "--debounce=0", "--max-wait=0", "--shutdown-grace=10s"]);
    wait_for("first sync", WAIT, || ws.read("web/a").is_some()).await;
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("update");
    wait_for("the reload in progress", WAIT, || started.exists()).await;
    sidecar.signal(nix::sys::signal::Signal::SIGTERM);
    wait_until("unready during shutdown", WAIT, || async {
        sidecar
            .get("/readyz")
            .await
            .is_some_and(|(code, body)| code == 503 && body.contains("\"shuttingDown\":true"))
    })
    .await;
    let status = sidecar.wait_exit(WAIT).await;
    assert!(status.success(), "{status:?}; log:\n{}", sidecar.log());
    assert!(finished.exists(), "the reload in progress must finish before the exit");
    crate::support::assert_complete_snapshot(&ws.dir());
}
