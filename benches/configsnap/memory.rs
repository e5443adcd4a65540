//! Scenarios `memory` (idle and peak RSS by number of selected ConfigMaps, with update
//! cost, against a baseline binary in the same run; optionally a heap profile), `cpu`
//! (idle CPU with 100 ConfigMaps) and `startup` (first snapshot; restore from last-good).

#[path = "heap_profile.rs"]
mod heap_profile;

use crate::Ctx;
use crate::latency::{Updates, timed_updates};
use crate::report::{Report, Target};
use crate::support::{
    self, CpuSample, DirWatch, Layout, Subject, cm_name, ms, pct, poll, rss_kib, visible_entries,
};
use fake_apiserver::FakeApiServer;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// (selected, total) ConfigMaps of one 4 KiB value: the four sizes, and 1,000
/// selected among 10,000 (the server filters by label).
const SIZES: [(usize, usize); 5] = [(1, 1), (100, 100), (1000, 1000), (5000, 5000), (1000, 10_000)];
/// Idle RSS targets (issue 21): MiB at N selected.
const IDLE_TARGETS: [(usize, f64); 3] = [(100, 8.0), (1000, 12.0), (5000, 32.0)];
/// Peak RSS (VmHWM, the initial list included) at most this many times the idle RSS.
const PEAK_OVER_IDLE: f64 = 2.0;
/// Updates rotate over this many objects (fewer when N is smaller).
const ROTATE: usize = 10;
/// Bound of the wait for the first complete snapshot.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(120);

/// A fake API holding `total` by-name ConfigMaps of 4 KiB, the first `selected` selected.
async fn api_with(total: usize, selected: usize, bookmarks: Duration) -> FakeApiServer {
    support::api_with(total, selected, bookmarks, Layout::ByName, 0).await
}

/// Waits until the sidecar shows `n` visible entries; the time it took from `since`.
async fn wait_entries(sidecar: &Subject, n: usize, since: Instant, every: Duration) -> Option<Duration> {
    poll(Duration::from_secs(90), every, || visible_entries(&sidecar.dir) == n).await.map(|t| t - since)
}

/// What one binary measured at one size.
#[derive(Debug, Default)]
struct Point {
    /// VmRSS after the first snapshot and a quiet period, KiB.
    idle: u64,
    /// VmHWM at the same moment (the initial list's peak), KiB.
    peak: u64,
    /// Update → file visible, ms, sorted.
    file_ms: Vec<f64>,
    /// On-CPU ms per update (schedstat, all threads).
    cpu_ms: Option<f64>,
    /// Updates that never showed.
    missed: usize,
}

/// Idle and peak RSS at every size, then a few timed single-object updates (latency and
/// CPU per update), for the binary under test and, with `CONFIGSNAP_BENCH_BASELINE`, for
/// that binary too, side by side on the same fake API. With `CONFIGSNAP_BENCH_MASSIF` (an
/// unstripped build), also a heap profile of that build at each size, taken when idle.
pub async fn memory(ctx: &Ctx, report: &mut Report) {
    let quiet = if ctx.quick { Duration::from_secs(1) } else { Duration::from_secs(4) };
    let updates: u64 = if ctx.quick { 20 } else { 50 };
    let mut binaries = vec![("", support::binary().expect("checked at start"))];
    if let Some(baseline) = std::env::var_os("CONFIGSNAP_BENCH_BASELINE") {
        binaries.push(("@baseline", PathBuf::from(baseline)));
    }
    let massif = std::env::var_os("CONFIGSNAP_BENCH_MASSIF").map(PathBuf::from);
    let mut table = format!(
        "memory: by-name on the disk, one 4 KiB key per ConfigMap, --debounce 0; {updates} updates per row\n\
         {:<22} {:>9} {:>9} {:>6} {:>9} {:>9} {:>8}\n",
        "binary, N", "idle MiB", "peak MiB", "peak/i", "file p50", "file p99", "CPU ms"
    );
    for (selected, total) in SIZES {
        let label =
            if selected == total { format!("{selected} CMs") } else { format!("{selected} of {total} CMs") };
        let events = (updates as usize + 1) * binaries.len();
        let api = support::api_with(total, selected, Duration::from_secs(60), Layout::ByName, events).await;
        for (round, (suffix, bin)) in binaries.iter().enumerate() {
            let tag = format!("{selected}-{total}{}", suffix.replace('@', "-"));
            let root = ctx.scratch(&format!("memory-{tag}"));
            // Each binary's updates carry higher seqs than the one before it.
            let seqs = round as u64 * updates + 1..=(round as u64 + 1) * updates;
            let seqs = if selected == total { Some(seqs) } else { None };
            let Some(point) = measure(ctx, &api, &root, bin, selected, quiet, seqs).await else {
                report.note(format!("memory: {label}{suffix}: the snapshot never completed"));
                continue;
            };
            table.push_str(&row(&format!("{label}{suffix}"), &point));
            report_point(report, &label, suffix, selected == total, &point);
        }
        if let Some(profiled) = &massif
            && selected == total
        {
            let root = ctx.scratch(&format!("massif-{selected}"));
            match heap_profile::profile(&api, &root, profiled, selected, quiet).await {
                Ok(summary) => {
                    report.block(format!("heap profile, {label} (valgrind massif, idle):\n{summary}"))
                }
                Err(e) => report.note(format!("memory: heap profile at {label} failed: {e}")),
            }
        }
    }
    report.block(table);
}

