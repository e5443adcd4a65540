//! Reload: signal (a real counting process, real nginx), webhook, exec (issue: reload).

use crate::support::{WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A real process that appends a line to `count` for every SIGHUP; pid in `pidfile`.
struct HupCounter {
    child: Child,
    count: PathBuf,
}

impl HupCounter {
    fn start(dir: &Path) -> Self {
        let count = dir.join("hups");
        let pidfile = dir.join("app.pid");
        let script = format!(
            "trap 'echo hup >> {count}' HUP; echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; \
             i=0; while [ $i -lt 1200 ]; do sleep 0.1 & wait $!; i=$((i+1)); done",
            count = count.display(),
            pid = pidfile.display()
        );
        let child = Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).spawn().expect("sh");
        let counter = Self { child, count };
        let started = std::time::Instant::now();
        while !pidfile.exists() {
            assert!(started.elapsed() < WAIT, "the counter did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        counter
    }

    fn hups(&self) -> usize {
        std::fs::read_to_string(&self.count).map_or(0, |t| t.lines().count())
    }
}

impl Drop for HupCounter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pid_file_flag(ws: &Workspace) -> String {
    format!("--pid-file={}", ws.tmp.path().join("app.pid").display())
}

// Fake API: Kubernetes is incidental (SIGHUP count); a 50-write burst and a 410 relist forced on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_update_one_signal_a_burst_one_signal_and_no_change_no_signal() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[&pid_file_flag(&ws)]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    let counter = HupCounter::start(ws.tmp.path());
    assert_eq!(counter.hups(), 0, "the initial sync must not signal");

    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    wait_for("one signal", WAIT, || counter.hups() == 1).await;

    // A burst of 50 updates within ~200 ms: one swap and one signal.
    let swaps_before = sidecar.metric("configsnap_swaps_total").await.expect("swaps");
    for n in 2..=51 {
        api.apply("configmaps", configmap("app", &[("n", &n.to_string())])).expect("burst");
    }
    wait_for("burst settled", WAIT, || ws.read("app/n").as_deref() == Some("51")).await;
    wait_for("second signal", WAIT, || counter.hups() >= 2).await;
    sidecar.wait_metric("configsnap_swaps_total", swaps_before + 1.0).await;

    // Same content again (a no-op write) and a forced relist: no swap, no signal.
    api.apply("configmaps", configmap("app", &[("n", "51")])).expect("same content");
    api.faults().set_expire_all_watch_resumes(true);
    api.faults().drop_watches();
    let lists = api.stats().lists;
    wait_for("relist", WAIT, || api.stats().lists > lists).await;
    api.faults().set_expire_all_watch_resumes(false);
    // The sentinel change is the next signal: the no-op ones produced none.
    api.apply("configmaps", configmap("app", &[("n", "52")])).expect("sentinel");
    wait_for("sentinel", WAIT, || ws.read("app/n").as_deref() == Some("52")).await;
    wait_for("sentinel signal", WAIT, || counter.hups() >= 3).await;
    assert_eq!(counter.hups(), 3);
    sidecar.wait_metric("configsnap_swaps_total", swaps_before + 2.0).await;
}

// Fake API: Kubernetes is incidental (a missing pid file); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_signal_target_is_a_warning_and_the_next_change_signals() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let ws = Workspace::new(&api);
    let mut sidecar = ws.start(&[&pid_file_flag(&ws), "--debounce=0", "--max-wait=0"]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    sidecar.wait_metric("configsnap_reloads_total{method=\"signal\",result=\"failure\"}", 1.0).await;
    assert!(sidecar.log().contains("cannot read pid file"), "{}", sidecar.log());
    assert!(sidecar.running(), "configsnap must keep running");
    let counter = HupCounter::start(ws.tmp.path());
    api.apply("configmaps", configmap("app", &[("n", "2")])).expect("v2");
    wait_for("signal once the target exists", WAIT, || counter.hups() == 1).await;
}

// Fake API: Kubernetes is incidental (nginx reload on SIGHUP); the fake is an in-process data source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_the_new_page_after_one_sighup() {
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists())
    else {
        assert!(
            std::env::var_os("CONFIGSNAP_ALLOW_SKIP").is_some(),
            "nginx is not installed: apt-get install nginx-light (or set CONFIGSNAP_ALLOW_SKIP=1 to skip this test)"
        );
        eprintln!("SKIPPED (CONFIGSNAP_ALLOW_SKIP): nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let api = FakeApiServer::start().await.expect("fake api");
    let ws = Workspace::new(&api);
    let port = crate::support::free_port();
    let run = ws.tmp.path().join("nginx");
    std::fs::create_dir(&run).expect("nginx run dir");
    // The config itself carries its version, so serving `/version` proves a reload.
    let conf = |version: u32| {
        format!(
            "user root; worker_processes 1; daemon off; pid {run}/nginx.pid;\n\
             error_log {run}/error.log notice;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off; client_body_temp_path {run}; proxy_temp_path {run}; fastcgi_temp_path {run};\n\
             uwsgi_temp_path {run}; scgi_temp_path {run};\n\
             server {{ listen 127.0.0.1:{port}; root {dir}/web; location / {{ index index.html; }}\n\
             location = /version {{ return 200 \"config v{version}\\n\"; }} }} }}\n",
            run = run.display(),
            dir = ws.dir().display()
        )
    };
    api.apply("configmaps", configmap("web", &[("nginx.conf", &conf(1)), ("index.html", "page v1\n")]))
        .expect("web");
    let _sidecar = ws.start(&["--process-name=nginx"]);
    wait_for("config files", WAIT, || ws.read("web/nginx.conf").is_some()).await;
    let server = Command::new(nginx)
        .arg("-c")
        .arg(ws.dir().join("web/nginx.conf"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let _server = Nginx(server);
    let url = format!("http://127.0.0.1:{port}/");
    let serves = |path: &'static str, want: &'static str| {
        let url = format!("{url}{path}");
        move || {
            let url = url.clone();
            async move { crate::support::http_get(&url).await.is_some_and(|(_, body)| body == want) }
        }
    };
    wait_until("nginx serves v1", WAIT, serves("", "page v1\n")).await;
    wait_until("nginx runs config v1", WAIT, serves("version", "config v1\n")).await;

    api.apply("configmaps", configmap("web", &[("nginx.conf", &conf(2)), ("index.html", "page v2\n")]))
        .expect("v2");
    wait_until("nginx reloaded config v2", WAIT, serves("version", "config v2\n")).await;
    wait_until("nginx serves page v2", WAIT, serves("", "page v2\n")).await;
    let log = || std::fs::read_to_string(run.join("error.log")).unwrap_or_default();
    let hups = || log().lines().filter(|l| l.contains("signal 1 (SIGHUP) received")).count();
    wait_for("the SIGHUP logged", WAIT, || hups() >= 1).await;
    assert_eq!(hups(), 1, "nginx master must get exactly one SIGHUP; log:\n{}", log());
}

/// Stops nginx on drop (also when the test fails): SIGTERM lets the master take its
/// workers down; SIGKILL only if it does not exit within 5 s.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).expect("pid fits"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback webhook receiver: answers 500 to the first `failures` calls (all, if
/// `None`), then 200; records the `x-configsnap-hash` of every call.
async fn webhook_server(failures: Option<usize>) -> (String, Calls) {
    let calls: Calls = std::sync::Arc::default();
    let record = calls.clone();
    let base = crate::support::http_server(move |hash| {
        let mut calls = record.lock().expect("calls");
        calls.push(hash);
        let status = if failures.is_some_and(|f| calls.len() > f) { 200 } else { 500 };
        async move { status }
    })
    .await;
    (format!("{base}/-/reload"), calls)
}

// Fake API: Kubernetes is incidental (webhook retries); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_twice_is_retried_and_succeeds() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let (url, calls) = webhook_server(Some(2)).await;
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[&format!("--webhook-url={url}"), "--debounce=0", "--max-wait=0"]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    wait_for("three calls", WAIT, || calls.lock().expect("calls").len() == 3).await;
    let metric = "configsnap_reloads_total{method=\"webhook\",result=\"success\"}";
    sidecar.wait_metric(metric, 1.0).await;
    let hashes = calls.lock().expect("calls").clone();
    assert!(hashes.iter().all(|h| h.starts_with("sha256:") && *h == hashes[0]), "{hashes:?}");
}

// Fake API: Kubernetes is incidental (webhook retries cancelled); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_blocks_no_swap_and_a_newer_snapshot_cancels_its_retries() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let (url, calls) = webhook_server(None).await;
    let ws = Workspace::new(&api);
    let _sidecar =
        ws.start(&[&format!("--webhook-url={url}"), "--webhook-retries=50", "--debounce=0", "--max-wait=0"]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    wait_for("first snapshot retried", WAIT, || calls.lock().expect("calls").len() >= 2).await;
    api.apply("configmaps", configmap("app", &[("n", "2")])).expect("v2");
    wait_for("the swap is not blocked", WAIT, || ws.read("app/n").as_deref() == Some("2")).await;
    let first = calls.lock().expect("calls")[0].clone();
    wait_for("newer snapshot retried", WAIT, || {
        calls.lock().expect("calls").iter().filter(|h| **h != first).count() >= 3
    })
    .await;
    let hashes = calls.lock().expect("calls").clone();
    let switch = hashes.iter().position(|h| *h != first).expect("a newer hash");
    assert!(
        hashes[switch..].iter().all(|h| *h != first),
        "stale retries after the newer snapshot: {hashes:?}"
    );
}

// Fake API: Kubernetes is incidental (--exec environment and timeout); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_gets_the_snapshot_in_its_environment_and_is_bounded_in_time() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let ws = Workspace::new(&api);
    let out = ws.tmp.path().join("exec.out");
    let command = format!(
        "echo \"$CONFIGSNAP_DIR $CONFIGSNAP_HASH\" >> {}; if [ \"$(cat $CONFIGSNAP_DIR/app/n)\" = 2 ]; then exit 7; fi; \
         if [ \"$(cat $CONFIGSNAP_DIR/app/n)\" = 3 ]; then sleep 30; fi",
        out.display()
    );
    let sidecar =
        ws.start(&[&format!("--exec={command}"), "--exec-timeout=300ms", "--debounce=0", "--max-wait=0"]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    wait_for("exec ran", WAIT, || std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == 1)).await;
    let line = std::fs::read_to_string(&out).expect("exec output");
    let (dir, hash) = line.trim().split_once(' ').expect("two fields");
    assert_eq!(Path::new(dir), ws.dir());
    assert!(hash.starts_with("sha256:"), "{hash}");
    let failure = "configsnap_reloads_total{method=\"exec\",result=\"failure\"}";
    api.apply("configmaps", configmap("app", &[("n", "2")])).expect("v2");
    sidecar.wait_metric(failure, 1.0).await;
    assert!(sidecar.log().contains("exited with 7"), "{}", sidecar.log());
    api.apply("configmaps", configmap("app", &[("n", "3")])).expect("v3");
    sidecar.wait_metric(failure, 2.0).await;
    assert!(sidecar.log().contains("timed out"), "{}", sidecar.log());
}

// Fake API: Kubernetes is incidental (a restart that finds older files); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_finds_older_files_reloads_the_app_once_for_the_newer_content() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let ws = Workspace::new(&api);
    let out = ws.tmp.path().join("exec.out");
    let exec = format!("--exec=echo \"$CONFIGSNAP_HASH\" >> {}", out.display());
    let flags = [exec.as_str(), "--debounce=0", "--max-wait=0"];
    {
        let _first = ws.start(&flags);
        wait_for("the first files", WAIT, || ws.read("app/n").as_deref() == Some("0")).await;
    }
    // Changed while no sidecar ran: the app still has n=0 loaded.
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    let restarted = ws.start(&flags);
    wait_for("the newer content", WAIT, || ws.read("app/n").as_deref() == Some("1")).await;
    let told = || std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
    wait_for("the app told about it", WAIT, || told() >= 1).await;
    wait_until("ready", WAIT, || async { restarted.readyz().await.0 == 200 }).await;
    assert_eq!(told(), 1, "one reload for one change: {}", restarted.log());
}

