//! Scenario `scale`: what one single-object update costs as the number of selected
//! ConfigMaps grows (1, 100, 1,000, 5,000 of one 4 KiB key), in the by-name and flat
//! layouts, on the disk and on tmpfs: time to the first snapshot, idle RSS, update → file
//! and update → signal, CPU and sync calls per update, next to the filesystem's floor.

use crate::Ctx;
use crate::latency::{UpdateRun, Updates, timed_updates};
use crate::report::{Report, Target};
use crate::scratch_fs;
use crate::strace::Strace;
use crate::support::{
    self, CpuSample, DirWatch, Layout, Subject, cm_name, pct, poll, rss_kib, summary, visible_entries,
};
use std::path::Path;
use std::time::{Duration, Instant};

const S: &str = "scale";
/// The numbers of selected ConfigMaps, all measured in every run unless capped by
/// `CONFIGSNAP_BENCH_SCALE_MAX`.
const COUNTS: [usize; 4] = [1, 100, 1000, 5000];
/// Bound of the wait for the first complete snapshot.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(180);
/// Updates rotate over this many objects (fewer when N is smaller).
const ROTATE: usize = 10;
/// Floor measurements per filesystem.
const FLOOR_REPS: usize = 200;
/// The sidecar's counter of sync calls (fsync, fdatasync, ...).
const SYNC_METRIC: &str = "configsnap_sync_calls_total";
/// strace is attached for by-name, disk and this N (or the largest N run, when capped).
const STRACE_AT: usize = 1000;
/// Updates in the strace phase (an extra phase, so strace slows no timed update).
const STRACE_UPDATES: u64 = 30;
/// Wait after the last update before reading counters (the post-reload dir fsync).
const SETTLE: Duration = Duration::from_millis(200);

/// What one (layout, filesystem, N) measured.
#[derive(Debug, Default)]
struct Point {
    n: usize,
    /// Spawn → all N entries visible.
    first: Option<Duration>,
    /// VmRSS after the first snapshot and a quiet period.
    rss_kib: Option<u64>,
    run: UpdateRun,
    /// CPU per update, ms: utime+stime (clock ticks), schedstat on-CPU time.
    cpu_ms: Option<(f64, f64)>,
    /// Sync calls per update from `/metrics`.
    syncs: Option<f64>,
    /// Sync calls per update counted by strace, when attached.
    strace: Option<Result<f64, String>>,
}

impl Point {
    /// Sync calls per update: the metric, else strace's count.
    fn syncs(&self) -> Option<f64> {
        self.syncs.or_else(|| self.strace.as_ref()?.as_ref().ok().copied())
    }
}

/// Runs every layout × filesystem × N and reports them.
pub async fn scale(ctx: &Ctx, report: &mut Report) {
    let counts = counts(report);
    let updates: u64 = if ctx.quick { 30 } else { 200 };
    let shm = scratch_fs::tmpfs(report);
    let disk = ctx.scratch("scale");
    if scratch_fs::is_tmpfs(&disk) {
        report.note("scale: the temp dir is on tmpfs, so the \"disk\" figures are tmpfs too");
    }
    let journaled = scratch_fs::JournaledExt4::mount(&ctx.scratch("scale-ext4j"), report);
    let mut filesystems = vec![("disk", disk)];
    filesystems.extend(shm.as_ref().map(|d| ("tmpfs", d.path().to_path_buf())));
    filesystems.extend(journaled.as_ref().map(|m| ("ext4j", m.path().to_path_buf())));
    let strace_n = counts.iter().copied().filter(|&n| n <= STRACE_AT).max();
    let mut table =
        format!("scale: {updates} single-object updates per N, one 4 KiB key each, --debounce 0\n");
    table.push_str(&line([
        "layout/fs",
        "N",
        "file p50",
        "file p99",
        "sig p50",
        "sig p99",
        "CPU ms",
        "syncs",
        "RSS MiB",
        "first s",
        "missed",
    ]));
    let mut no_syncs = Vec::new();
    for (fs, base) in &filesystems {
        for layout in [Layout::ByName, Layout::Flat] {
            let config = format!("{}/{fs}", layout.name());
            let mut points = Vec::new();
            for &n in &counts {
                eprintln!("scale: {config} N={n}");
                let root = base.join(format!("{}-{n}", layout.name()));
                std::fs::create_dir_all(&root).expect("scale scratch dir");
                let strace = layout == Layout::ByName && *fs == "disk" && Some(n) == strace_n;
                points.push(measure(ctx, &root, layout, n, updates, strace).await);
            }
            for point in &mut points {
                table.push_str(&row(&config, point));
            }
            report_points(report, &config, &mut points);
            let missing: Vec<String> =
                points.iter().filter(|p| p.syncs().is_none()).map(|p| p.n.to_string()).collect();
            if !missing.is_empty() {
                no_syncs.push(format!("{config} N={}", missing.join(",")));
            }
        }
        table.push_str(&floor(base, fs, report));
    }
    table.push_str(
        "(times in ms; CPU = schedstat on-CPU ms per update, utime+stime in results.json; \
         syncs = configsnap_sync_calls_total per update, \"st\" = counted by strace)\n",
    );
    report.block(table);
    if !no_syncs.is_empty() {
        report.note(format!(
            "scale: sync calls per update n/a (no {SYNC_METRIC} on /metrics, no strace) for {}",
            no_syncs.join("; ")
        ));
    }
}

