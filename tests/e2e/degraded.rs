//! Degraded operation: last-good restore, outages, validation, rollback, crash safety.

use crate::support::{Sidecar, WAIT, Workspace, assert_complete_snapshot, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The backoff maximum (30 s, `source::kube::WatchBackoff`) plus 5 s to reconnect and
/// swap: the longest a recovery may take once the API is back.
const RECOVERY: Duration = Duration::from_secs(35);

fn data_mtime(ws: &Workspace) -> Option<(String, std::time::SystemTime)> {
    let target = ws.data_target()?;
    let modified = std::fs::symlink_metadata(ws.dir().join("..data")).ok()?.modified().ok()?;
    Some((target, modified))
}

// Fake API: connections refused from the start and lifted on demand; the subject is the last-good restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_outage_restores_last_good_then_follows_the_api() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "S")])).expect("S");
    let ws = Workspace::new(&api);
    let state = format!("--state-dir={}", ws.state().display());
    {
        let _first = ws.start(&[&state]);
        wait_for("last-good saved", WAIT, || ws.state().join("..data").exists()).await;
    }
    std::fs::remove_dir_all(ws.dir()).expect("empty the target dir");
    std::fs::create_dir(ws.dir()).expect("target dir");
    api.faults().set_refuse(true).await.expect("refuse");

    let sidecar = ws.start(&[&state, "--startup-timeout=1s"]);
    wait_for("restored", WAIT, || ws.read("web/a").as_deref() == Some("S")).await;
    // How soon after the timeout is a benchmark figure (`startup`); here: that it happened,
    // once, and says how long it waited.
    let message = "no state from the source in time: restored the last good snapshot";
    wait_for("the restore logged", WAIT, || sidecar.log_count(message) == 1).await;
    let logged_wait = sidecar
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == message)
        .and_then(|l| l["waited_ms"].as_f64());
    assert!(
        logged_wait.is_some_and(|ms| ms >= 1000.0),
        "it waited the start-up timeout first: {logged_wait:?}"
    );
    wait_until("ready while restored", WAIT, || async {
        sidecar.get("/readyz").await.is_some_and(|(c, _)| c == 200)
    })
    .await;

    api.apply("configmaps", configmap("web", &[("a", "S2")])).expect("S'");
    api.faults().set_refuse(false).await.expect("accept");
    wait_for("the live state wins", RECOVERY, || ws.read("web/a").as_deref() == Some("S2")).await;
    assert_complete_snapshot(&ws.dir());
}

// Fake API: Kubernetes is incidental (a damaged --state-dir); connections refused so no state arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_dir_is_ignored_with_a_warning() {
    let api = FakeApiServer::start().await.expect("fake api");
    let ws = Workspace::new(&api);
    let root = "..2020_01_01_00_00_00.000000001";
    std::fs::create_dir_all(ws.state().join(root)).expect("state dir");
    std::fs::write(ws.state().join(root).join("..manifest.json"), b"{\"format\"")
        .expect("truncated manifest");
    std::os::unix::fs::symlink(root, ws.state().join("..data")).expect("data link");
    api.faults().set_refuse(true).await.expect("refuse");
    let sidecar = ws.start(&[&format!("--state-dir={}", ws.state().display()), "--startup-timeout=200ms"]);
    wait_for("warning", WAIT, || sidecar.log().contains("ignoring a damaged last-good copy")).await;
    assert!(ws.data_target().is_none(), "a corrupt copy must not be restored");
    assert_eq!(sidecar.get("/readyz").await.map(|r| r.0), Some(503));
}

/// One kind of API failure, held for `OUTAGE`.
#[derive(Debug, Clone, Copy)]
enum Outage {
    Refused,
    Hanging,
    ServerErrors,
    TooManyRequests,
}

const OUTAGE: Duration = Duration::from_secs(10);

