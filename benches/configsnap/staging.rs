//! Scenarios `validate` and `grace`, at 1, 100, 1,000 and 5,000 selected ConfigMaps (by
//! name, on the disk, one 4 KiB key each):
//! - `validate`: what the validation view costs. Update → file and CPU per update with no
//!   validator, with `--validate-cmd true` (the view is built, the command does nothing)
//!   and with a validator that walks the view (`find -type f`), so the difference is the
//!   view plus the command; with `CONFIGSNAP_BENCH_BASELINE=<binary>`, the no-validator
//!   path of that build too, in the same run, to show the path without a validator did
//!   not get slower.
//! - `grace`: the disk cost of `--gc-grace`: bytes and inodes of `--dir` after `UPDATES`
//!   single-object updates within the grace (30 s) and with none (0).

use crate::Ctx;
use crate::latency::{UpdateRun, Updates, timed_updates};
use crate::report::Report;
use crate::support::{self, CpuSample, DirWatch, Layout, Subject, cm_name, pct, poll, visible_entries};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The numbers of selected ConfigMaps.
const COUNTS: [usize; 4] = [1, 100, 1000, 5000];
/// Bound of the wait for the first complete snapshot.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(180);
/// Updates rotate over this many objects (fewer when N is smaller).
const ROTATE: usize = 10;

/// One way to run the sidecar in `validate`.
struct Mode {
    name: &'static str,
    binary: PathBuf,
    flags: Vec<String>,
}

/// What one sidecar run measured.
struct Measured {
    run: UpdateRun,
    /// On-CPU ms per update.
    cpu_ms: Option<f64>,
    /// Bytes (allocated) and inodes below the target dir after the updates.
    disk: (u64, u64),
}

/// Scenario `validate`.
pub async fn validate(ctx: &Ctx, report: &mut Report) {
    let updates: u64 = if ctx.quick { 20 } else { 100 };
    let binary = support::binary().expect("checked at start");
    let mut modes = vec![
        Mode { name: "none", binary: binary.clone(), flags: Vec::new() },
        Mode { name: "true", binary: binary.clone(), flags: vec!["--validate-cmd=true".into()] },
        Mode {
            name: "find",
            binary: binary.clone(),
            flags: vec![r#"--validate-cmd=["find", "$CONFIGSNAP_STAGED_DIR", "-type", "f"]"#.into()],
        },
    ];
    if let Some(baseline) = std::env::var_os("CONFIGSNAP_BENCH_BASELINE").map(PathBuf::from) {
        modes.push(Mode { name: "none@baseline", binary: baseline, flags: Vec::new() });
    }
    let mut table = format!(
        "validate: {updates} single-object updates per N, by-name on the disk, --debounce 0\n\
         {:<14} {:>5} {:>9} {:>9} {:>8}\n",
        "validator", "N", "file p50", "file p99", "CPU ms"
    );
    for &n in &COUNTS {
        for mode in &modes {
            let root = ctx.scratch(&format!("validate-{}-{n}", mode.name.replace('@', "-")));
            let Some(mut m) = measure(ctx, &root, &mode.binary, n, updates, &mode.flags).await else {
                report.note(format!("validate: {} N={n}: the first snapshot never completed", mode.name));
                continue;
            };
            m.run.file_ms.sort_by(f64::total_cmp);
            let (p50, p99) = (pct(&m.run.file_ms, 50.0), pct(&m.run.file_ms, 99.0));
            let metric = |what: &str| format!("validator {} N={n}: {what}", mode.name);
            report.add("validate", metric("update→file p50"), p50, "ms");
            report.add("validate", metric("update→file p99"), p99, "ms");
            if let Some(cpu) = m.cpu_ms {
                report.add("validate", metric("CPU per update"), cpu, "ms");
            }
            if m.run.missed > 0 {
                report.note(format!("validate: {} N={n}: {} updates missed", mode.name, m.run.missed));
            }
            let cpu = m.cpu_ms.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}"));
            table.push_str(&format!("{:<14} {:>5} {:>9.2} {:>9.2} {:>8}\n", mode.name, n, p50, p99, cpu));
        }
    }
    report.block(table);
}

