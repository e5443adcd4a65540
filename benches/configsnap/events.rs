//! Scenario `events`: update → file visible and update → signal delivered with Kubernetes
//! Events off, on, on with the API answering 403 to every Event write, and on with the API
//! taking 1 s per Event write; same run, same machine, so the figures compare. Event
//! delivery runs in the background and must not move these numbers.

use crate::Ctx;
use crate::latency::{UpdateRun, Updates, timed_updates};
use crate::report::Report;
use crate::support::{self, DirWatch, Layout, Subject, configmap, seq_on_disk, summary};
use fake_apiserver::{FakeApiServer, Options};
use std::time::Duration;

/// Size of the ConfigMap's one key (as in `latency`).
const SIZE: usize = 4096;

/// The variants measured, in order: (tag, `--events` value, what the API does to Events).
const VARIANTS: [(&str, &str, Api); 4] = [
    ("events off", "false", Api::Accepts),
    ("events on", "true", Api::Accepts),
    ("events on, API answers 403", "true", Api::Forbids),
    ("events on, API takes 1 s per Event", "true", Api::Slow),
];

/// What the fake API does with Event writes.
#[derive(Debug, Clone, Copy)]
enum Api {
    Accepts,
    Forbids,
    Slow,
}

/// Runs every variant (`n` updates each) and reports p50/p99 of both latencies.
pub async fn events(ctx: &Ctx, report: &mut Report) {
    let n = if ctx.quick { 100 } else { 300 };
    for (i, (tag, flag, api_mode)) in VARIANTS.iter().enumerate() {
        let mut run = one(ctx, i, flag, *api_mode, n).await;
        let s = "events";
        report.add(s, format!("{tag}: updates measured"), run.file_ms.len() as f64, "count");
        let (p50, _, p99, _) = summary(&mut run.file_ms);
        report.add(s, format!("{tag}: update -> file p50"), p50, "ms");
        report.add(s, format!("{tag}: update -> file p99"), p99, "ms");
        let (p50, _, p99, _) = summary(&mut run.signal_ms);
        report.add(s, format!("{tag}: update -> signal p50"), p50, "ms");
        report.add(s, format!("{tag}: update -> signal p99"), p99, "ms");
    }
}

async fn one(ctx: &Ctx, index: usize, flag: &str, mode: Api, n: usize) -> UpdateRun {
    let opts = Options { bookmark_interval: Duration::from_secs(60), ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    match mode {
        Api::Accepts => {}
        Api::Forbids => api.faults().set_event_writes_status(Some(403)),
        Api::Slow => api.faults().set_event_writes_delay(Duration::from_secs(1)),
    }
    api.apply("configmaps", configmap("app", 0, SIZE, true)).expect("apply");
    let root = ctx.scratch(&format!("events-{index}"));
    let mut extra = support::signal_flags(&root);
    extra.extend(["--debounce=0".to_owned(), format!("--events={flag}")]);
    let sidecar = Subject::spawn(&api, &root, "events", &extra);
    let signals = ctx.signals.clone();
    let run = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        if watch.wait(Duration::from_secs(20), || seq_on_disk(&sidecar.dir, "app") == Some(0)).is_none() {
            eprintln!("events: the first snapshot never appeared");
            return UpdateRun { missed: n, ..UpdateRun::default() };
        }
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects = ["app".to_owned()];
        let updates = Updates { layout: Layout::ByName, objects: &objects, seqs: 1..=n as u64 };
        timed_updates(&api, &watch, &sidecar.dir, &signals, updates, "events")
    })
    .await;
    run.expect("events loop must not panic")
}
