//! Scenario `real`: the sidecar against a real kube-apiserver and etcd
//! (`scripts/control-plane`), as the `deploy/base` ServiceAccount, at 1, 100, 1,000 and
//! 5,000 selected 4 KiB ConfigMaps: time to the first complete snapshot, peak RSS of the
//! sidecar and of kube-apiserver during the initial state, then update → file and CPU per
//! update for single-object updates (a merge patch as admin, timed from just before the
//! request). Each N runs twice: the initial state by LIST, and by a streaming list
//! (`--streaming-list`), each on a fresh control plane so peaks are its own.

use crate::Ctx;
use crate::report::Report;
use crate::support::{
    self, CpuSample, DirWatch, cm_name, payload, pct, poll, rss_kib, seq_on_disk, visible_entries,
};
use configsnap_kit::control_plane::ControlPlane;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::path::Path;
use std::time::{Duration, Instant};

const COUNTS: [usize; 4] = [1, 100, 1000, 5000];
const NS: &str = "bench";
const FIRST_SNAPSHOT: Duration = Duration::from_secs(300);
const ROTATE: usize = 10;
const SIZE: usize = 4096;

/// What one (N, strategy) measured.
#[derive(Debug, Default)]
struct Point {
    first_s: Option<f64>,
    sidecar_peak_kib: Option<u64>,
    sidecar_idle_kib: Option<u64>,
    apiserver_peak_kib: Option<u64>,
    file_ms: Vec<f64>,
    missed: usize,
    cpu_ms: Option<f64>,
}

/// Scenario `real`.
pub async fn real(ctx: &Ctx, report: &mut Report) {
    let updates: u64 = if ctx.quick { 20 } else { 100 };
    let mut table = format!(
        "real: a real kube-apiserver v1.36, {updates} single-object updates per N, by-name on the disk\n\
         {:<7} {:>5} {:>8} {:>9} {:>9} {:>10} {:>9} {:>9} {:>7}\n",
        "initial", "N", "first s", "peak MiB", "idle MiB", "apisrv MiB", "file p50", "file p99", "CPU ms"
    );
    for &n in &COUNTS {
        for streaming in [false, true] {
            let strategy = if streaming { "stream" } else { "list" };
            eprintln!("real: N={n} {strategy}");
            let root = ctx.scratch(&format!("real-{strategy}-{n}"));
            let point = match measure(&root, n, updates, streaming).await {
                Ok(point) => point,
                Err(error) => {
                    report.note(format!("real: N={n} {strategy}: {error}"));
                    continue;
                }
            };
            table.push_str(&row(strategy, n, &point));
            record(report, strategy, n, &point);
        }
    }
    report.block(table);
}

fn row(strategy: &str, n: usize, p: &Point) -> String {
    let mib = |k: Option<u64>| k.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    let mut sorted = p.file_ms.clone();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{strategy:<7} {n:>5} {:>8} {:>9} {:>9} {:>10} {:>9.2} {:>9.2} {:>7}\n",
        p.first_s.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}")),
        mib(p.sidecar_peak_kib),
        mib(p.sidecar_idle_kib),
        mib(p.apiserver_peak_kib),
        pct(&sorted, 50.0),
        pct(&sorted, 99.0),
        p.cpu_ms.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}")),
    )
}

fn record(report: &mut Report, strategy: &str, n: usize, p: &Point) {
    let metric = |what: &str| format!("real {strategy} N={n}: {what}");
    let mut sorted = p.file_ms.clone();
    sorted.sort_by(f64::total_cmp);
    if let Some(first) = p.first_s {
        report.add("real", metric("first snapshot"), first, "s");
    }
    for (what, kib) in [
        ("sidecar peak RSS", p.sidecar_peak_kib),
        ("sidecar idle RSS", p.sidecar_idle_kib),
        ("kube-apiserver peak RSS", p.apiserver_peak_kib),
    ] {
        if let Some(kib) = kib {
            report.add("real", metric(what), kib as f64 / 1024.0, "MiB");
        }
    }
    report.add("real", metric("update→file p50"), pct(&sorted, 50.0), "ms");
    report.add("real", metric("update→file p99"), pct(&sorted, 99.0), "ms");
    if let Some(cpu) = p.cpu_ms {
        report.add("real", metric("CPU per update"), cpu, "ms");
    }
    if p.missed > 0 {
        report.note(format!("real {strategy} N={n}: {} updates missed", p.missed));
    }
}

