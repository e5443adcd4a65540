//! Scenario `fleet`: N real sidecars watching one fake API; the API refuses connections
//! for a while, comes back, and one update must reach every sidecar. Measures the
//! reconnect load (requests per 100 ms, LISTs vs watch resumes) and the time to converge.

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{Sidecar, configmap, ms, rss_kib, seq_on_disk};
use fake_apiserver::{FakeApiServer, Options};
use std::time::{Duration, Instant};

/// Sampling period of the request counter.
const TICK: Duration = Duration::from_millis(100);
/// Longest wait for the fleet to converge after recovery (the backoff caps at 30 s).
const CONVERGE: Duration = Duration::from_secs(90);

fn all_at(sidecars: &[Sidecar], seq: u64) -> usize {
    sidecars.iter().filter(|s| seq_on_disk(&s.dir, "app") == Some(seq)).count()
}

/// Free memory in MiB (`MemAvailable`).
fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Runs the fleet scenario.
pub async fn fleet(ctx: &Ctx, report: &mut Report) {
    let s = "fleet";
    let wanted: usize = if ctx.quick { 20 } else { 200 };
    // Budget 32 MiB per sidecar (about 4x the idle RSS) and keep 2 GiB for everyone else.
    let n = wanted.min((mem_available_mib().saturating_sub(2048) / 32) as usize).max(1);
    if n < wanted {
        report.note(format!("fleet: only {n} sidecars (memory), not {wanted}"));
    }
    let outage = if ctx.quick { Duration::from_secs(5) } else { Duration::from_secs(30) };
    let opts = Options { bookmark_interval: Duration::from_secs(60), ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    api.apply("configmaps", configmap("app", 0, 4096, true)).expect("apply");
    let root = ctx.scratch("fleet");
    let started = Instant::now();
    let mut sidecars: Vec<Sidecar> = (0..n)
        .map(|i| Sidecar::spawn(&api, &root, &format!("{i:03}"), &["--debounce=0".to_owned()]))
        .collect();
    let ready = crate::support::poll(Duration::from_secs(180), TICK, || all_at(&sidecars, 0) == n).await;
    let Some(ready) = ready else {
        report.note(format!("fleet: only {} of {n} sidecars got the first snapshot", all_at(&sidecars, 0)));
        return;
    };
    report.add(s, "sidecars", n as f64, "count");
    report.add(s, "start of all -> all have the first snapshot", ms(ready - started), "ms");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss: u64 = sidecars.iter().filter_map(|c| rss_kib(c.pid())).map(|(rss, _)| rss).sum();
    report.add(s, "total RSS of the fleet, idle", rss as f64 / 1024.0, "MiB");
    report.add(s, "open watches before the outage", api.stats().open_watches as f64, "count");

    api.faults().set_refuse(true).await.expect("refuse");
    tokio::time::sleep(outage).await;
    api.reset_stats();
    api.faults().set_refuse(false).await.expect("recover");
    let recovered = Instant::now();
    api.apply("configmaps", configmap("app", 1, 4096, true)).expect("apply");

    let mut totals: Vec<u64> = Vec::new();
    let mut converged: Option<Duration> = None;
    let mut first_request: Option<Duration> = None;
    let mut rewatched: Option<Duration> = None;
    let mut tick = tokio::time::interval(TICK);
    while recovered.elapsed() < CONVERGE {
        tick.tick().await;
        let now = api.stats();
        totals.push(now.requests_total);
        if first_request.is_none() && now.requests_total > 0 {
            first_request = Some(recovered.elapsed());
        }
        if rewatched.is_none() && now.open_watches >= n as u64 {
            rewatched = Some(recovered.elapsed());
        }
        if converged.is_none() && all_at(&sidecars, 1) == n {
            converged = Some(recovered.elapsed());
        }
        // Keep sampling 3 s past convergence, and at least 10 s in all.
        if converged
            .is_some_and(|c| recovered.elapsed() > (c + Duration::from_secs(3)).max(Duration::from_secs(10)))
        {
            break;
        }
    }
    let stats = api.stats();
    let buckets: Vec<u64> = totals.iter().scan(0, |prev, &t| Some(t - std::mem::replace(prev, t))).collect();
    let within = |secs: usize| totals.get(secs * 10 - 1).or(totals.last()).copied().unwrap_or(0);
    let outage_label = format!("{} s outage", outage.as_secs());
    report.add(
        s,
        format!("requests/s in the first 1 s after recovery ({outage_label})"),
        within(1) as f64,
        "req/s",
    );
    report.add(s, "requests/s over the first 5 s after recovery", within(5) as f64 / 5.0, "req/s");
    report.add(
        s,
        "max requests in any 100 ms bucket",
        buckets.iter().copied().max().unwrap_or(0) as f64,
        "count",
    );
    report.add(
        s,
        "100 ms buckets with any request",
        buckets.iter().filter(|b| **b > 0).count() as f64,
        "count",
    );
    report.check(
        s,
        "LISTs after recovery (rvs still valid)",
        stats.lists as f64,
        "count",
        Target::Equals(0.0),
    );
    report.add(s, "watch resumes after recovery", stats.watch_resumes as f64, "count");
    report.add(s, "watches after recovery", stats.watches as f64, "count");
    report.add(s, "requests after recovery (total)", stats.requests_total as f64, "count");
    if let Some(t) = first_request {
        report.add(s, "recovery -> first request (within 100 ms)", ms(t), "ms");
    }
    match rewatched {
        Some(t) => report.add(s, "recovery -> all watches open again (within 100 ms)", ms(t), "ms"),
        None => report.note("fleet: not every watch re-opened"),
    }
    match converged {
        Some(t) => report.add(s, "recovery -> all sidecars show the update", ms(t), "ms"),
        None => report.note(format!(
            "fleet: only {} of {n} sidecars showed the update within {CONVERGE:?}",
            all_at(&sidecars, 1)
        )),
    }
    let exited = sidecars.iter_mut().map(|c| !c.running()).filter(|gone| *gone).count();
    report.add(s, "sidecars that exited (should be 0)", exited as f64, "count");
}
