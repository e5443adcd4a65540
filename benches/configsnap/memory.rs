//! Scenarios `memory` (idle and peak RSS by number of selected ConfigMaps), `cpu` (idle
//! CPU with 100 ConfigMaps) and `startup` (first snapshot; restore from last-good).

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{self, CpuSample, Layout, Subject, ms, poll, rss_kib, visible_entries};
use fake_apiserver::FakeApiServer;
use std::time::{Duration, Instant};

/// A fake API holding `total` by-name ConfigMaps of 4 KiB, the first `selected` selected.
async fn api_with(total: usize, selected: usize, bookmarks: Duration) -> FakeApiServer {
    support::api_with(total, selected, bookmarks, Layout::ByName, 0).await
}

/// Waits until the sidecar shows `n` visible entries; the time it took from `since`.
async fn wait_entries(sidecar: &Subject, n: usize, since: Instant, every: Duration) -> Option<Duration> {
    poll(Duration::from_secs(90), every, || visible_entries(&sidecar.dir) == n).await.map(|t| t - since)
}

/// Idle and peak RSS with 1, 100, 1,000 selected, and 1,000 selected among 10,000.
pub async fn memory(ctx: &Ctx, report: &mut Report) {
    let quiet = if ctx.quick { Duration::from_secs(1) } else { Duration::from_secs(4) };
    for (selected, total) in [(1, 1), (100, 100), (1000, 1000), (1000, 10_000)] {
        let api = api_with(total, selected, Duration::from_secs(60)).await;
        let root = ctx.scratch(&format!("memory-{selected}-{total}"));
        let sidecar = Subject::spawn(&api, &root, "mem", &[]);
        if wait_entries(&sidecar, selected, Instant::now(), Duration::from_millis(20)).await.is_none() {
            report.note(format!("memory: {selected}/{total}: the snapshot never completed"));
            continue;
        }
        tokio::time::sleep(quiet).await;
        let Some((rss, hwm)) = rss_kib(sidecar.pid()) else {
            report.note(format!("memory: {selected}/{total}: could not read /proc"));
            continue;
        };
        let label =
            if selected == total { format!("{selected} CMs") } else { format!("{selected} of {total} CMs") };
        let rss_mib = rss as f64 / 1024.0;
        if selected == 100 && total == 100 {
            report.check(
                "memory",
                format!("idle RSS, {label} x 4 KiB"),
                rss_mib,
                "MiB",
                Target::AtMost(10.0),
            );
        } else {
            report.add("memory", format!("idle RSS, {label} x 4 KiB"), rss_mib, "MiB");
        }
        report.add("memory", format!("peak RSS (VmHWM), {label} x 4 KiB"), hwm as f64 / 1024.0, "MiB");
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
