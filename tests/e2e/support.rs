//! Test support: run the real `configsnap` binary against the fake API server, and wait
//! on conditions with bounded timeouts.

use fake_apiserver::FakeApiServer;
use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Upper bound of any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);
/// Namespace every test uses.
pub const NS: &str = "team-a";
/// Label selector every test uses.
pub const SELECTOR: &str = "configsnap.io/include=true";

/// `..data` resolves to a snapshot whose files all match its manifest, and every visible
/// entry links into it.
pub fn assert_complete_snapshot(dir: &Path) {
    let target = std::fs::read_link(dir.join("..data")).expect("..data exists");
    let verified = configsnap::writer::read_current(dir)
        .unwrap_or_else(|e| panic!("{target:?} does not match its manifests: {e}"))
        .expect("..data names a snapshot");
    for top in verified.top_level() {
        let link = std::fs::read_link(dir.join(top)).unwrap_or_else(|e| panic!("visible link {top}: {e}"));
        assert_eq!(link, Path::new(&configsnap::writer::visible_link_target(top)));
    }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; panics with `what`.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Like [`wait_for`] with an async condition.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A selected ConfigMap with the given data.
pub fn configmap(name: &str, data: &[(&str, &str)]) -> serde_json::Value {
    let mut builder = FakeApiServer::configmap(NS, name).label("configsnap.io/include", "true");
    for (key, value) in data {
        builder = builder.data(key, *value);
    }
    builder.build()
}

/// A temp dir with the kubeconfig, the target dir and the state dir of one sidecar.
pub struct Workspace {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
}

impl Workspace {
    /// A fresh workspace whose kubeconfig points at `api`.
    pub fn new(api: &FakeApiServer) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        api.write_kubeconfig(&tmp.path().join("kubeconfig"), NS).expect("kubeconfig");
        std::fs::create_dir(tmp.path().join("config")).expect("config dir");
        Self { tmp }
    }

    /// The target dir (`--dir`).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("config")
    }

    /// The state dir (`--state-dir`).
    pub fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// Reads `<dir>/<rel>`, or `None` when missing.
    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.dir().join(rel)).ok()
    }

    /// Name of the snapshot dir `..data` points at.
    pub fn data_target(&self) -> Option<String> {
        std::fs::read_link(self.dir().join("..data")).ok().map(|t| t.to_string_lossy().into_owned())
    }

    /// Starts the sidecar with the common flags plus `extra`.
    pub fn start(&self, extra: &[&str]) -> Sidecar {
        self.start_with_fd_limit(None, extra)
    }

    /// Like [`Workspace::start`], under `ulimit -n fds` when given.
    pub fn start_with_fd_limit(&self, fds: Option<u32>, extra: &[&str]) -> Sidecar {
        self.start_in_shell(fds.map(|fds| format!("ulimit -n {fds}")), extra)
    }

    /// Like [`Workspace::start`], after the shell commands `setup` (limits, traps) when
    /// given.
    pub fn start_in_shell(&self, setup: Option<String>, extra: &[&str]) -> Sidecar {
        let port = free_port();
        let mut args: Vec<String> = vec![
            format!("--dir={}", self.dir().display()),
            format!("--selector={SELECTOR}"),
            format!("--listen=127.0.0.1:{port}"),
            "--log-format=json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Sidecar::spawn_in_shell(&args, &self.tmp.path().join("kubeconfig"), self.tmp.path(), port, setup)
    }
}

/// A running `configsnap` process; killed on drop.
pub struct Sidecar {
    child: Child,
    log: PathBuf,
    /// Admin port.
    pub port: u16,
}

impl Sidecar {
    /// Spawns the binary with `args`, logging to a file in `log_dir`.
    pub fn spawn(args: &[String], kubeconfig: &Path, log_dir: &Path, port: u16) -> Self {
        Self::spawn_limited(args, kubeconfig, log_dir, port, None)
    }

    /// Like [`Sidecar::spawn`], under `ulimit -n fds` (set by `sh`, which then `exec`s
    /// the binary: the pid is configsnap's) when given.
    pub fn spawn_limited(
        args: &[String],
        kubeconfig: &Path,
        log_dir: &Path,
        port: u16,
        fds: Option<u32>,
    ) -> Self {
        Self::spawn_in_shell(args, kubeconfig, log_dir, port, fds.map(|fds| format!("ulimit -n {fds}")))
    }

