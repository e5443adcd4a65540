//! Scenario `burst`: 1,000 updates within one second with the default debounce
//! (100 ms quiet window, 1 s max wait).

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{self, DirWatch, Subject, configmap, ms, seq_on_disk};
use fake_apiserver::{FakeApiServer, Options};
use std::time::{Duration, Instant};

const UPDATES: u64 = 1000;

/// Runs the burst and reports swaps, signals and time to the final state.
pub async fn burst(ctx: &Ctx, report: &mut Report) {
    let s = "burst";
    let opts = Options { bookmark_interval: Duration::from_secs(60), ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    api.apply("configmaps", configmap("app", 0, 4096, true)).expect("apply");
    let root = ctx.scratch("burst");
    let extra = support::signal_flags(&root);
    let sidecar = Subject::spawn(&api, &root, "burst", &extra);
    let signals = ctx.signals.clone();
    let runtime = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let watch = DirWatch::new(&sidecar.dir);
        if watch.wait(Duration::from_secs(20), || seq_on_disk(&sidecar.dir, "app") == Some(0)).is_none() {
            return (sidecar, None);
        }
        std::thread::sleep(Duration::from_millis(500));
        let swaps_before = runtime.block_on(sidecar.metric("configsnap_swaps_total")).unwrap_or(f64::NAN);
        let signals = signals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while signals.try_recv().is_ok() {}
        let started = Instant::now();
        for seq in 1..=UPDATES {
            // Paced evenly over 999 ms, so all 1,000 land within one second.
            let due = started + Duration::from_micros((seq - 1) * 999_000 / (UPDATES - 1));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            api.apply("configmaps", configmap("app", seq, 4096, true)).expect("apply");
        }
        let applied = started.elapsed();
        let last = watch.wait(Duration::from_secs(10), || seq_on_disk(&sidecar.dir, "app") == Some(UPDATES));
        // Let a trailing debounce window (at most max-wait) finish before counting.
        std::thread::sleep(Duration::from_millis(1500));
        let swaps_after = runtime.block_on(sidecar.metric("configsnap_swaps_total")).unwrap_or(f64::NAN);
        let received = std::iter::from_fn(|| signals.try_recv().ok()).count();
        let figures = (applied, last.map(|t| t - started), swaps_after - swaps_before, received);
        (sidecar, Some(figures))
    })
    .await;
    let (_sidecar, figures) = joined.expect("burst loop must not panic");
    let Some((applied, last, swaps, received)) = figures else {
        report.note("burst: the first snapshot never appeared");
        return;
    };
    report.add(s, "time to apply 1,000 updates", ms(applied), "ms");
    report.check(s, "swaps for 1,000 updates (default debounce)", swaps, "count", Target::AtMost(5.0));
    report.add(s, "signals delivered", received as f64, "count");
    match last {
        Some(t) => report.add(s, "first update -> final state on disk", ms(t), "ms"),
        None => report.note("burst: the final state never reached the disk within 10 s"),
    }
}