// Fake API: Kubernetes is incidental (a rollback after a superseded reload); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_a_superseded_reload_restores_the_good_files_even_with_no_grace() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("mode", "good")])).expect("good");
    let ws = Workspace::new(&api);
    let seen = ws.tmp.path().join("modes");
    // The app: slow to take `slow` (its reload is superseded), refuses `bad`.
    let exec = format!(
        "--exec=m=$(cat $CONFIGSNAP_DIR/app/mode); echo $m >> {}; case $m in slow) sleep 30;; bad) exit 1;; esac",
        seen.display()
    );
    // No grace: the good generation's files leave the disk as soon as `slow` replaces it.
    let sidecar =
        ws.start(&[exec.as_str(), "--exec-timeout=60s", "--gc-grace=0", "--debounce=0", "--max-wait=0"]);
    wait_for("the good files", WAIT, || ws.read("app/mode").as_deref() == Some("good")).await;
    api.apply("configmaps", configmap("app", &[("mode", "slow")])).expect("slow");
    let modes = || std::fs::read_to_string(&seen).unwrap_or_default();
    wait_for("the app is taking slow", WAIT, || modes().contains("slow")).await;
    api.apply("configmaps", configmap("app", &[("mode", "bad")])).expect("bad");
    sidecar.wait_metric("configsnap_rollbacks_total", 1.0).await;
    wait_for("the good files are back", WAIT, || ws.read("app/mode").as_deref() == Some("good")).await;
    crate::support::assert_complete_snapshot(&ws.dir());
    // The app takes the rolled-back files, and nothing says it did not.
    sidecar.wait_metric("configsnap_reloads_total{method=\"exec\",result=\"success\"}", 1.0).await;
    assert_eq!(
        sidecar.log_count("reloading the rolled-back snapshot failed; retried at the next change"),
        0,
        "{}",
        sidecar.log()
    );
}