    /// Like [`Sidecar::spawn`], after the shell commands `setup` (run by `sh`, which then
    /// `exec`s the binary: the pid is configsnap's) when given.
    pub fn spawn_in_shell(
        args: &[String],
        kubeconfig: &Path,
        log_dir: &Path,
        port: u16,
        setup: Option<String>,
    ) -> Self {
        let log = log_dir.join(format!("configsnap-{port}.log"));
        let stderr = File::create(&log).expect("log file");
        let binary = env!("CARGO_BIN_EXE_configsnap");
        let mut command = match setup {
            Some(setup) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("{setup} && exec \"$0\" \"$@\""), binary]);
                sh
            }
            None => Command::new(binary),
        };
        let child = command
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("RUST_LOG", "info,configsnap=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn configsnap");
        Self { child, log, port }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Log lines (JSON objects) whose `message` equals `message`.
    pub fn log_count(&self, message: &str) -> usize {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .count()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid fits"));
        nix::sys::signal::kill(pid, signal).expect("signal configsnap");
    }

    /// Waits for the process to exit within `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "configsnap did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// GET `path` on the admin server: status and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("http://127.0.0.1:{}{path}", self.port)).await
    }

    /// `/readyz`: its status code and JSON body (`Null` when it does not answer).
    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let Some((code, body)) = self.get("/readyz").await else { return (0, serde_json::Value::Null) };
        (code, serde_json::from_str(&body).unwrap_or_default())
    }

    /// Waits until a metric has exactly `value`.
    pub async fn wait_metric(&self, name: &str, value: f64) {
        let what = format!("{name} == {value}");
        wait_until(&what, WAIT, || async { self.metric(name).await == Some(value) }).await;
    }

    /// A metric's value from `/metrics`, parsed (labels as written, e.g. `{reason="collision"}`).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        crate::support::metrics::parse(&body).ok()?.get(name).copied()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves HTTP/1.1 on a free loopback port for the rest of the test (at most 1,000
/// connections): each request's `x-configsnap-hash` header (or "") goes to `answer`, whose
/// future gives the status code. Returns `http://127.0.0.1:<port>`.
pub async fn http_server<F, Fut>(answer: F) -> String
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = u16> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((stream, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            let service =
                hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let header = request.headers().get("x-configsnap-hash").and_then(|v| v.to_str().ok());
                    let status = answer(header.unwrap_or_default().to_owned());
                    async move {
                        let status = status.await;
                        hyper::Response::builder()
                            .status(status)
                            .body(http_body_util::Empty::<bytes::Bytes>::new())
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    base
}

/// A plain HTTP/1.1 GET over loopback: status and body, `None` if nothing answers.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = url.parse().ok()?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

pub mod metrics {
    //! A strict parser of the Prometheus/OpenMetrics text format (enough to check ours).

    use std::collections::BTreeMap;

    /// Parses every sample into `name{labels}` → value; fails on any malformed line.
    /// Reads both Prometheus text 0.0.4 and OpenMetrics (nothing may follow `# EOF`).
    pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
        let mut samples = BTreeMap::new();
        let mut saw_eof = false;
        for line in text.lines() {
            if line == "# EOF" {
                saw_eof = true;
                continue;
            }
            if saw_eof {
                return Err("content after # EOF".into());
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let kind = meta.split_whitespace().next().unwrap_or_default();
                if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
                    return Err(format!("unknown comment {line:?}"));
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line:?}"))?;
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                return Err(format!("bad metric name in {line:?}"));
            }
            if name_end < series.len() && !series.ends_with('}') {
                return Err(format!("unclosed labels in {line:?}"));
            }
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| format!("bad value in {line:?}"))?,
            };
            samples.insert(series.to_owned(), value);
        }
        // Prometheus text (what a scrape without an Accept header gets) has no `# EOF`;
        // OpenMetrics must end with one: checked by the callers that ask for it.
        let _ = saw_eof;
        Ok(samples)
    }
}
