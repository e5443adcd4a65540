//! Scenario `fleet`: N real sidecars watching one fake API; the API refuses connections
//! for a while, comes back, and one update must reach every sidecar. Measures the
//! reconnect load (requests per 100 ms, LISTs vs watch resumes) and the time to converge.
//!
//! Scenario `fleet503`: the same fleet, but the API answers every request with 503 for a
//! while (watches cut at its start), so each sidecar's retries meet an error, not a
//! refused connection: checks that every sidecar is current within 30 s of recovery and
//! that the fleet sends at most 2 requests per sidecar in the first second.

use crate::Ctx;
use crate::report::{Report, Target};
use crate::support::{Subject, configmap, ms, rss_kib, seq_on_disk};
use fake_apiserver::{FakeApiServer, Options};
use std::time::{Duration, Instant};

/// Sampling period of the request counter.
const TICK: Duration = Duration::from_millis(100);
/// Longest wait for the fleet to converge after recovery (the backoff caps at 30 s).
const CONVERGE: Duration = Duration::from_secs(90);

fn all_at(sidecars: &[Subject], seq: u64) -> usize {
    sidecars.iter().filter(|s| seq_on_disk(&s.dir, "app") == Some(seq)).count()
}

/// Free memory in MiB (`MemAvailable`).
fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Spawns the fleet and waits until every sidecar has the first snapshot; `None` (with a
/// note) when they do not.
async fn start_fleet(
    ctx: &Ctx,
    report: &mut Report,
    s: &'static str,
) -> Option<(FakeApiServer, Vec<Subject>)> {
    let wanted: usize = if ctx.quick { 20 } else { 200 };
    // Budget 32 MiB per sidecar (about 4x the idle RSS) and keep 2 GiB for everyone else.
    let n = wanted.min((mem_available_mib().saturating_sub(2048) / 32) as usize).max(1);
    if n < wanted {
        report.note(format!("{s}: only {n} sidecars (memory), not {wanted}"));
    }
    let opts = Options { bookmark_interval: Duration::from_secs(60), ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    api.apply("configmaps", configmap("app", 0, 4096, true)).expect("apply");
    let root = ctx.scratch(s);
    let started = Instant::now();
    let sidecars: Vec<Subject> = (0..n)
        .map(|i| Subject::spawn(&api, &root, &format!("{i:03}"), &["--debounce=0".to_owned()]))
        .collect();
    let ready = crate::support::poll(Duration::from_secs(180), TICK, || all_at(&sidecars, 0) == n).await;
    let Some(ready) = ready else {
        report.note(format!("{s}: only {} of {n} sidecars got the first snapshot", all_at(&sidecars, 0)));
        return None;
    };
    report.add(s, "sidecars", n as f64, "count");
    report.add(s, "start of all -> all have the first snapshot", ms(ready - started), "ms");
    tokio::time::sleep(Duration::from_secs(2)).await;
    Some((api, sidecars))
}

/// Samples the API's request counter every [`TICK`] from `recovered` until every sidecar
/// shows `seq` (and a little longer), or [`CONVERGE`].
struct Recovery {
    /// Cumulative requests at each tick.
    totals: Vec<u64>,
    /// Recovery -> every sidecar shows the update.
    converged: Option<Duration>,
    /// Recovery -> first request.
    first_request: Option<Duration>,
    /// Recovery -> every watch open again.
    rewatched: Option<Duration>,
}

impl Recovery {
    async fn sample(api: &FakeApiServer, sidecars: &[Subject], recovered: Instant, seq: u64) -> Self {
        let n = sidecars.len();
        let mut out = Self { totals: Vec::new(), converged: None, first_request: None, rewatched: None };
        let mut tick = tokio::time::interval(TICK);
        while recovered.elapsed() < CONVERGE {
            tick.tick().await;
            let now = api.stats();
            out.totals.push(now.requests_total);
            if out.first_request.is_none() && now.requests_total > 0 {
                out.first_request = Some(recovered.elapsed());
            }
            if out.rewatched.is_none() && now.open_watches >= n as u64 {
                out.rewatched = Some(recovered.elapsed());
            }
            if out.converged.is_none() && all_at(sidecars, seq) == n {
                out.converged = Some(recovered.elapsed());
            }
            // Keep sampling 3 s past convergence, and at least 10 s in all.
            if out.converged.is_some_and(|c| {
                recovered.elapsed() > (c + Duration::from_secs(3)).max(Duration::from_secs(10))
            }) {
                break;
            }
        }
        out
    }

    /// Requests within the first `secs` seconds after recovery.
    fn within(&self, secs: usize) -> u64 {
        self.totals.get(secs * 10 - 1).or(self.totals.last()).copied().unwrap_or(0)
    }

    /// Requests per 100 ms bucket.
    fn buckets(&self) -> Vec<u64> {
        self.totals.iter().scan(0, |prev, &t| Some(t - std::mem::replace(prev, t))).collect()
    }
}

/// Runs the fleet scenario.
pub async fn fleet(ctx: &Ctx, report: &mut Report) {
    let s = "fleet";
    let outage = if ctx.quick { Duration::from_secs(5) } else { Duration::from_secs(30) };
    let Some((api, mut sidecars)) = start_fleet(ctx, report, s).await else { return };
    let n = sidecars.len();
    let rss: u64 = sidecars.iter().filter_map(|c| rss_kib(c.pid())).map(|(rss, _)| rss).sum();
    report.add(s, "total RSS of the fleet, idle", rss as f64 / 1024.0, "MiB");
    report.add(s, "open watches before the outage", api.stats().open_watches as f64, "count");

    api.faults().set_refuse(true).await.expect("refuse");
    tokio::time::sleep(outage).await;
    api.reset_stats();
    api.faults().set_refuse(false).await.expect("recover");
    let recovered = Instant::now();
    api.apply("configmaps", configmap("app", 1, 4096, true)).expect("apply");

    let recovery = Recovery::sample(&api, &sidecars, recovered, 1).await;
    let stats = api.stats();
    let buckets = recovery.buckets();
    let within = |secs: usize| recovery.within(secs);
    let outage_label = format!("{} s outage", outage.as_secs());
    report.add(
        s,
        format!("requests/s in the first 1 s after recovery ({outage_label})"),
        within(1) as f64,
        "req/s",
    );
    report_recovery(report, s, &recovery, &stats);
    report.add(
        s,
        "100 ms buckets with any request",
        buckets.iter().filter(|b| **b > 0).count() as f64,
        "count",
    );
    report.add(s, "watches after recovery", stats.watches as f64, "count");
    report.add(s, "requests after recovery (total)", stats.requests_total as f64, "count");
    if let Some(t) = recovery.first_request {
        report.add(s, "recovery -> first request (within 100 ms)", ms(t), "ms");
    }
    match recovery.rewatched {
        Some(t) => report.add(s, "recovery -> all watches open again (within 100 ms)", ms(t), "ms"),
        None => report.note("fleet: not every watch re-opened"),
    }
    match recovery.converged {
        Some(t) => report.add(s, "recovery -> all sidecars show the update", ms(t), "ms"),
        None => report.note(format!(
            "fleet: only {} of {n} sidecars showed the update within {CONVERGE:?}",
            all_at(&sidecars, 1)
        )),
    }
    let exited = sidecars.iter_mut().map(|c| !c.running()).filter(|gone| *gone).count();
    report.add(s, "sidecars that exited (should be 0)", exited as f64, "count");
}

/// Runs the 503-storm scenario.
pub async fn fleet503(ctx: &Ctx, report: &mut Report) {
    let s = "fleet503";
    let storm = if ctx.quick { Duration::from_secs(5) } else { Duration::from_secs(30) };
    let Some((api, mut sidecars)) = start_fleet(ctx, report, s).await else { return };
    let n = sidecars.len();
    api.reset_stats();
    let until = tokio::time::Instant::now() + storm;
    api.faults().fail_until(until, 503, None);
    api.faults().drop_watches();
    // Every failed request is to show within 5 s; look a little earlier than the storm's end.
    tokio::time::sleep(Duration::from_secs(4).min(storm)).await;
    let mut degraded = 0;
    for sidecar in &sidecars {
        degraded += usize::from(sidecar.metric("configsnap_degraded").await == Some(1.0));
    }
    report.check(
        s,
        format!(
            "sidecars not reporting degraded {} s into the storm",
            Duration::from_secs(4).min(storm).as_secs()
        ),
        (n - degraded) as f64,
        "count",
        Target::Equals(0.0),
    );
    tokio::time::sleep_until(until).await;
    let during = api.stats();
    report.add(
        s,
        format!("503 answers per sidecar during the {} s storm", storm.as_secs()),
        during.errors_injected as f64 / n as f64,
        "count",
    );
    api.reset_stats();
    let recovered = Instant::now();
    api.apply("configmaps", configmap("app", 1, 4096, true)).expect("apply");
    let recovery = Recovery::sample(&api, &sidecars, recovered, 1).await;
    let stats = api.stats();
    report.check(
        s,
        "requests per sidecar in the first 1 s after recovery",
        recovery.within(1) as f64 / n as f64,
        "count",
        Target::AtMost(2.0),
    );
    report_recovery(report, s, &recovery, &stats);
    let converged = recovery.converged.unwrap_or(CONVERGE);
    if recovery.converged.is_none() {
        report.note(format!(
            "{s}: only {} of {n} sidecars showed the update within {CONVERGE:?}",
            all_at(&sidecars, 1)
        ));
    }
    report.check(s, "recovery -> every sidecar current", ms(converged), "ms", Target::AtMost(30_000.0));
    let exited = sidecars.iter_mut().map(|c| !c.running()).filter(|gone| *gone).count();
    report.add(s, "sidecars that exited (should be 0)", exited as f64, "count");
}

/// What both fleet scenarios report about the first seconds after the API recovered:
/// request rate, the busiest 100 ms, relists (none while resourceVersions are valid) and
/// watch resumes.
fn report_recovery(report: &mut Report, s: &'static str, recovery: &Recovery, stats: &fake_apiserver::Stats) {
    report.add(s, "requests/s over the first 5 s after recovery", recovery.within(5) as f64 / 5.0, "req/s");
    let busiest = recovery.buckets().into_iter().max().unwrap_or(0);
    report.add(s, "max requests in any 100 ms bucket", busiest as f64, "count");
    report.check(
        s,
        "LISTs after recovery (rvs still valid)",
        stats.lists as f64,
        "count",
        Target::Equals(0.0),
    );
    report.add(s, "watch resumes after recovery", stats.watch_resumes as f64, "count");
}
