//! Fitting the ecosystem: a real Prometheus (Debian's `prometheus` package) as the app,
//! reloaded through the webhook, `promtool check config` as the validator (run without a
//! shell), and configsnap's own `/metrics` checked by `promtool check metrics` and scraped
//! by that Prometheus. These tests fail, saying what to install, when Prometheus is missing.

use crate::support::{WAIT, Workspace, configmap, free_port, http_get, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `prometheus` and `promtool` from PATH, or a panic saying how to get them.
fn prometheus_tools() -> (PathBuf, PathBuf) {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "`{name}` is not installed: these tests run a real Prometheus. Install Debian's \
                     package (`apt-get install prometheus`, which has promtool too); .ci/run does"
                )
            })
    };
    (find("prometheus"), find("promtool"))
}

/// A Prometheus config; `scrape_port` adds a scrape job for `127.0.0.1:<port>`.
fn prometheus_yml(version: &str, scrape_interval: &str, scrape_port: Option<u16>) -> String {
    let mut yml = format!(
        "global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: 1s\n  external_labels:\n    version: \"{version}\"\n"
    );
    if let Some(port) = scrape_port {
        yml.push_str(&format!(
            "scrape_configs:\n  - job_name: configsnap\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
        ));
    }
    yml
}

/// A running Prometheus; killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The YAML of the config Prometheus has loaded.
    async fn loaded_config(&self) -> Option<String> {
        let (status, body) = http_get(&format!("{}/api/v1/status/config", self.base)).await?;
        let value: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200).then(|| value["data"]["yaml"].as_str().map(str::to_owned))?
    }

    /// The value of an instant query's first sample.
    async fn query(&self, query: &str) -> Option<f64> {
        let (_, body) = http_get(&format!("{}/api/v1/query?query={query}", self.base)).await?;
        let value: serde_json::Value = serde_json::from_str(&body).ok()?;
        value["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool check metrics` on `text`: its exit status and output.
fn promtool_check_metrics(promtool: &Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write metrics");
    let output = child.wait_with_output().expect("promtool finished");
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

// Fake API: Kubernetes is incidental (Prometheus, promtool, the webhook); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reloads_by_webhook_and_keeps_its_config_when_promtool_refuses_one() {
    let (prometheus, promtool) = prometheus_tools();
    let api = FakeApiServer::start().await.expect("fake api");
    let cm = |yml: &str| configmap("prometheus", &[("prometheus.yml", yml)]);
    api.apply("configmaps", cm(&prometheus_yml("1", "1s", None))).expect("configmap");
    let ws = Workspace::new(&api);
    let config = ws.dir().join("prometheus/prometheus.yml");

    // Prometheus's port must be in the sidecar's flags: pick it first.
    let prom_port = free_port();
    let validate = format!(
        "--validate-cmd={} check config $CONFIGSNAP_STAGED_DIR/prometheus/prometheus.yml",
        promtool.display()
    );
    let webhook = format!("--webhook-url=http://127.0.0.1:{prom_port}/-/reload");
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0", &validate, &webhook, "--webhook-retries=20"]);
    wait_for("the first snapshot", WAIT, || ws.read("prometheus/prometheus.yml").is_some()).await;

    let data = ws.tmp.path().join("prom-data");
    let app = start_on(&prometheus, &config, &data, prom_port);
    wait_until("Prometheus ready", WAIT, || async {
        http_get(&format!("{}/-/ready", app.base)).await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    assert!(app.loaded_config().await.is_some_and(|y| y.contains("version: \"1\"")), "{}", app.log());

    // A good change: validated by promtool, swapped, Prometheus reloaded by the webhook;
    // the new config also makes Prometheus scrape configsnap's /metrics.
    api.apply("configmaps", cm(&prometheus_yml("2", "1s", Some(sidecar.port)))).expect("v2");
    wait_until("Prometheus loads version 2", WAIT, || async {
        app.loaded_config().await.is_some_and(|y| y.contains("version: \"2\""))
    })
    .await;
    sidecar.wait_metric("configsnap_last_reload_successful", 1.0).await;
    assert!(
        sidecar.metric("configsnap_last_reload_success_timestamp_seconds").await.is_some_and(|t| t > 1.7e9)
    );
    assert!(
        sidecar
            .metric("configsnap_reload_duration_seconds_count{method=\"webhook\"}")
            .await
            .is_some_and(|n| n >= 1.0),
        "{}",
        sidecar.get("/metrics").await.unwrap_or_default().1
    );

    // A broken change: promtool refuses it, nothing is swapped, Prometheus keeps version 2.
    api.apply("configmaps", cm(&prometheus_yml("3", "banana", Some(sidecar.port)))).expect("v3");
    sidecar.wait_metric("configsnap_snapshots_refused_total{reason=\"command\"}", 1.0).await;
    assert!(ws.read("prometheus/prometheus.yml").is_some_and(|y| y.contains("version: \"2\"")));
    assert!(sidecar.log().contains("banana"), "promtool's reason is logged: {}", sidecar.log());
    // Typed JSON: promtool's exit codes are integers, the changed objects an array.
    let lines: Vec<serde_json::Value> =
        sidecar.log().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let codes: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "command finished" && l["purpose"] == "validation")
        .map(|l| l["exit_code"].as_i64())
        .collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "{codes:?}");
    let swapped = lines.iter().find(|l| l["message"] == "snapshot swapped").expect("a swap line");
    assert_eq!(swapped["changed"], serde_json::json!(["prometheus"]), "{swapped}");
    assert!(app.loaded_config().await.is_some_and(|y| y.contains("version: \"2\"")), "{}", app.log());

    // Prometheus scrapes configsnap (it asks for OpenMetrics) and reads our metrics.
    wait_until("Prometheus scrapes configsnap", WAIT, || async {
        app.query("configsnap_last_reload_successful").await == Some(1.0)
    })
    .await;
    assert_eq!(app.query("up%7Bjob%3D%22configsnap%22%7D").await, Some(1.0));
}

/// Prometheus on a chosen port.
fn start_on(binary: &Path, config: &Path, data: &Path, port: u16) -> Prometheus {
    let log = data.with_extension("log");
    let out = std::fs::File::create(&log).expect("prometheus log");
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log fd"))
        .stderr(out)
        .spawn()
        .expect("start prometheus");
    Prometheus { child, base: format!("http://127.0.0.1:{port}"), log }
}

// Fake API: Kubernetes is incidental (the /metrics format); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_as_text_and_come_as_openmetrics_when_asked() {
    let (_, promtool) = prometheus_tools();
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    sidecar.wait_metric("configsnap_swaps_total", 1.0).await;

    let (_, text) = sidecar.get("/metrics").await.expect("/metrics answers");
    let (ok, said) = promtool_check_metrics(&promtool, &text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    assert!(!text.contains("# EOF") && text.contains("# TYPE configsnap_swaps_total counter"), "{text}");
    for name in [
        "configsnap_last_reload_successful 1",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(&format!("\n{name}")), "{name} missing:\n{text}");
    }

    let openmetrics = openmetrics_get(sidecar.port).await;
    assert!(openmetrics.starts_with("HTTP/1.1 200"), "{openmetrics}");
    assert!(
        openmetrics.to_ascii_lowercase().contains("content-type: application/openmetrics-text"),
        "{openmetrics}"
    );
    assert!(openmetrics.trim_end().ends_with("# EOF"), "{openmetrics}");
}

/// A raw GET of /metrics with Prometheus's own Accept header; the whole response.
async fn openmetrics_get(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
        .expect("an answer from /metrics")
}

// Fake API: none needed; a flag usage error exits before any API contact.
#[test]
fn several_namespaces_are_a_usage_error_before_anything_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_configsnap"))
        .args(["--namespace", "a,b", "--dir"])
        .arg(tmp.path())
        .output()
        .expect("run configsnap");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("configsnap watches one"), "{stderr}");
}

