//! Scenarios `latency` (update → file visible, update → signal delivered) and `swap`
//! (the swap's write / fsync / rename parts from the sidecar's log, and the disk's floor).

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{self, DirWatch, Sidecar, configmap, ms, seq_on_disk, summary};
use fake_apiserver::{FakeApiServer, Options};
use std::io::Write;
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
    let pid_file = root.join("bench.pid");
    std::fs::File::create(&pid_file).and_then(|mut f| write!(f, "{}", std::process::id())).expect("pid file");
    let extra = vec![
        "--debounce=0".to_owned(),
        "--signal=USR1".to_owned(),
        format!("--pid-file={}", pid_file.display()),
    ];
    let sidecar = Sidecar::spawn(&api, &root, "latency", &extra);
    let signals = ctx.signals.clone();
    let run = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        let mut run = UpdateRun::default();
        if watch.wait(Duration::from_secs(20), || seq_on_disk(&sidecar.dir, "app") == Some(0)).is_none() {
            eprintln!("latency: the first snapshot never appeared");
            run.missed = n;
            return (run, sidecar);
        }
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for seq in 1..=n as u64 {
            while signals.try_recv().is_ok() {}
            let started = Instant::now();
            api.apply("configmaps", configmap("app", seq, SIZE, true)).expect("apply");
            let seen = watch.wait(WAIT, || seq_on_disk(&sidecar.dir, "app") == Some(seq));
            let signalled = signals.recv_timeout(WAIT).ok();
            match (seen, signalled) {
                (Some(file), Some(signal)) => {
                    run.file_ms.push(ms(file - started));
                    run.signal_ms.push(ms(signal.saturating_duration_since(started)));
                }
                _ => {
                    run.missed += 1;
                    if run.missed >= 5 {
                        eprintln!("latency: 5 updates missed, stopping early");
                        break;
                    }
                }
            }
        }
        (run, sidecar)
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
    match disk_floor(&ctx.scratch("floor"), reps) {
        Ok(mut floor) => {
            let (p50, _, p99, _) = summary(&mut floor);
            report.add(s, "disk floor: write 4K+fsync+rename+dir fsync p50", p50, "ms");
            report.add(s, "disk floor: write 4K+fsync+rename+dir fsync p99", p99, "ms");
        }
        Err(e) => report.note(format!("swap: disk floor failed: {e}")),
    }
}

/// `reps` times: write 4 KiB to a temp file, fsync it, rename it over the live name,
/// fsync the directory. Milliseconds per rep.
fn disk_floor(dir: &std::path::Path, reps: usize) -> std::io::Result<Vec<f64>> {
    let data = support::payload(0, SIZE);
    let dir_fd = std::fs::File::open(dir)?;
    let mut out = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        let tmp = dir.join("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("live"))?;
        dir_fd.sync_all()?;
        out.push(ms(started.elapsed()));
    }
    Ok(out)
}
