//! nginx hot reload, locally: a ConfigMap change reaches a real nginx by one SIGHUP.
//!
//! `cargo run --example nginx_hot_reload` starts the embedded fake Kubernetes API (the test
//! suite's, real HTTP on loopback), runs configsnap in-process, starts `/usr/sbin/nginx`
//! (Debian: `apt-get install nginx-light`) on a free loopback port with the config configsnap
//! wrote, updates the ConfigMap, and shows the same nginx master serving the new page after
//! exactly one SIGHUP. Every wait is bounded (10 s); it exits non-zero on any failure.
//!
//! In a cluster configsnap finds nginx with `--process-name=nginx` in the pod's shared PID
//! namespace (see `examples/nginx-hot-reload/`). On a workstation that name could match
//! another nginx, so here it signals the pid in nginx's pid file (`--pid-file`).

use clap::Parser;
use configsnap::cli::Args;
use fake_apiserver::FakeApiServer;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

type Error = Box<dyn std::error::Error>;

const NS: &str = "demo";
const NGINX: [&str; 2] = ["/usr/sbin/nginx", "/usr/bin/nginx"];
/// The bound of every wait.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(nginx) = NGINX.into_iter().map(Path::new).find(|p| p.exists()) else {
        eprintln!("nginx_hot_reload: nginx not found at {NGINX:?}.");
        eprintln!("Install it, e.g. on Debian/Ubuntu: sudo apt-get install nginx-light");
        return ExitCode::FAILURE;
    };
    match run(nginx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nginx_hot_reload: FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(nginx: &Path) -> Result<(), Error> {
    let api = FakeApiServer::start().await?;
    let work = tempfile::Builder::new().prefix("configsnap-nginx-").tempdir()?;
    // Started as root, nginx runs its workers as `nobody`: they must be able to read the files.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))?;
    let (kubeconfig, dir, run) =
        (work.path().join("kubeconfig"), work.path().join("config"), work.path().join("nginx"));
    std::fs::create_dir(&run)?;
    api.write_kubeconfig(&kubeconfig, NS)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let web = |version| web(version, port, &dir, &run);
    api.apply("configmaps", web("v1"))?;

    // configsnap, as the sidecar would run it, in this process.
    let args = Args::try_parse_from([
        "configsnap".to_owned(),
        format!("--dir={}", dir.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        "--selector=app=web".to_owned(),
        format!("--pid-file={}", run.join("nginx.pid").display()),
        "--listen=127.0.0.1:0".to_owned(),
    ])?;
    configsnap::telemetry::init(configsnap::cli::LogFormat::Text);
    println!("== fake API {} (namespace {NS}); configsnap writes {}", api.url(), dir.display());
    let sidecar = tokio::spawn(configsnap::run::run(args.into_config()?));
    configsnap_kit::poll(WAIT, Duration::from_millis(50), || dir.join("web/nginx.conf").exists())
        .await
        .ok_or("timed out waiting for the first snapshot")?;

    // nginx reads its config from the snapshot, as the app container would from /config.
    let server = Nginx::start(nginx, &dir.join("web/nginx.conf"), &run)?;
    let url = format!("http://127.0.0.1:{port}/");
    let page = wait_for_page(port, "v1").await?;
    let master = server.master_pid()?;
    println!("== nginx master pid {master} on {url} with {}", dir.join("web/nginx.conf").display());
    println!("== GET {url} -> {page}");

    // index.html is read per request, but the header comes from nginx.conf, which nginx
    // reads only at start and on SIGHUP: config v2 in the answer means nginx reloaded.
    api.apply("configmaps", web("v2"))?;
    println!("== ConfigMap web updated: index.html = \"page v2\\n\", nginx.conf X-Config-Version v2");
    let page = wait_for_page(port, "v2").await?;
    println!("== GET {url} -> {page}");

    let hups = server.sighups();
    let same_master = server.master_pid()? == master;
    if hups != 1 || !same_master {
        let err = format!("expected 1 SIGHUP to master {master}, got {hups} (same master: {same_master})");
        return Err(err.into());
    }
    println!(
        "== nginx serves page v2 with config v2 after one SIGHUP (same master pid {master}, no restart)"
    );
    sidecar.abort();
    Ok(())
}

/// The ConfigMap configsnap selects: nginx's config and its page, both at `version`.
fn web(version: &str, port: u16, dir: &Path, run: &Path) -> serde_json::Value {
    FakeApiServer::configmap(NS, "web")
        .label("app", "web")
        .data("nginx.conf", nginx_conf(version, port, dir, run))
        .data("index.html", format!("page {version}\n"))
        .build()
}

/// A foreground nginx on `port` serving `<dir>/web` with an `X-Config-Version` header; every
/// writable path is in `run`. The error log at `notice` records each signal the master gets.
fn nginx_conf(version: &str, port: u16, dir: &Path, run: &Path) -> String {
    let (dir, run) = (dir.display(), run.display());
    format!(
        "daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log notice;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {run}/client;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/web;
        add_header X-Config-Version {version};
    }}
}}
"
    )
}

/// The nginx master process; stopped (SIGQUIT, then SIGKILL) when dropped.
struct Nginx {
    child: Child,
    run: PathBuf,
}

impl Nginx {
    fn start(nginx: &Path, conf: &Path, run: &Path) -> Result<Self, Error> {
        let child = Command::new(nginx)
            .arg("-p")
            .arg(run)
            .arg("-e") // the startup error log, before the config's error_log applies
            .arg(run.join("error.log"))
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .spawn()?;
        Ok(Self { child, run: run.to_owned() })
    }

    /// The pid nginx wrote in its pid file: the one configsnap signals.
    fn master_pid(&self) -> Result<i32, Error> {
        Ok(std::fs::read_to_string(self.run.join("nginx.pid"))?.trim().parse()?)
    }

    /// How many SIGHUPs the master logged.
    fn sighups(&self) -> usize {
        let log = std::fs::read_to_string(self.run.join("error.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains("signal 1 (SIGHUP) received")).count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful stop of the master and its workers (a SIGKILL would orphan them).
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = kill(pid, Signal::SIGQUIT);
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until nginx serves page `version` with config `version`, at most [`WAIT`]. (For a
/// moment after a SIGHUP an old worker may still answer with the old config.)
async fn wait_for_page(port: u16, version: &str) -> Result<Page, Error> {
    let want = Page { body: format!("page {version}\n"), config_version: version.to_owned() };
    let served = async {
        while get(port).await.ok().as_ref() != Some(&want) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, served)
        .await
        .map_err(|_| format!("nginx did not serve {want} within {WAIT:?}"))?;
    Ok(want)
}

/// What nginx answered to `GET /`.
#[derive(PartialEq)]
struct Page {
    body: String,
    config_version: String,
}

impl std::fmt::Display for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} (X-Config-Version: {})", self.body, self.config_version)
    }
}

/// GET / on loopback.
async fn get(port: u16) -> Result<Page, Error> {
    let response =
        configsnap_kit::fetch(&format!("http://127.0.0.1:{port}/")).await.ok_or("nginx did not answer")?;
    if response.status != 200 {
        return Err(format!("nginx answered {}", response.status).into());
    }
    let config_version = response.header("x-config-version").unwrap_or_default().to_owned();
    Ok(Page { body: response.body, config_version })
}