async fn outage_keeps_files_and_recovers_without_relist(kinds: &[Outage]) {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    let mut sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_for("first sync", WAIT, || ws.read("web/a").is_some()).await;
    wait_until("watching", WAIT, || async { api.stats().open_watches > 0 }).await;
    for (round, kind) in kinds.iter().enumerate() {
        api.reset_stats();
        let before = data_mtime(&ws);
        match kind {
            Outage::Refused => api.faults().set_refuse(true).await.expect("refuse"),
            Outage::Hanging => api.faults().set_hang(true),
            Outage::ServerErrors => {
                api.faults().fail_requests(100_000, 500, None);
                api.faults().drop_watches();
            }
            Outage::TooManyRequests => {
                api.faults().fail_requests(100_000, 429, Some(1));
                api.faults().drop_watches();
            }
        }
        let value = format!("{round}-{kind:?}");
        api.apply("configmaps", configmap("web", &[("a", &value)])).expect("update during the outage");
        let until = Instant::now() + OUTAGE;
        while Instant::now() < until {
            assert!(sidecar.running(), "configsnap exited during {kind:?}");
            assert_eq!(data_mtime(&ws), before, "files changed during {kind:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match kind {
            Outage::Refused => api.faults().set_refuse(false).await.expect("accept"),
            Outage::Hanging => api.faults().set_hang(false),
            Outage::ServerErrors | Outage::TooManyRequests => api.faults().fail_requests(0, 500, None),
        }
        wait_for("recovery", RECOVERY, || ws.read("web/a") == Some(value.clone())).await;
        assert_eq!(api.stats().lists, 0, "{kind:?}: relisted although the resourceVersion was valid");
        assert_complete_snapshot(&ws.dir());
    }
}

// Fake API: a hanging server and refused connections on demand, with an exact LIST count (0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_hanging_api_keep_files_and_recover_without_relist() {
    outage_keeps_files_and_recovers_without_relist(&[Outage::Refused, Outage::Hanging]).await;
}

// Fake API: a 500 storm and 429 with Retry-After on demand, which a real server cannot be made to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_keep_files_and_recover_without_relist() {
    outage_keeps_files_and_recovers_without_relist(&[Outage::ServerErrors, Outage::TooManyRequests]).await;
}

// Fake API: a torn watch chunk and a 410 on every resume, on demand; real compaction is in outage.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_watch_resumes_and_a_410_relists_without_a_spurious_swap() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    sidecar.wait_metric("configsnap_swaps_total", 1.0).await;
    wait_until("watching", WAIT, || async { api.stats().open_watches > 0 }).await;

    api.reset_stats();
    api.faults().truncate_next_watch_event();
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("cut event");
    wait_for("resumed", RECOVERY, || ws.read("web/a").as_deref() == Some("1")).await;
    assert_eq!(api.stats().lists, 0, "a cut watch must resume, not relist");
    sidecar.wait_metric("configsnap_swaps_total", 2.0).await;

    api.faults().drop_watches();
    wait_until("re-watched", WAIT, || async { api.stats().watches >= 2 }).await;
    assert_eq!(api.stats().lists, 0, "an ended watch must resume, not relist");

    api.faults().set_expire_all_watch_resumes(true);
    api.faults().drop_watches();
    wait_until("relisted", RECOVERY, || async { api.stats().lists >= 1 }).await;
    api.faults().set_expire_all_watch_resumes(false);
    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("sentinel");
    wait_for("sentinel", RECOVERY, || ws.read("web/a").as_deref() == Some("2")).await;
    // The relist found the same content: only the sentinel swapped.
    sidecar.wait_metric("configsnap_swaps_total", 3.0).await;
}

// Fake API: Kubernetes is incidental (--validate-syntax, --validate-cmd); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_never_swapped_in_and_a_failing_validate_cmd_swaps_nothing() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 1}")])).expect("valid");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--validate-syntax", "--debounce=0", "--max-wait=0"]);
    wait_for("valid json", WAIT, || ws.read("app/config.json").is_some()).await;
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 2,,}")])).expect("invalid");
    sidecar.wait_metric("configsnap_snapshots_refused_total{reason=\"syntax\"}", 1.0).await;
    assert_eq!(ws.read("app/config.json").as_deref(), Some("{\"v\": 1}"));
    assert!(sidecar.log().contains("app/config.json: line 1"), "{}", sidecar.log());
    api.apply("configmaps", configmap("app", &[("config.json", "{\"v\": 3}")])).expect("valid again");
    wait_for("later valid update", WAIT, || ws.read("app/config.json").as_deref() == Some("{\"v\": 3}"))
        .await;

    let other = Workspace::new(&api);
    let refusing = other.start(&["--validate-cmd=false"]);
    refusing.wait_metric("configsnap_snapshots_refused_total{reason=\"command\"}", 1.0).await;
    assert!(other.data_target().is_none(), "--validate-cmd false must swap nothing");
    let listing = |dir: std::path::PathBuf| -> Vec<String> {
        let names = std::fs::read_dir(dir).expect("list").flatten();
        names.map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    let leftovers: Vec<String> =
        listing(other.dir()).into_iter().filter(|n| n != "..objects" && n != "..tree").collect();
    assert!(leftovers.is_empty(), "the refused staged root must be removed: {leftovers:?}");
    for store in ["..objects", "..tree"] {
        let nodes = listing(other.dir().join(store));
        assert!(nodes.is_empty(), "the refused snapshot's nodes must be removed from {store}: {nodes:?}");
    }
}

