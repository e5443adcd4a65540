//! Measurement helpers: the sidecar under measurement (the kit's process handle with the
//! bench's flags), the ConfigMaps and where they land, percentiles, `/proc` readings and
//! the disk's floor. Processes, ports and waits come from the one test kit.

pub use configsnap_kit::process::{Tracked, kill_all as kill_all_children};
use configsnap_kit::sidecar::{Launch, Sidecar};
pub use configsnap_kit::{free_port, poll};
use fake_apiserver::{FakeApiServer, Options};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Namespace the ConfigMaps live in (each scenario has its own fake API server).
pub const NS: &str = "bench";
/// The label the sidecars select on.
pub const LABEL: (&str, &str) = ("configsnap.io/include", "true");

/// Path of the release binary: `CONFIGSNAP_BIN`, else the one Cargo built next to this bench.
pub fn binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("CONFIGSNAP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_configsnap")));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "configsnap binary not found at {}: run `cargo build --release` first \
             (or set CONFIGSNAP_BIN to the binary to measure)",
            path.display()
        ))
    }
}

/// `n` bytes of content starting with `seq=<seq>\n`, so each version is distinct and
/// recognisable from its first line.
pub fn payload(seq: u64, n: usize) -> String {
    let mut s = format!("seq={seq}\n");
    while s.len() < n {
        s.push_str("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    }
    s.truncate(n);
    s
}

/// The sidecar's `--layout`, and where each ConfigMap's one key lands under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<dir>/<name>/k`: every ConfigMap has the key `k`.
    ByName,
    /// `<dir>/k-<name>`: keys share the top level, so each ConfigMap needs its own.
    Flat,
}

impl Layout {
    /// The value of `--layout`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ByName => "by-name",
            Self::Flat => "flat",
        }
    }

    /// The one key of ConfigMap `cm`.
    pub fn key(self, cm: &str) -> String {
        match self {
            Self::ByName => "k".to_owned(),
            Self::Flat => format!("k-{cm}"),
        }
    }

    /// The file that key appears as under `dir`.
    pub fn file(self, dir: &Path, cm: &str) -> PathBuf {
        match self {
            Self::ByName => dir.join(cm).join("k"),
            Self::Flat => dir.join(self.key(cm)),
        }
    }
}

/// A ConfigMap `name` with one key (`layout.key(name)`) of `size` bytes carrying `seq`;
/// selected when `selected`.
pub fn configmap_in(layout: Layout, name: &str, seq: u64, size: usize, selected: bool) -> serde_json::Value {
    let mut b = FakeApiServer::configmap(NS, name);
    if selected {
        b = b.label(LABEL.0, LABEL.1);
    }
    b.data(&layout.key(name), payload(seq, size)).build()
}

/// A ConfigMap `name` with one 4 KiB-ish key `k` carrying `seq`; selected when `selected`.
pub fn configmap(name: &str, seq: u64, size: usize, selected: bool) -> serde_json::Value {
    configmap_in(Layout::ByName, name, seq, size, selected)
}

/// A fake API (bookmarks every `bookmarks`) holding `total` ConfigMaps `cm-00000`... of
/// 4 KiB at `seq` 0, the first `selected` carrying the label; room in its history for
/// `total` plus `updates` more events.
pub async fn api_with(
    total: usize,
    selected: usize,
    bookmarks: Duration,
    layout: Layout,
    updates: usize,
) -> FakeApiServer {
    let capacity = (total + updates + 1000).max(10_000);
    let opts = Options { bookmark_interval: bookmarks, history_capacity: capacity, ..Options::default() };
    let api = FakeApiServer::start_with(opts).await.expect("fake API");
    for i in 0..total {
        api.apply("configmaps", configmap_in(layout, &cm_name(i), 0, 4096, i < selected)).expect("apply");
    }
    api
}

/// The name of the `i`th ConfigMap [`api_with`] creates.
pub fn cm_name(i: usize) -> String {
    format!("cm-{i:05}")
}

/// The `seq` of the file `<dir>/<cm>/k`, if present and readable.
pub fn seq_on_disk(dir: &Path, cm: &str) -> Option<u64> {
    seq_in(&Layout::ByName.file(dir, cm))
}

/// The `seq` on the first line of `file`, if present and readable.
pub fn seq_in(file: &Path) -> Option<u64> {
    let mut head = [0u8; 24];
    let mut f = File::open(file).ok()?;
    let n = f.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    text.strip_prefix("seq=")?.split('\n').next()?.parse().ok()
}

/// Writes the bench's own pid to `<root>/bench.pid`; the flags that make a sidecar signal
/// the bench with SIGUSR1 (received in [`crate::Ctx::signals`]).
pub fn signal_flags(root: &Path) -> Vec<String> {
    let pid_file = root.join("bench.pid");
    File::create(&pid_file).and_then(|mut f| write!(f, "{}", std::process::id())).expect("pid file");
    vec!["--signal=USR1".to_owned(), format!("--pid-file={}", pid_file.display())]
}

/// Number of visible top-level entries (one per ConfigMap in the by-name layout).
pub fn visible_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with("..")).count()
        })
        .unwrap_or(0)
}

/// Watches a directory with inotify (via `notify`) so waits wake on the `..data` rename
/// instead of spinning on one of the two cores the sidecar also needs.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    rx: mpsc::Receiver<()>,
}