// Fake API: none; a kubeconfig pointing at a dead port gives refused connections, no server needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_library_error_is_logged_once_however_often_the_client_retries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dead = free_port(); // nothing listens there: every list attempt fails to connect
    let kubeconfig = tmp.path().join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: \"http://127.0.0.1:{dead}\"}}\n  name: c\n\
         contexts:\n- context: {{cluster: c, namespace: team-a, user: u}}\n  name: c\ncurrent-context: c\n\
         users:\n- name: u\n  user: {{token: x}}\n"
    );
    std::fs::write(&kubeconfig, config).expect("kubeconfig");
    std::fs::create_dir(tmp.path().join("config")).expect("dir");
    let port = free_port();
    let args = [
        format!("--dir={}", tmp.path().join("config").display()),
        format!("--listen=127.0.0.1:{port}"),
        "--log-format=json".to_owned(),
    ];
    let sidecar = crate::support::spawn_sidecar(&args, &kubeconfig, tmp.path(), port);
    wait_until("three failed attempts to reach the API", WAIT, || async {
        sidecar.metric("configsnap_watch_errors_total{reason=\"refused\"}").await.is_some_and(|n| n >= 3.0)
    })
    .await;
    let log = sidecar.log();
    let library: Vec<&str> = log
        .lines()
        .filter(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            value["target"].as_str().is_some_and(|t| !t.starts_with("configsnap"))
        })
        .collect();
    assert!(library.len() <= 1, "at most one line from the client library per 30 s:\n{log}");
}