/// `COUNTS`, capped by `CONFIGSNAP_BENCH_SCALE_MAX` when set (N = 1 always runs).
fn counts(report: &mut Report) -> Vec<usize> {
    let Ok(max) = std::env::var("CONFIGSNAP_BENCH_SCALE_MAX") else { return COUNTS.to_vec() };
    match max.trim().parse::<usize>() {
        Ok(max) => {
            report.note(format!("scale: N capped at {max} by CONFIGSNAP_BENCH_SCALE_MAX"));
            COUNTS.iter().copied().filter(|&n| n <= max.max(1)).collect()
        }
        Err(_) => {
            report.note(format!("scale: ignoring CONFIGSNAP_BENCH_SCALE_MAX={max:?} (not a number)"));
            COUNTS.to_vec()
        }
    }
}

/// One sidecar over `n` fresh ConfigMaps: first snapshot, idle RSS, then `updates` timed
/// single-object updates (and, when `strace`, an extra phase under strace).
async fn measure(ctx: &Ctx, root: &Path, layout: Layout, n: usize, updates: u64, strace: bool) -> Point {
    let mut point = Point { n, ..Point::default() };
    let events = (updates + STRACE_UPDATES) as usize;
    let api = support::api_with(n, n, Duration::from_secs(60), layout, events).await;
    let mut extra = support::signal_flags(root);
    extra.extend(["--debounce=0".to_owned(), format!("--layout={}", layout.name())]);
    let started = Instant::now();
    let sidecar = Subject::spawn(&api, root, "scale", &extra);
    let every = Duration::from_millis(if n >= 1000 { 20 } else { 5 });
    point.first =
        poll(FIRST_SNAPSHOT, every, || visible_entries(&sidecar.dir) == n).await.map(|t| t - started);
    if point.first.is_none() {
        eprintln!("scale: N={n}: the first snapshot never completed");
        point.run.missed = updates as usize;
        return point;
    }
    tokio::time::sleep(Duration::from_secs(if ctx.quick { 1 } else { 4 })).await;
    point.rss_kib = rss_kib(sidecar.pid()).map(|(rss, _)| rss);
    let signals = ctx.signals.clone();
    let root = root.to_path_buf();
    let runtime = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects: Vec<String> = (0..n.min(ROTATE)).map(cm_name).collect();
        let phase = |seqs| {
            let updates = Updates { layout, objects: &objects, seqs };
            let run = timed_updates(&api, &watch, &sidecar.dir, &signals, updates, "scale");
            std::thread::sleep(SETTLE);
            let attempted = (run.file_ms.len() + run.missed).max(1) as f64;
            (run, attempted)
        };
        let pid = sidecar.pid();
        let (syncs_before, cpu_before) =
            (runtime.block_on(sidecar.metric_sum(SYNC_METRIC)), CpuSample::of(pid));
        let (run, attempted) = phase(1..=updates);
        let (syncs_after, cpu_after) =
            (runtime.block_on(sidecar.metric_sum(SYNC_METRIC)), CpuSample::of(pid));
        point.run = run;
        point.syncs = syncs_before.zip(syncs_after).map(|(b, a)| (a - b) / attempted);
        point.cpu_ms = cpu_before.zip(cpu_after).map(|(b, a)| {
            let (ticks, on_cpu) = a.since(&b);
            (ticks * 1000.0 / attempted, on_cpu * 1000.0 / attempted)
        });
        if strace {
            point.strace = Some(Strace::attach(pid, &root).and_then(|tracer| {
                let (_, attempted) = phase(updates + 1..=updates + STRACE_UPDATES);
                Ok(tracer.finish()? as f64 / attempted)
            }));
        }
        drop(sidecar);
        point
    })
    .await;
    joined.expect("scale loop must not panic")
}

/// One line of the compact table.
fn row(config: &str, p: &mut Point) -> String {
    let opt = |v: Option<f64>, prec: usize| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.prec$}"));
    p.run.file_ms.sort_by(f64::total_cmp);
    p.run.signal_ms.sort_by(f64::total_cmp);
    let stat = |v: &[f64], q| (!v.is_empty()).then(|| pct(v, q));
    let syncs = match (p.syncs, &p.strace) {
        (Some(v), _) => format!("{v:.1}"),
        (None, Some(Ok(v))) => format!("{v:.1} st"),
        _ => "n/a".to_owned(),
    };
    line([
        config,
        &p.n.to_string(),
        &opt(stat(&p.run.file_ms, 50.0), 2),
        &opt(stat(&p.run.file_ms, 99.0), 2),
        &opt(stat(&p.run.signal_ms, 50.0), 2),
        &opt(stat(&p.run.signal_ms, 99.0), 2),
        &opt(p.cpu_ms.map(|c| c.1), 3),
        &syncs,
        &opt(p.rss_kib.map(|k| k as f64 / 1024.0), 1),
        &opt(p.first.map(|d| d.as_secs_f64()), 2),
        &p.run.missed.to_string(),
    ])
}