impl DirWatch {
    /// Starts watching `dir` (non-recursive).
    pub fn new(dir: &Path) -> Self {
        use notify::Watcher;
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .expect("inotify watcher");
        watcher.watch(dir, notify::RecursiveMode::NonRecursive).expect("watch the target dir");
        Self { _watcher: watcher, rx }
    }

    /// Blocks until `cond` holds (checked on every event and at least every 2 ms), or
    /// `timeout`; returns the instant it was seen to hold.
    pub fn wait(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return Some(Instant::now());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let _ = self.rx.recv_timeout((deadline - now).min(Duration::from_millis(2)));
            while self.rx.try_recv().is_ok() {}
        }
    }
}

/// A sidecar under measurement: the kit's [`Sidecar`] (killed on drop and by the panic
/// hook) with its own target dir, selecting the label every bench ConfigMap carries,
/// logging JSON at `info` (debug lines would cost the measured process).
pub struct Subject {
    sidecar: Sidecar,
    /// Target dir.
    pub dir: PathBuf,
}

impl Subject {
    /// Spawns the binary against `api` with its own dir under `root`, plus `extra` flags.
    pub fn spawn(api: &FakeApiServer, root: &Path, tag: &str, extra: &[String]) -> Self {
        let bin = binary().expect("binary checked at start");
        Self::spawn_binary(&bin, api, root, tag, extra)
    }

    /// Like [`Subject::spawn`], running the binary at `bin` (a baseline build, say).
    pub fn spawn_binary(bin: &Path, api: &FakeApiServer, root: &Path, tag: &str, extra: &[String]) -> Self {
        let kubeconfig = root.join("kubeconfig");
        if !kubeconfig.exists() {
            api.write_kubeconfig(&kubeconfig, NS).expect("kubeconfig");
        }
        Self::spawn_with_kubeconfig(bin, &kubeconfig, root, tag, extra)
    }

    /// The binary at `bin` with `kubeconfig` (any API server), its own dir under `root`,
    /// plus `extra` flags.
    pub fn spawn_with_kubeconfig(
        bin: &Path,
        kubeconfig: &Path,
        root: &Path,
        tag: &str,
        extra: &[String],
    ) -> Self {
        let port = free_port();
        let dir = root.join(format!("dir-{tag}"));
        std::fs::create_dir_all(&dir).expect("target dir");
        let log_dir = root.join(format!("log-{tag}"));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let mut args = vec![
            format!("--dir={}", dir.display()),
            format!("--selector={}={}", LABEL.0, LABEL.1),
            format!("--listen=127.0.0.1:{port}"),
            "--log-format=json".to_owned(),
        ];
        args.extend(extra.iter().cloned());
        let launch = Launch {
            binary: bin,
            args: &args,
            kubeconfig,
            log_dir: &log_dir,
            port,
            setup: None,
            rust_log: Some("info"),
        };
        Self { sidecar: Sidecar::spawn(&launch), dir }
    }
}

impl std::ops::Deref for Subject {
    type Target = Sidecar;

    fn deref(&self) -> &Sidecar {
        &self.sidecar
    }
}

impl std::ops::DerefMut for Subject {
    fn deref_mut(&mut self) -> &mut Sidecar {
        &mut self.sidecar
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time of a process at one instant: utime+stime of all its threads (clock ticks,
/// dead threads included) and each live thread's on-CPU time from its `schedstat`
/// (nanoseconds; `/proc/<pid>/schedstat` alone covers only the main thread).
#[derive(Debug, Clone)]
pub struct CpuSample {
    ticks_s: f64,
    on_cpu_ns: std::collections::HashMap<String, u64>,
}

impl CpuSample {
    /// Reads `pid`'s counters.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
        let on_cpu_ns = std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|t| {
                let ns = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
                Some((
                    t.file_name().to_string_lossy().into_owned(),
                    ns.split_whitespace().next()?.parse().ok()?,
                ))
            })
            .collect();
        Some(Self { ticks_s: ticks as f64 / hz, on_cpu_ns })
    }

    /// Seconds used since `earlier`: (utime+stime, on-CPU). The on-CPU figure sums each
    /// thread alive now from its earlier value (0 for a new thread); a thread that exited
    /// in between drops out instead of taking its whole lifetime's time off the sum
    /// (the blocking pool's threads exit after 10 s idle).
    pub fn since(&self, earlier: &Self) -> (f64, f64) {
        let on_cpu: u64 = self
            .on_cpu_ns
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(earlier.on_cpu_ns.get(tid).copied().unwrap_or(0)))
            .sum();
        (self.ticks_s - earlier.ticks_s, on_cpu as f64 / 1e9)
    }
}

/// Percentile (nearest rank) of sorted `v`; 0 for an empty slice.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts in place and returns (p50, p90, p99, max).
pub fn summary(v: &mut [f64]) -> (f64, f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (pct(v, 50.0), pct(v, 90.0), pct(v, 99.0), v.last().copied().unwrap_or(0.0))
}

/// The disk's floor in `dir`, `reps` times: write 4 KiB to a temp file, fsync it, rename
/// it over the live name, fsync the directory. Milliseconds per rep.
pub fn disk_floor(dir: &Path, reps: usize) -> std::io::Result<Vec<f64>> {
    let data = payload(0, 4096);
    let dir_fd = File::open(dir)?;
    let mut out = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        let tmp = dir.join("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("live"))?;
        dir_fd.sync_all()?;
        out.push(ms(started.elapsed()));
    }
    Ok(out)
}

/// Milliseconds in a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