// Fake API: Kubernetes is incidental (verify, rollback); a 410 relist forced on demand re-serves the content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verification_rolls_back_reloads_and_blocks_the_bad_content() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("mode", "good-1")])).expect("good");
    let ws = Workspace::new(&api);
    // The "app" is healthy unless its config says bad.
    let config = ws.dir().join("app/mode");
    let health = crate::support::http_server(move |_| {
        let bad = std::fs::read_to_string(&config).is_ok_and(|c| c.starts_with("bad"));
        async move { if bad { 500 } else { 200 } }
    })
    .await;
    let health = format!("{health}/health");
    let reloads = ws.tmp.path().join("reloads");
    let sidecar = ws.start(&[
        &format!(
            "--exec=cat $CONFIGSNAP_DIR/app/mode >> {}; echo >> {}",
            reloads.display(),
            reloads.display()
        ),
        &format!("--verify-url={health}"),
        "--verify-timeout=1s",
        "--debounce=0",
        "--max-wait=0",
    ]);
    wait_for("good", WAIT, || ws.read("app/mode").is_some()).await;
    api.apply("configmaps", configmap("app", &[("mode", "bad")])).expect("bad");
    sidecar.wait_metric("configsnap_rollbacks_total", 1.0).await;
    assert_eq!(ws.read("app/mode").as_deref(), Some("good-1"));
    let reloaded = || std::fs::read_to_string(&reloads).unwrap_or_default();
    wait_for("reloaded after the rollback", WAIT, || reloaded() == "bad\ngood-1\n").await;
    let swaps = sidecar.metric("configsnap_swaps_total").await.expect("swaps");

    // A relist brings the same bad content again: it stays blocked.
    api.faults().set_expire_all_watch_resumes(true);
    api.faults().drop_watches();
    let lists = api.stats().lists;
    wait_until("relist", RECOVERY, || async { api.stats().lists > lists }).await;
    api.faults().set_expire_all_watch_resumes(false);
    api.apply("configmaps", configmap("app", &[("mode", "good-2")])).expect("good-2");
    wait_for("a changed content goes through", WAIT, || ws.read("app/mode").as_deref() == Some("good-2"))
        .await;
    sidecar.wait_metric("configsnap_swaps_total", swaps + 1.0).await;
    sidecar.wait_metric("configsnap_rollbacks_total", 1.0).await;
}

/// The selected objects the crash test expects: name → key → value.
type Expected = BTreeMap<String, BTreeMap<String, String>>;
/// Files as the app sees them: visible path (`<name>/<key>`) → content.
type Files = BTreeMap<String, Vec<u8>>;

/// What the crash test's workload has done: the objects it expects now, and a fingerprint
/// of every state the API has held (after each single write), the first one included.
#[derive(Default)]
struct Workload {
    expected: Expected,
    history: HashSet<[u8; 32]>,
}

impl Workload {
    /// Records the state after one write the API accepted.
    fn record(&mut self) {
        self.history.insert(fingerprint(&files_of(&self.expected)));
    }
}

/// The files `expected` stands for.
fn files_of(expected: &Expected) -> Files {
    let files = expected.iter().flat_map(|(name, data)| {
        data.iter().map(move |(key, value)| (format!("{name}/{key}"), value.clone().into_bytes()))
    });
    files.collect()
}

/// SHA-256 over every path and content, each length-prefixed.
fn fingerprint(files: &Files) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for (path, content) in files {
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(content);
    }
    hasher.finalize().into()
}