/// One binary at one size: idle and peak RSS, then `seqs` timed updates when given.
async fn measure(
    ctx: &Ctx,
    api: &FakeApiServer,
    root: &Path,
    bin: &Path,
    n: usize,
    quiet: Duration,
    seqs: Option<std::ops::RangeInclusive<u64>>,
) -> Option<Point> {
    let mut extra = support::signal_flags(root);
    extra.push("--debounce=0".to_owned());
    let sidecar = Subject::spawn_binary(bin, api, root, "mem", &extra);
    let every = Duration::from_millis(20);
    poll(FIRST_SNAPSHOT, every, || visible_entries(&sidecar.dir) == n).await?;
    tokio::time::sleep(quiet).await;
    let (idle, peak) = rss_kib(sidecar.pid())?;
    let mut point = Point { idle, peak, ..Point::default() };
    let Some(seqs) = seqs else { return Some(point) };
    let (signals, api) = (ctx.signals.clone(), api.clone());
    let measured = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects: Vec<String> = (0..n.min(ROTATE)).map(cm_name).collect();
        let attempted = seqs.clone().count().max(1) as f64;
        let before = CpuSample::of(sidecar.pid());
        let updates = Updates { layout: Layout::ByName, objects: &objects, seqs };
        let mut run = timed_updates(&api, &watch, &sidecar.dir, &signals, updates, "memory");
        let after = CpuSample::of(sidecar.pid());
        drop(sidecar);
        point.cpu_ms = before.zip(after).map(|(b, a)| a.since(&b).1 * 1000.0 / attempted);
        run.file_ms.sort_by(f64::total_cmp);
        point.file_ms = run.file_ms;
        point.missed = run.missed;
        point
    })
    .await;
    Some(measured.expect("memory update loop must not panic"))
}

/// One line of the scenario's table.
fn row(label: &str, p: &Point) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let stat = |q| if p.file_ms.is_empty() { "n/a".to_owned() } else { format!("{:.2}", pct(&p.file_ms, q)) };
    let cpu = p.cpu_ms.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}"));
    let ratio = p.peak as f64 / p.idle.max(1) as f64;
    format!(
        "{label:<22} {:>9.1} {:>9.1} {ratio:>6.2} {:>9} {:>9} {cpu:>8}\n",
        mib(p.idle),
        mib(p.peak),
        stat(50.0),
        stat(99.0)
    )
}

/// Rows of one binary at one size; the targets are checked for the binary under test.
fn report_point(report: &mut Report, label: &str, suffix: &str, all_selected: bool, p: &Point) {
    let s = "memory";
    let (idle, peak) = (p.idle as f64 / 1024.0, p.peak as f64 / 1024.0);
    let n: usize = label.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let target = IDLE_TARGETS.iter().find(|(at, _)| *at == n && all_selected && suffix.is_empty());
    let metric = format!("idle RSS, {label} x 4 KiB{suffix}");
    match target {
        Some(&(_, limit)) => report.check(s, metric, idle, "MiB", Target::AtMost(limit)),
        None => report.add(s, metric, idle, "MiB"),
    }
    report.add(s, format!("peak RSS (VmHWM), {label} x 4 KiB{suffix}"), peak, "MiB");
    if suffix.is_empty() && n > 1 {
        let metric = format!("peak / idle RSS, {label}");
        report.check(s, metric, peak / idle.max(f64::MIN_POSITIVE), "x", Target::AtMost(PEAK_OVER_IDLE));
    }
    if !p.file_ms.is_empty() {
        report.detail(s, format!("{label}{suffix}: update -> file p50"), pct(&p.file_ms, 50.0), "ms");
        report.detail(s, format!("{label}{suffix}: update -> file p99"), pct(&p.file_ms, 99.0), "ms");
    }
    if let Some(cpu) = p.cpu_ms {
        report.detail(s, format!("{label}{suffix}: CPU per update (schedstat)"), cpu, "ms");
    }
    if p.missed > 0 {
        report.note(format!("memory: {label}{suffix}: {} updates missed", p.missed));
    }
}