/// Scenario `grace`.
pub async fn grace(ctx: &Ctx, report: &mut Report) {
    let updates: u64 = if ctx.quick { 20 } else { 200 };
    let binary = support::binary().expect("checked at start");
    let mut table = format!(
        "grace: --dir after {updates} single-object updates, by-name on the disk\n\
         {:<10} {:>5} {:>10} {:>8} {:>14}\n",
        "gc-grace", "N", "KiB", "inodes", "KiB per update"
    );
    for &n in &COUNTS {
        let mut without = None;
        for grace in ["0s", "30s"] {
            let root = ctx.scratch(&format!("grace-{grace}-{n}"));
            let flags = vec![format!("--gc-grace={grace}")];
            let Some(m) = measure(ctx, &root, &binary, n, updates, &flags).await else {
                report.note(format!("grace: {grace} N={n}: the first snapshot never completed"));
                continue;
            };
            let (kib, inodes) = (m.disk.0 as f64 / 1024.0, m.disk.1 as f64);
            let extra = without.map_or(0.0, |(k, _): (f64, f64)| (kib - k) / updates as f64);
            report.add("grace", format!("--gc-grace={grace} N={n}: --dir size"), kib, "KiB");
            report.add("grace", format!("--gc-grace={grace} N={n}: --dir inodes"), inodes, "");
            if grace != "0s" {
                report.add("grace", format!("--gc-grace={grace} N={n}: kept per update"), extra, "KiB");
            }
            table.push_str(&format!("{grace:<10} {n:>5} {kib:>10.0} {inodes:>8.0} {extra:>14.1}\n"));
            without.get_or_insert((kib, inodes));
        }
    }
    report.block(table);
}

/// One sidecar (`binary` with `flags`) over `n` fresh ConfigMaps: `updates` timed
/// single-object updates, CPU per update, and the target dir's size after them.
async fn measure(
    ctx: &Ctx,
    root: &Path,
    binary: &Path,
    n: usize,
    updates: u64,
    flags: &[String],
) -> Option<Measured> {
    let api = support::api_with(n, n, Duration::from_secs(60), Layout::ByName, updates as usize).await;
    let mut extra = support::signal_flags(root);
    extra.push("--debounce=0".to_owned());
    extra.extend(flags.iter().cloned());
    let sidecar = Subject::spawn_binary(binary, &api, root, "staging", &extra);
    let every = Duration::from_millis(if n >= 1000 { 20 } else { 5 });
    poll(FIRST_SNAPSHOT, every, || visible_entries(&sidecar.dir) == n).await?;
    tokio::time::sleep(Duration::from_secs(if ctx.quick { 1 } else { 2 })).await;
    let signals = ctx.signals.clone();
    let measured = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let objects: Vec<String> = (0..n.min(ROTATE)).map(cm_name).collect();
        let before = CpuSample::of(sidecar.pid());
        let run = timed_updates(
            &api,
            &watch,
            &sidecar.dir,
            &signals,
            Updates { layout: Layout::ByName, objects: &objects, seqs: 1..=updates },
            "staging",
        );
        std::thread::sleep(Duration::from_millis(200));
        let after = CpuSample::of(sidecar.pid());
        let attempted = (run.file_ms.len() + run.missed).max(1) as f64;
        let cpu_ms = before.zip(after).map(|(b, a)| a.since(&b).1 * 1000.0 / attempted);
        let disk = disk_usage(&sidecar.dir);
        drop(sidecar);
        Measured { run, cpu_ms, disk }
    })
    .await
    .expect("the staging loop must not panic");
    Some(measured)
}

/// Allocated bytes and inodes below `dir` (links not followed; a hard link counted once).
fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0, 0);
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if seen.insert(meta.ino()) {
                bytes += meta.blocks() * 512;
                inodes += 1;
            }
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}