/// The snapshot `..data` points at, read with plain `std::fs` (not the product's reader):
/// `..data` is resolved once, then walked following links; entries sit at
/// `<h0>/<h1>/<entry>/...` below it (README, "On disk"), `..` names (manifests) are not
/// files of the app. Also checks that every entry's visible link points at it. `Err` says
/// what is wrong.
fn files_on_disk(dir: &Path) -> Result<Files, String> {
    fn walk(path: &Path, rel: &str, files: &mut Files) -> Result<(), String> {
        let entries = std::fs::read_dir(path).map_err(|e| format!("list {}: {e}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("list {}: {e}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("..") {
                continue;
            }
            let (path, rel) = (entry.path(), if rel.is_empty() { name } else { format!("{rel}/{name}") });
            let meta = std::fs::metadata(&path).map_err(|e| format!("stat {rel}: {e}"))?;
            if meta.is_dir() {
                walk(&path, &rel, files)?;
            } else {
                files.insert(rel.clone(), std::fs::read(&path).map_err(|e| format!("read {rel}: {e}"))?);
            }
        }
        Ok(())
    }
    let data = std::fs::read_link(dir.join("..data")).map_err(|e| format!("..data: {e}"))?;
    let mut in_tree = Files::new();
    walk(&dir.join(data), "", &mut in_tree)?;
    let mut files = Files::new();
    for (path, content) in in_tree {
        let mut parts = path.splitn(3, '/');
        let (h0, h1, visible) = (parts.next(), parts.next(), parts.next());
        let (Some(h0), Some(h1), Some(visible)) = (h0, h1, visible) else {
            return Err(format!("{path} is not below <h0>/<h1>/"));
        };
        let entry = visible.split('/').next().unwrap_or_default();
        let link = std::fs::read_link(dir.join(entry)).map_err(|e| format!("visible link {entry}: {e}"))?;
        if link != Path::new(&format!("..data/{h0}/{h1}/{entry}")) {
            return Err(format!("visible link {entry} -> {}", link.display()));
        }
        files.insert(visible.to_owned(), content);
    }
    Ok(files)
}

/// True when the files on disk are exactly the expected ones.
fn converged(expected: &Expected, ws: &Workspace) -> bool {
    files_on_disk(&ws.dir()).is_ok_and(|files| files == files_of(expected))
}

/// After a kill: the files on disk are whole and exactly a state the API held.
fn assert_a_state_the_api_held(ws: &Workspace, workload: &Mutex<Workload>, kill: usize) {
    let files = files_on_disk(&ws.dir()).unwrap_or_else(|e| panic!("after kill {kill}: {e}"));
    // Taken after the kill: every write the sidecar could have seen is recorded.
    let workload = workload.lock().expect("lock");
    let sizes: Vec<(&String, usize)> = files.iter().map(|(path, content)| (path, content.len())).collect();
    assert!(
        workload.history.contains(&fingerprint(&files)),
        "after kill {kill} the files are no state the API held: {sizes:?}"
    );
}

/// One step of the crash test's workload: updates of several objects at once, creates,
/// deletes and key renames, applied to the API and to the workload together.
fn crash_workload_step(api: &FakeApiServer, workload: &mut Workload, n: usize) {
    let value = |tag: &str| format!("{n}-{tag}-{}", "x".repeat(2048));
    let put = |workload: &mut Workload, name: String, data: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if api.apply("configmaps", configmap(&name, &pairs)).is_ok() {
            workload.expected.insert(name, data.into_iter().collect());
            workload.record();
        }
    };
    match n % 10 {
        // Several objects in one burst.
        0..=5 | 9 => {
            let count = if n % 10 == 9 { 3 } else { 2 };
            for i in 0..count {
                let name = format!("cm{}", (n + i) % 4);
                let keys: Vec<String> =
                    workload.expected.get(&name).map(|d| d.keys().cloned().collect()).unwrap_or_default();
                let data = keys.into_iter().map(|k| (k, value("u"))).collect::<Vec<_>>();
                let data = if data.is_empty() { vec![("k".to_owned(), value("u"))] } else { data };
                put(workload, name, data);
            }
        }
        // A new object.
        6 => put(workload, format!("extra{n}"), vec![("a".into(), value("new")), ("b".into(), value("new"))]),
        // The oldest extra object goes.
        7 => {
            if let Some(name) = workload.expected.keys().find(|k| k.starts_with("extra")).cloned()
                && api.delete("configmaps", crate::support::NS, &name).is_some()
            {
                workload.expected.remove(&name);
                workload.record();
            }
        }
        // A key renamed.
        _ => {
            let name = format!("cm{}", n % 4);
            put(workload, name, vec![(format!("r{}", n % 3), value("renamed"))]);
        }
    }
}

