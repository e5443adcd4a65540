//! Readers that resolve `..data` once and then read many files (the documented way to see
//! exactly one generation) never find a file gone while swaps go on: the replaced
//! generation stays readable for `--gc-grace`.

use crate::support::{WAIT, Workspace, configmap, wait_for};
use fake_apiserver::FakeApiServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SWAPS: usize = 1000;
const OBJECTS: usize = 20;
const READERS: usize = 3;

/// What one reader saw: passes made, files read, files that had vanished.
#[derive(Debug, Default)]
struct Seen {
    passes: u64,
    reads: u64,
    vanished: u64,
}

/// Resolves `..data` once per pass, then reads every object's file through that
/// generation, until `stop`.
fn read_resolved_generations(dir: std::path::PathBuf, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let slots: Vec<String> = (0..OBJECTS)
        .map(|i| {
            let slot = configsnap::disk::visible_link_target(&format!("cm{i}"));
            format!("{}/k", slot.trim_start_matches("..data/"))
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
        let Ok(target) = std::fs::read_link(dir.join("..data")) else { continue };
        let generation = dir.join(target);
        seen.passes += 1;
        for slot in &slots {
            match std::fs::read(generation.join(slot)) {
                Ok(_) => seen.reads += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => seen.vanished += 1,
                Err(e) => panic!("reading {}: {e}", generation.join(slot).display()),
            }
        }
    }
    seen
}

// Fake API: Kubernetes is incidental (readers during swaps); 1,000 quick updates from an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_resolved_data_lose_no_file_during_1000_swaps() {
    let api = FakeApiServer::start().await.expect("fake api");
    for i in 0..OBJECTS {
        api.apply("configmaps", configmap(&format!("cm{i}"), &[("k", "0")])).expect("object");
    }
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0", "--gc-grace=120s"]);
    wait_for("the first snapshot", WAIT, || ws.read(&format!("cm{}/k", OBJECTS - 1)).is_some()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (dir, stop) = (ws.dir(), stop.clone());
            std::thread::spawn(move || read_resolved_generations(dir, stop))
        })
        .collect();
    for n in 1..=SWAPS {
        // Every object changes in turn, so each swap drops one object dir and its leaf.
        let name = format!("cm{}", n % OBJECTS);
        let value = n.to_string();
        api.apply("configmaps", configmap(&name, &[("k", &value)])).expect("update");
        wait_for("each update lands", WAIT, || {
            ws.read(&format!("{name}/k")).as_deref() == Some(value.as_str())
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    let swaps = sidecar.metric("configsnap_swaps_total").await.expect("swaps");
    assert!(swaps >= SWAPS as f64, "{swaps} swaps");
    assert!(seen.iter().all(|s| s.passes > 0 && s.reads > 0), "a reader read nothing: {seen:?}");
    let vanished: u64 = seen.iter().map(|s| s.vanished).sum();
    assert_eq!(vanished, 0, "files vanished under readers within the grace: {seen:?}");
}

/// The snapshot roots in `dir` (`..YYYY_MM_DD_…`): the live one and those kept for readers.
fn snapshot_roots(dir: &std::path::Path) -> Vec<String> {
    configsnap_kit::fs::names_with_prefix(dir, "..2")
}

// Fake API: Kubernetes is incidental (an idle sidecar's clean-up); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_generation_is_removed_when_its_grace_runs_out_with_no_further_change() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("k", "v1")])).expect("web");
    let ws = Workspace::new(&api);
    let _sidecar = ws.start(&["--debounce=0", "--max-wait=0", "--gc-grace=1s"]);
    wait_for("the first snapshot", WAIT, || ws.read("web/k").as_deref() == Some("v1")).await;
    api.apply("configmaps", configmap("web", &[("k", "v2")])).expect("update");
    wait_for("the update", WAIT, || ws.read("web/k").as_deref() == Some("v2")).await;
    // Nothing changes any more: only the grace's own timer can remove the old root.
    wait_for("one snapshot root left once the grace is over", WAIT, || snapshot_roots(&ws.dir()).len() == 1)
        .await;
    assert_eq!(ws.read("web/k").as_deref(), Some("v2"), "the live snapshot stays");
}