/// A loopback webhook receiver that answers 200 only when the test opens its gate (one
/// permit per call), recording the `x-configsnap-hash` of every call on arrival.
async fn gated_webhook_server() -> (String, Calls, std::sync::Arc<tokio::sync::Semaphore>) {
    let calls: Calls = std::sync::Arc::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (record, permits) = (calls.clone(), gate.clone());
    let base = crate::support::http_server(move |hash| {
        record.lock().expect("calls").push(hash);
        let permits = permits.clone();
        async move {
            if let Ok(Ok(permit)) = tokio::time::timeout(WAIT, permits.acquire_owned()).await {
                permit.forget();
            }
            200
        }
    })
    .await;
    (format!("{base}/-/reload"), calls, gate)
}

/// The hashes a webhook receiver saw, in order.
type Calls = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn calls_of(calls: &Calls) -> Vec<String> {
    calls.lock().expect("calls").clone()
}

// Fake API: a 410 relist forced while a reload is in flight, a timing a real server cannot give on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_relist_during_a_reload_does_not_repeat_it() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("n", "0")])).expect("v0");
    let (url, calls, gate) = gated_webhook_server().await;
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&[&format!("--webhook-url={url}"), "--debounce=0", "--max-wait=0"]);
    wait_for("initial files", WAIT, || ws.read("app/n").is_some()).await;
    api.apply("configmaps", configmap("app", &[("n", "1")])).expect("v1");
    wait_for("the reload in flight", WAIT, || calls_of(&calls).len() == 1).await;

    api.faults().set_expire_all_watch_resumes(true);
    api.faults().drop_watches();
    let message = "a change during the reload left the content as it is";
    wait_for("the relist seen during the reload", WAIT, || sidecar.log_count(message) >= 1).await;
    api.faults().set_expire_all_watch_resumes(false);
    gate.add_permits(10);
    sidecar.wait_metric("configsnap_reloads_total{method=\"webhook\",result=\"success\"}", 1.0).await;

    api.apply("configmaps", configmap("app", &[("n", "2")])).expect("sentinel");
    sidecar.wait_metric("configsnap_reloads_total{method=\"webhook\",result=\"success\"}", 2.0).await;
    let seen = calls_of(&calls);
    assert_eq!(seen.len(), 2, "one call per snapshot: {seen:?}");
    assert_ne!(seen[0], seen[1]);
}

