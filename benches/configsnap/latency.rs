//! Scenarios `latency` (update → file visible, update → signal delivered) and `swap`
//! (the swap's write / fsync / rename parts from the sidecar's log, and the disk's floor).

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{
    self, DirWatch, Layout, Subject, configmap, configmap_in, ms, seq_in, seq_on_disk, summary,
};
use fake_apiserver::{FakeApiServer, Options};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Size of the ConfigMap's one key.
const SIZE: usize = 4096;
/// Bound of each wait for one update.
const WAIT: Duration = Duration::from_secs(5);

/// What a run of sequential updates measured.
#[derive(Debug, Default)]
pub struct UpdateRun {
    /// Update → file visible, ms.
    pub file_ms: Vec<f64>,
    /// Update → USR1 received by the bench (the `--pid-file` target), ms.
    pub signal_ms: Vec<f64>,
    /// `write_ms`, `fsync_ms`, `rename_ms` of every "snapshot swapped" log line.
    pub parts: [Vec<f64>; 3],
    /// Updates whose file or signal did not arrive within the bound.
    pub missed: usize,
}

/// `n` sequential updates of one 4 KiB ConfigMap with `--debounce 0`, each waited for.
pub async fn run_updates(ctx: &Ctx, n: usize) -> UpdateRun {
    let opts = Options { bookmark_interval: Duration::from_secs(60), ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    api.apply("configmaps", configmap("app", 0, SIZE, true)).expect("apply");
    let root = ctx.scratch("latency");
    let mut extra = support::signal_flags(&root);
    extra.push("--debounce=0".to_owned());
    let sidecar = Subject::spawn(&api, &root, "latency", &extra);
    let signals = ctx.signals.clone();
    let run = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        if watch.wait(Duration::from_secs(20), || seq_on_disk(&sidecar.dir, "app") == Some(0)).is_none() {
            eprintln!("latency: the first snapshot never appeared");
            return (UpdateRun { missed: n, ..UpdateRun::default() }, sidecar);
        }
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects = ["app".to_owned()];
        let updates = Updates { layout: Layout::ByName, objects: &objects, seqs: 1..=n as u64 };
        (timed_updates(&api, &watch, &sidecar.dir, &signals, updates, "latency"), sidecar)
    })
    .await;
    let (mut run, sidecar) = run.expect("latency loop must not panic");
    for line in sidecar.log_lines("snapshot swapped").iter().skip(1) {
        for (i, field) in ["write_ms", "fsync_ms", "rename_ms"].iter().enumerate() {
            if let Some(v) = line[*field].as_f64() {
                run.parts[i].push(v);
            }
        }
    }
    run
}

/// Which sequential single-object updates [`timed_updates`] applies.
pub struct Updates<'a> {
    /// Where the objects' files are.
    pub layout: Layout,
    /// The objects, updated in turn (update `seq` goes to `objects[seq % len]`).
    pub objects: &'a [String],
    /// The `seq` of each update, written into the object's one 4 KiB key.
    pub seqs: RangeInclusive<u64>,
}

/// Applies `updates` one at a time, each waited for: update → new `seq` visible in the
/// object's file under `dir` (woken by `watch`), and update → SIGUSR1 on `signals`.
/// Stops after 5 misses (no file or signal within 5 s); `tag` prefixes that message.
pub fn timed_updates(
    api: &FakeApiServer,
    watch: &DirWatch,
    dir: &Path,
    signals: &mpsc::Receiver<Instant>,
    updates: Updates<'_>,
    tag: &str,
) -> UpdateRun {
    let mut run = UpdateRun::default();
    for seq in updates.seqs {
        let name = &updates.objects[seq as usize % updates.objects.len()];
        let file = updates.layout.file(dir, name);
        while signals.try_recv().is_ok() {}
        let started = Instant::now();
        api.apply("configmaps", configmap_in(updates.layout, name, seq, SIZE, true)).expect("apply");
        let seen = watch.wait(WAIT, || seq_in(&file) == Some(seq));
        let signalled = signals.recv_timeout(WAIT).ok();
        match (seen, signalled) {
            (Some(file), Some(signal)) => {
                run.file_ms.push(ms(file - started));
                run.signal_ms.push(ms(signal.saturating_duration_since(started)));
            }
            _ => {
                run.missed += 1;
                if run.missed >= 5 {
                    eprintln!("{tag}: 5 updates missed, stopping early");
                    break;
                }
            }
        }
    }
    run
}

/// Reports update → file and update → signal.
pub fn report_latency(run: &mut UpdateRun, report: &mut Report) {
    let s = "latency";
    report.add(s, "updates measured (4 KiB, --debounce 0)", run.file_ms.len() as f64, "count");
    report.add(s, "updates missed (no file or signal within 5 s)", run.missed as f64, "count");
    let (p50, p90, p99, max) = summary(&mut run.file_ms);
    report.add(s, "update -> file visible p50", p50, "ms");
    report.add(s, "update -> file visible p90", p90, "ms");
    report.check(s, "update -> file visible p99", p99, "ms", Target::AtMost(10.0));
    report.add(s, "update -> file visible max", max, "ms");
    let (p50, p90, p99, max) = summary(&mut run.signal_ms);
    report.add(s, "update -> signal delivered p50", p50, "ms");
    report.add(s, "update -> signal delivered p90", p90, "ms");
    report.check(s, "update -> signal delivered p99", p99, "ms", Target::AtMost(15.0));
    report.add(s, "update -> signal delivered max", max, "ms");
}

/// Reports the swap's parts and measures the disk's floor in the same filesystem.
pub fn report_swap(ctx: &Ctx, run: &mut UpdateRun, report: &mut Report) {
    let s = "swap";
    for (i, name) in ["write", "fsync", "rename (+links, cleanup, dir fsync)"].iter().enumerate() {
        let (p50, _, p99, _) = summary(&mut run.parts[i]);
        report.add(s, format!("sidecar {name} p50"), p50, "ms");
        report.add(s, format!("sidecar {name} p99"), p99, "ms");
    }
    let mut totals: Vec<f64> = (0..run.parts[0].len())
        .filter_map(|i| Some(run.parts[0].get(i)? + run.parts[1].get(i)? + run.parts[2].get(i)?))
        .collect();
    let (p50, _, p99, _) = summary(&mut totals);
    report.add(s, "sidecar whole swap p50", p50, "ms");
    report.add(s, "sidecar whole swap p99", p99, "ms");
    let reps = if ctx.quick { 100 } else { 400 };
    match support::disk_floor(&ctx.scratch("floor"), reps) {
        Ok(mut floor) => {
            let (p50, _, p99, _) = summary(&mut floor);
            report.add(s, "disk floor: write 4K+fsync+rename+dir fsync p50", p50, "ms");
            report.add(s, "disk floor: write 4K+fsync+rename+dir fsync p99", p99, "ms");
        }
        Err(e) => report.note(format!("swap: disk floor failed: {e}")),
    }
}