/// CPU used while idle with 100 ConfigMaps, scaled to 60 s.
pub async fn idle_cpu(ctx: &Ctx, report: &mut Report) {
    let span = if ctx.quick { Duration::from_secs(10) } else { Duration::from_secs(60) };
    // A real API server sends a bookmark about once a minute; the fake's default is 1 s.
    let variants: &[(Duration, &str)] = if ctx.quick {
        &[(Duration::from_secs(60), "60 s bookmarks")]
    } else {
        &[(Duration::from_secs(60), "60 s bookmarks"), (Duration::from_secs(1), "1 s bookmarks")]
    };
    for (i, (bookmarks, label)) in variants.iter().enumerate() {
        let api = api_with(100, 100, *bookmarks).await;
        let root = ctx.scratch(&format!("cpu-{i}"));
        let sidecar = Subject::spawn(&api, &root, "cpu", &[]);
        if wait_entries(&sidecar, 100, Instant::now(), Duration::from_millis(20)).await.is_none() {
            report.note("cpu: the snapshot never completed");
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = CpuSample::of(sidecar.pid());
        tokio::time::sleep(span).await;
        let after = CpuSample::of(sidecar.pid());
        let (Some(b), Some(a)) = (before, after) else {
            report.note("cpu: could not read /proc");
            return;
        };
        let scale = 60.0 / span.as_secs_f64();
        let (ticks, sched) = a.since(&b);
        let (ticks, sched) = (ticks * scale, sched * scale);
        let metric = format!("idle CPU utime+stime per 60 s, 100 CMs, {label}");
        if i == 0 {
            report.check("cpu", metric, ticks, "s", Target::AtMost(0.05));
        } else {
            report.add("cpu", metric, ticks, "s");
        }
        report.add("cpu", format!("idle CPU schedstat per 60 s, 100 CMs, {label}"), sched, "s");
    }
}

/// Process start → first snapshot (100 ConfigMaps); and restore from last-good with the
/// API refusing connections and `--startup-timeout 1s`.
pub async fn startup(ctx: &Ctx, report: &mut Report) {
    let api = api_with(100, 100, Duration::from_secs(60)).await;
    let root = ctx.scratch("startup");
    let state = root.join("state");
    let state_flag = format!("--state-dir={}", state.display());
    let started = Instant::now();
    let sidecar = Subject::spawn(&api, &root, "first", std::slice::from_ref(&state_flag));
    let Some(first) = wait_entries(&sidecar, 100, started, Duration::from_millis(1)).await else {
        report.note("startup: the first snapshot never completed");
        return;
    };
    report.add("startup", "start -> first snapshot on disk, 100 CMs", ms(first), "ms");
    let saved =
        poll(Duration::from_secs(10), Duration::from_millis(10), || state.join("..data").exists()).await;
    drop(sidecar);
    if saved.is_none() {
        report.note("startup: the last-good copy was never written");
        return;
    }
    api.faults().set_refuse(true).await.expect("refuse");
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let restore = Subject::spawn(&api, &root, "restore", &[state_flag, "--startup-timeout=1s".to_owned()]);
    match wait_entries(&restore, 100, started, Duration::from_millis(1)).await {
        Some(total) => {
            report.add("startup", "restore from last-good (API down, timeout 1 s): total", ms(total), "ms");
            report.add(
                "startup",
                "restore from last-good: beyond the 1 s timeout",
                ms(total.saturating_sub(timeout)),
                "ms",
            );
        }
        None => report.note("startup: restore from last-good never completed"),
    }
    drop(restore);
    let _ = api.faults().set_refuse(false).await;
}