/// An app whose `config.json` (`{"v": 0}` on disk) is checked as JSON and reloaded by a
/// gated webhook: the parts of the tests of superseded reloads.
struct GatedJsonApp {
    api: FakeApiServer,
    ws: Workspace,
    sidecar: crate::support::Sidecar,
    calls: Calls,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl GatedJsonApp {
    async fn start() -> Self {
        let api = FakeApiServer::start().await.expect("fake api");
        api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 0}")])).expect("v0");
        let (url, calls, gate) = gated_webhook_server().await;
        let ws = Workspace::new(&api);
        let sidecar =
            ws.start(&[&format!("--webhook-url={url}"), "--validate-syntax", "--debounce=0", "--max-wait=0"]);
        wait_for("initial files", WAIT, || ws.read("app/config.json").is_some()).await;
        Self { api, ws, sidecar, calls, gate }
    }
}

// Fake API: Kubernetes is incidental (a reload superseded by newer content); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_reload_is_no_failure_and_clears_an_older_refusal_from_readyz() {
    let GatedJsonApp { api, ws: _ws, sidecar, calls, gate } = GatedJsonApp::start().await;
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 1,,}")])).expect("invalid v1");
    sidecar.wait_state("stale", WAIT).await;
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 2}")])).expect("v2");
    wait_for("v2's reload in flight", WAIT, || calls_of(&calls).len() == 1).await;
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 3}")])).expect("v3");
    wait_for("v3's reload in flight", WAIT, || calls_of(&calls).len() == 2).await;
    // v2's reload was superseded, not failed: v3 is on disk and the refusal of v1 is
    // history, while v3's reload is still held at the gate (for up to WAIT).
    sidecar.wait_state("fresh", WAIT / 2).await;
    let failures = "configsnap_reloads_total{method=\"webhook\",result=\"failure\"}";
    assert_eq!(sidecar.metric(failures).await.unwrap_or(0.0), 0.0, "{}", sidecar.log());
    gate.add_permits(10);
    sidecar.wait_metric("configsnap_reloads_total{method=\"webhook\",result=\"success\"}", 1.0).await;
}

