//! `cargo bench --bench configsnap [-- [--quick] [SCENARIO...]]`: runs the release
//! binary against the fake API server on loopback and measures latency, swap cost,
//! memory, idle CPU, the cost of Kubernetes Events (off, on, refused, slow), bursts, start-up, fleet recovery (refused, and a 503 storm), how an update's cost scales with
//! the number of ConfigMaps, the validation view's cost, the disk cost of `--gc-grace`, and the same against a real
//! kube-apiserver (LIST and streaming list). Prints a table and writes
//! `target/bench/results.json`. See `docs/benchmarks.md`.
//!
//! Wall-clock `std::time::Instant` is right here (the style guide bans it in library code
//! only because tests there run on tokio's paused clock).

#[path = "configsnap/burst.rs"]
mod burst;
#[path = "configsnap/events.rs"]
mod events;
#[path = "configsnap/fleet.rs"]
mod fleet;
#[path = "configsnap/latency.rs"]
mod latency;
#[path = "configsnap/memory.rs"]
mod memory;
#[path = "configsnap/real.rs"]
mod real;
#[path = "configsnap/report.rs"]
mod report;
#[path = "configsnap/scale.rs"]
mod scale;
#[path = "configsnap/scratch_fs.rs"]
mod scratch_fs;
#[path = "configsnap/staging.rs"]
mod staging;
#[path = "configsnap/strace.rs"]
mod strace;
#[path = "configsnap/support.rs"]
mod support;

use report::Report;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

/// Every scenario, in the order they run.
const SCENARIOS: [&str; 13] = [
    "latency", "swap", "events", "memory", "cpu", "burst", "startup", "fleet", "fleet503", "scale",
    "validate", "grace", "real",
];

/// What every scenario shares.
pub struct Ctx {
    /// Smaller counts and shorter waits (a smoke run under a minute).
    pub quick: bool,
    /// Scratch space, removed at the end.
    tmp: tempfile::TempDir,
    /// Instants at which the bench received SIGUSR1 (it is the sidecars' `--pid-file`).
    pub signals: Arc<Mutex<mpsc::Receiver<Instant>>>,
}

impl Ctx {
    /// A fresh directory `<tmp>/<name>`.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; other flags are ignored too.
    let mut chosen: Vec<&str> = args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    if let Some(bad) = chosen.iter().find(|c| !SCENARIOS.contains(c)) {
        eprintln!("unknown scenario {bad:?}; choose from {}", SCENARIOS.join(", "));
        std::process::exit(2);
    }
    if chosen.is_empty() {
        chosen = SCENARIOS.to_vec();
    }
    if let Err(message) = support::binary() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        support::kill_all_children();
        default_hook(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(quick, &chosen));
}

async fn run(quick: bool, chosen: &[&str]) {
    let (tx, rx) = mpsc::channel();
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("SIGUSR1 handler");
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            let _ = tx.send(Instant::now());
        }
    });
    let ctx = Ctx { quick, tmp: tempfile::tempdir().expect("tempdir"), signals: Arc::new(Mutex::new(rx)) };
    let machine = machine(ctx.tmp.path());
    eprintln!("machine: {machine}");
    let mut report = Report::default();
    let mut updates: Option<latency::UpdateRun> = None;
    for &name in chosen {
        let started = Instant::now();
        eprintln!("== {name}{}", if quick { " (quick)" } else { "" });
        match name {
            "latency" | "swap" => {
                if updates.is_none() {
                    let n = if quick { 100 } else { 500 };
                    updates = Some(latency::run_updates(&ctx, n).await);
                }
                let run = updates.as_mut().expect("just set");
                if name == "latency" {
                    latency::report_latency(run, &mut report);
                } else {
                    latency::report_swap(&ctx, run, &mut report);
                }
            }
            "events" => events::events(&ctx, &mut report).await,
            "memory" => memory::memory(&ctx, &mut report).await,
            "cpu" => memory::idle_cpu(&ctx, &mut report).await,
            "burst" => burst::burst(&ctx, &mut report).await,
            "startup" => memory::startup(&ctx, &mut report).await,
            "fleet" => fleet::fleet(&ctx, &mut report).await,
            "fleet503" => fleet::fleet503(&ctx, &mut report).await,
            "scale" => scale::scale(&ctx, &mut report).await,
            "validate" => staging::validate(&ctx, &mut report).await,
            "grace" => staging::grace(&ctx, &mut report).await,
            "real" => real::real(&ctx, &mut report).await,
            _ => unreachable!("scenario names are checked"),
        }
        eprintln!("== {name} done in {:.1} s", started.elapsed().as_secs_f64());
    }
    support::kill_all_children();
    println!("\n{}", report.table());
    let path = results_path();
    match report.write_json(&path, machine, quick) {
        Ok(()) => println!("results written to {}", path.display()),
        Err(e) => eprintln!("error: could not write {}: {e}", path.display()),
    }
}

/// `<target dir>/bench/results.json`, found from this executable's own path
/// (`<target>/release/deps/configsnap-<hash>`), so `CARGO_TARGET_DIR` is honoured.
fn results_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench").join("results.json")
}

/// The machine: cores, CPU model, kernel, the temp dir's filesystem, load at start.
fn machine(tmp: &Path) -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_default();
    let mounts = read("/proc/mounts");
    let fs = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && tmp.starts_with(f[1]))
                .then(|| (f[1].len(), format!("{} on {} ({})", f[2], f[1], f[0])))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, d)| d)
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "tmp_dir": tmp.display().to_string(),
        "tmp_filesystem": fs,
        "loadavg_at_start": read("/proc/loadavg").trim(),
        "mem_total": read("/proc/meminfo").lines().next().unwrap_or_default(),
    })
}
