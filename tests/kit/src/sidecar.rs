//! The real `configsnap` process: spawned with its flags, its log in a file, its admin
//! server probed over loopback; killed on drop.

use crate::process::Tracked;
use crate::wait::{WAIT, wait_until};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to start one sidecar.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The binary (`env!("CARGO_BIN_EXE_configsnap")` in the root crate's tests).
    pub binary: &'a Path,
    /// Its flags.
    pub args: &'a [String],
    /// `KUBECONFIG` for it.
    pub kubeconfig: &'a Path,
    /// Where its log file goes (`configsnap-<port>.log`).
    pub log_dir: &'a Path,
    /// Its admin port (also in `--listen` among `args`).
    pub port: u16,
    /// Shell commands run first (limits, traps) by `sh`, which then `exec`s the binary, so
    /// the pid is configsnap's.
    pub setup: Option<String>,
    /// `RUST_LOG` (default [`DEBUG_LOG`]; a benchmark measures with `info`).
    pub rust_log: Option<&'a str>,
}

/// `RUST_LOG` of a sidecar under test: configsnap's own debug lines too.
pub const DEBUG_LOG: &str = "info,configsnap=debug";

/// A running `configsnap` process; killed on drop.
pub struct Sidecar {
    child: Tracked,
    log: PathBuf,
    /// Admin port.
    pub port: u16,
}

impl Sidecar {
    /// Spawns the sidecar as `launch` says.
    #[must_use]
    pub fn spawn(launch: &Launch<'_>) -> Self {
        let log = launch.log_dir.join(format!("configsnap-{}.log", launch.port));
        let stderr = File::create(&log).expect("log file");
        let mut command = match &launch.setup {
            Some(setup) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("{setup} && exec \"$0\" \"$@\"")]).arg(launch.binary);
                sh
            }
            None => Command::new(launch.binary),
        };
        let child = Tracked::spawn(
            command
                .args(launch.args)
                .env("KUBECONFIG", launch.kubeconfig)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env("RUST_LOG", launch.rust_log.unwrap_or(DEBUG_LOG))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        )
        .expect("spawn configsnap");
        Self { child, log, port: launch.port }
    }

    /// Everything logged so far.
    #[must_use]
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Log lines (JSON objects) whose `message` equals `message`.
    #[must_use]
    pub fn log_lines(&self, message: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// How many log lines have `message`.
    #[must_use]
    pub fn log_count(&self, message: &str) -> usize {
        self.log_lines(message).len()
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.pid()
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
            if let Some(status) = self.child.child().try_wait().expect("try_wait") {
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
        matches!(self.child.child().try_wait(), Ok(None))
    }

    /// GET `path` on the admin server: status and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        crate::net::http_get(&format!("http://127.0.0.1:{}{path}", self.port)).await
    }

    /// `/readyz`: its status code and JSON body (`(0, Null)` when it does not answer).
    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let Some((code, body)) = self.get("/readyz").await else { return (0, serde_json::Value::Null) };
        (code, serde_json::from_str(&body).unwrap_or_default())
    }

    /// Waits until `/readyz` says `status.state == state`; returns the body.
    pub async fn wait_state(&self, state: &str, bound: Duration) -> serde_json::Value {
        let what = format!("/readyz state {state}");
        wait_until(&what, bound, || async { self.readyz().await.1["status"]["state"] == state }).await;
        self.readyz().await.1
    }

    /// Waits until a metric has exactly `value`.
    pub async fn wait_metric(&self, name: &str, value: f64) {
        let what = format!("{name} == {value}");
        wait_until(&what, WAIT, || async { self.metric(name).await == Some(value) }).await;
    }

    /// A metric's value from `/metrics`, parsed (labels as written, e.g. `{reason="collision"}`).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        crate::metrics::parse(&body).ok()?.get(name).copied()
    }

    /// The sum of every series of the metric `name` (all label sets); `None` when
    /// `/metrics` does not answer or has no such series.
    pub async fn metric_sum(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        let samples = crate::metrics::parse(&body).ok()?;
        let values: Vec<f64> = samples
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(_, v)| *v)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}