/// Leftovers only an interrupted swap leaves: a snapshot dir `..data` does not point at,
/// or `..data_tmp`.
fn interrupted_swap_leftovers(ws: &Workspace) -> bool {
    let current = ws.data_target();
    std::fs::read_dir(ws.dir()).expect("list").flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name == "..data_tmp" || (name.starts_with("..2") && Some(&name) != current.as_ref())
    })
}

// Fake API: Kubernetes is incidental (crash safety on disk); 300 kills under a fast in-process update stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_300_random_instants_always_leaves_a_complete_snapshot() {
    const KILLS: usize = 300;
    /// Every this many kills, updates pause and a restart must converge.
    const CONVERGE_EVERY: usize = 50;
    let api = FakeApiServer::start().await.expect("fake api");
    let workload = Arc::new(Mutex::new(Workload::default()));
    for cm in 0..4 {
        let name = format!("cm{cm}");
        api.apply("configmaps", configmap(&name, &[("k", "0")])).expect("cm");
        workload.lock().expect("lock").expected.insert(name, [("k".to_owned(), "0".to_owned())].into());
    }
    workload.lock().expect("lock").record();
    let ws = Workspace::new(&api);
    // A first snapshot, so that every kill below finds one.
    {
        let first = ws.start(&["--debounce=0", "--max-wait=0"]);
        wait_for("the first snapshot", WAIT, || ws.data_target().is_some()).await;
        first.signal(nix::sys::signal::Signal::SIGKILL);
    }
    let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let streaming = {
        let (api, paused, workload) = (api.clone(), paused.clone(), workload.clone());
        tokio::spawn(async move {
            for n in 1..=200_000_usize {
                if !paused.load(std::sync::atomic::Ordering::SeqCst) {
                    crash_workload_step(&api, &mut workload.lock().expect("lock"), n);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let (mut mid_swap, mut convergences) = (0, 0);
    for kill in 1..=KILLS {
        let sidecar: Sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..120))).await;
        sidecar.signal(nix::sys::signal::Signal::SIGKILL);
        drop(sidecar);
        assert_a_state_the_api_held(&ws, &workload, kill);
        if interrupted_swap_leftovers(&ws) {
            mid_swap += 1;
        }
        if kill % CONVERGE_EVERY == 0 {
            paused.store(true, std::sync::atomic::Ordering::SeqCst);
            let restarted = ws.start(&["--debounce=0", "--max-wait=0"]);
            let expected = workload.lock().expect("lock").expected.clone();
            wait_for("a restart converges to the API state", WAIT, || converged(&expected, &ws)).await;
            drop(restarted);
            convergences += 1;
            paused.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
    streaming.abort();
    let _ = streaming.await;
    let states = workload.lock().expect("lock").history.len();
    eprintln!(
        "crash test: {KILLS} kills, each left one of {states} states the API held; {mid_swap} interrupted \
         a swap, {convergences} restarts converged"
    );
    assert!(mid_swap > 0, "no kill landed inside a swap: the test proves nothing");
    let _sidecar = ws.start(&[]);
    let expected = workload.lock().expect("lock").expected.clone();
    wait_for("converged to the API state", WAIT, || converged(&expected, &ws)).await;
    // The converging swap removes the previous root and every unused node once durable.
    let names = |dir: std::path::PathBuf| -> Vec<String> {
        let entries = std::fs::read_dir(dir).expect("list").flatten();
        entries.map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    wait_for("one snapshot root left", WAIT, || {
        names(ws.dir()).iter().filter(|n| n.starts_with("..2")).count() == 1
    })
    .await;
    // In the by-name layout each object is one top-level entry and one dir in ..objects.
    let objects = expected.len();
    wait_for("no unused object dir left", WAIT, || names(ws.dir().join("..objects")).len() == objects).await;
}