/// A fresh control plane with `n` selected ConfigMaps, one sidecar as the ServiceAccount.
async fn measure(root: &Path, n: usize, updates: u64, streaming: bool) -> Result<Point, String> {
    let cp = ControlPlane::up(&[])?;
    cp.kubectl(&["create", "namespace", NS]);
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/base");
    for file in ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml"] {
        cp.kubectl(&["apply", "-n", NS, "-f", &base.join(file).display().to_string()]);
    }
    let kubeconfig = root.join("kubeconfig");
    cp.kubeconfig_for(NS, "configsnap", &kubeconfig);
    let admin = admin_client(&cp.dir().join("admin.kubeconfig")).await?;
    let api: Api<ConfigMap> = Api::namespaced(admin, NS);
    create_configmaps(&api, n).await?;
    let apiserver = apiserver_pid(cp.dir())?;

    let mut extra = vec!["--debounce=0".to_owned(), "--events=false".to_owned()];
    if streaming {
        extra.push("--streaming-list".to_owned());
    }
    let started = Instant::now();
    let sidecar =
        support::Subject::spawn_with_kubeconfig(&support::binary()?, &kubeconfig, root, "real", &extra);
    let dir = sidecar.dir.clone();
    let pid = sidecar.pid();
    let every = Duration::from_millis(if n >= 1000 { 20 } else { 5 });
    let ready = poll(FIRST_SNAPSHOT, every, || visible_entries(&dir) == n).await;
    let mut point = Point { first_s: ready.map(|t| (t - started).as_secs_f64()), ..Point::default() };
    if ready.is_none() {
        return Err("the first snapshot never completed".into());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    point.sidecar_peak_kib = rss_kib(pid).map(|(_, hwm)| hwm);
    point.sidecar_idle_kib = rss_kib(pid).map(|(rss, _)| rss);
    point.apiserver_peak_kib = rss_kib(apiserver).map(|(_, hwm)| hwm);

    let watch = DirWatch::new(&dir);
    let before = CpuSample::of(pid);
    for seq in 1..=updates {
        let name = cm_name(seq as usize % n.min(ROTATE));
        let patch = serde_json::json!({ "data": { "k": payload(seq, SIZE) } });
        let sent = Instant::now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| e.to_string())?;
        match watch.wait(Duration::from_secs(10), || seq_on_disk(&dir, &name) == Some(seq)) {
            Some(seen) => point.file_ms.push((seen - sent).as_secs_f64() * 1000.0),
            None => point.missed += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = CpuSample::of(pid);
    point.cpu_ms = before.zip(after).map(|(b, a)| a.since(&b).1 * 1000.0 / updates as f64);
    drop(sidecar);
    Ok(point)
}

async fn admin_client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Creates `cm-00000`… with one 4 KiB key `k` at seq 0, selected, 16 at a time.
async fn create_configmaps(api: &Api<ConfigMap>, n: usize) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": cm_name(i), "labels": { "configsnap.io/include": "true" } },
                "data": { "k": payload(0, SIZE) },
            }))
            .map_err(|e| e.to_string())?;
            api.create(&PostParams::default(), &cm).await.map(|_| ()).map_err(|e| e.to_string())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

fn apiserver_pid(dir: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(dir.join("apiserver.pid")).map_err(|e| e.to_string())?;
    text.trim().parse().map_err(|e| format!("apiserver.pid: {e}"))
}