// Fake API: Kubernetes is incidental (a reload superseded by refused content); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_superseded_by_refused_content_is_still_delivered() {
    let GatedJsonApp { api, ws, sidecar, calls, gate } = GatedJsonApp::start().await;
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 1}")])).expect("v1");
    wait_for("the reload in flight", WAIT, || calls_of(&calls).len() == 1).await;

    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 2,,}")])).expect("invalid v2");
    sidecar.wait_metric("configsnap_snapshots_refused_total{reason=\"syntax\"}", 1.0).await;
    gate.add_permits(10);
    sidecar.wait_metric("configsnap_reloads_total{method=\"webhook\",result=\"success\"}", 1.0).await;
    let seen = calls_of(&calls);
    assert!(seen.len() >= 2, "the superseded reload must be delivered again: {seen:?}");
    assert!(seen.iter().all(|h| *h == seen[0]), "only the snapshot on disk is reloaded: {seen:?}");
    assert_eq!(ws.read("app/config.json").as_deref(), Some("{\"v\": 1}"));
}

/// Runs `openssl` with `args` in `dir`; fails the test if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A self-signed CA `<name>.pem` (key `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key, subject) = (format!("{name}.pem"), format!("{name}.key"), format!("/CN={name}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    dir.join(pem)
}

/// `openssl s_server -www` on a loopback port with a certificate for 127.0.0.1 signed by
/// the CA `ca` (made by [`make_ca`]): a TLS server apart from the product's TLS stack, that
/// answers every GET with 200. Killed on drop.
struct TlsServer {
    child: Child,
    url: String,
}

impl TlsServer {
    async fn start(dir: &Path, ca: &str) -> Self {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("extensions file");
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let port = crate::support::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-cert", "server.pem", "-key", "server.key"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let server = Self { child, url: format!("https://127.0.0.1:{port}/-/reload") };
        wait_until("openssl s_server listening", WAIT, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Fake API: Kubernetes is incidental (which CA the webhook client trusts); ReloadFailed is read from the in-process store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_webhook_is_trusted_through_ssl_cert_file_and_only_through_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = make_ca(tmp.path(), "our-ca");
    let other_ca = make_ca(tmp.path(), "other-ca");
    let server = TlsServer::start(tmp.path(), "our-ca").await;
    let api = FakeApiServer::start().await.expect("fake api");
    let cases = [
        ("our CA", Some(&ca), "success"),
        ("another self-signed CA", Some(&other_ca), "failure"),
        ("the bundled roots only", None, "failure"),
    ];
    for (n, (trusting, file, result)) in cases.into_iter().enumerate() {
        let name = format!("app{n}");
        api.apply("configmaps", configmap(&name, &[("n", "0")])).expect("v0");
        let ws = Workspace::new(&api);
        // The test runner's own SSL_CERT_FILE / SSL_CERT_DIR must not leak into the sidecar.
        let trust = match file {
            Some(file) => format!("unset SSL_CERT_DIR && export SSL_CERT_FILE={}", file.display()),
            None => "unset SSL_CERT_DIR SSL_CERT_FILE".to_owned(),
        };
        let sidecar = ws.start_in_shell(
            Some(trust),
            &[
                &format!("--webhook-url={}", server.url),
                "--webhook-method=GET",
                "--webhook-retries=0",
                "--debounce=0",
                "--max-wait=0",
            ],
        );
        let path = format!("{name}/n");
        wait_for("initial files", WAIT, || ws.read(&path).is_some()).await;
        api.apply("configmaps", configmap(&name, &[("n", "1")])).expect("v1");
        wait_for("the update", WAIT, || ws.read(&path).as_deref() == Some("1")).await;
        let count = |result: &'static str| {
            let name = format!("configsnap_reloads_total{{method=\"webhook\",result=\"{result}\"}}");
            let sidecar = &sidecar;
            async move { sidecar.metric(&name).await.unwrap_or_default() }
        };
        // Failures are retried by the pipeline (a TLS failure counts as unreachable), so
        // the failure count only has to reach one.
        wait_until(&format!("a webhook {result} while trusting {trusting}"), WAIT, || async {
            count(result).await >= 1.0
        })
        .await;
        let other = if result == "success" { "failure" } else { "success" };
        assert_eq!(count(other).await, 0.0, "no webhook {other} while trusting {trusting}");
    }
}