/// One line of the compact table from its cells.
fn line(c: [&str; 11]) -> String {
    format!(
        "{:<14} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>7} {:>8} {:>6}\n",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    )
}

/// Every figure of one layout × filesystem to the JSON, and the targets' checks.
fn report_points(report: &mut Report, config: &str, points: &mut [Point]) {
    for p in points.iter_mut() {
        let at = format!("{config} N={}:", p.n);
        report.detail(S, format!("{at} updates measured"), p.run.file_ms.len() as f64, "count");
        report.detail(S, format!("{at} updates missed"), p.run.missed as f64, "count");
        if p.run.missed > 0 {
            report.note(format!("scale: {at} {} updates missed (no file or signal in 5 s)", p.run.missed));
        }
        if let Some(first) = p.first {
            report.detail(S, format!("{at} spawn -> first complete snapshot"), first.as_secs_f64(), "s");
        }
        if let Some(rss) = p.rss_kib {
            report.detail(S, format!("{at} idle RSS"), rss as f64 / 1024.0, "MiB");
        }
        for (what, v) in
            [("update -> file visible", &mut p.run.file_ms), ("update -> signal", &mut p.run.signal_ms)]
        {
            if !v.is_empty() {
                let (p50, _, p99, _) = summary(v);
                report.detail(S, format!("{at} {what} p50"), p50, "ms");
                report.detail(S, format!("{at} {what} p99"), p99, "ms");
            }
        }
        if let Some((ticks, sched)) = p.cpu_ms {
            report.detail(S, format!("{at} CPU per update, utime+stime"), ticks, "ms");
            report.detail(S, format!("{at} CPU per update, schedstat"), sched, "ms");
        }
        if let Some(v) = p.syncs {
            report.detail(S, format!("{at} sync calls per update (/metrics)"), v, "count");
        }
        match &p.strace {
            Some(Ok(v)) => report.detail(S, format!("{at} sync calls per update (strace)"), *v, "count"),
            Some(Err(e)) => report.note(format!("scale: {at} strace cross-check failed: {e}")),
            None => {}
        }
    }
    checks(report, config, points);
}

/// The targets for one layout × filesystem.
fn checks(report: &mut Report, config: &str, points: &[Point]) {
    let at = |n: usize| points.iter().find(|p| p.n == n);
    let p99 = |p: &Point| (!p.run.file_ms.is_empty()).then(|| pct(&p.run.file_ms, 99.0));
    for (n, limit) in [(1000, 2.0), (5000, 4.0)] {
        let Some(big) = at(n) else { continue };
        match (at(1).and_then(p99), p99(big)) {
            (Some(base), Some(v)) if base > 0.0 => {
                let metric = format!("{config} file p99 N={n} / N=1");
                report.check(S, metric, v / base, "x", Target::AtMost(limit));
            }
            _ => report.note(format!("scale: {config}: no file p99 to compare at N=1 and N={n}")),
        }
    }
    for p in points {
        if let Some(v) = p.syncs() {
            let metric = format!("{config} sync calls/update N={}", p.n);
            report.check(S, metric, v, "count", Target::AtMost(4.0));
        }
    }
    let cpu = |n: usize| at(n).and_then(|p| p.cpu_ms).map(|(_, sched)| sched);
    if let (Some(one), Some(hundred)) = (cpu(1), cpu(100))
        && one > 0.0
    {
        let metric = format!("{config} CPU/update N=100 / N=1 (schedstat)");
        report.check(S, metric, hundred / one, "x", Target::AtMost(1.5));
    }
    if config == "by-name/disk" {
        for (n, limit) in [(100, 8.0), (1000, 12.0), (5000, 32.0)] {
            if let Some(rss) = at(n).and_then(|p| p.rss_kib) {
                let metric = format!("{config} idle RSS N={n}");
                report.check(S, metric, rss as f64 / 1024.0, "MiB", Target::AtMost(limit));
            }
        }
    }
}

/// The floor on the filesystem of `base`: a detail row each for p50/p99, and a table line.
fn floor(base: &Path, fs: &str, report: &mut Report) -> String {
    let dir = base.join("floor");
    let measured = std::fs::create_dir_all(&dir).and_then(|()| support::disk_floor(&dir, FLOOR_REPS));
    match measured {
        Ok(mut v) => {
            let (p50, _, p99, _) = summary(&mut v);
            report.detail(S, format!("floor/{fs}: write 4K+fsync+rename+dir fsync p50"), p50, "ms");
            report.detail(S, format!("floor/{fs}: write 4K+fsync+rename+dir fsync p99"), p99, "ms");
            format!(
                "{:<14} {:>5} {p50:>9.2} {p99:>9.2}   (write 4 KiB + fsync + rename + dir fsync)\n",
                format!("floor/{fs}"),
                "-"
            )
        }
        Err(e) => {
            report.note(format!("scale: floor on {fs} failed: {e}"));
            format!("floor/{fs}: failed\n")
        }
    }
}
