//! Webhook reload, locally: a ConfigMap change reaches an app by one `POST /-/reload`.
//!
//! `cargo run --example webhook_reload` starts the embedded fake Kubernetes API (the test
//! suite's, real HTTP on loopback), runs configsnap in-process with `--webhook-url`, and a
//! tiny HTTP app that, like Prometheus with `--web.enable-lifecycle`, re-reads its config
//! file on `POST /-/reload` and serves what it loaded on `GET /`. It updates the ConfigMap
//! and shows the app reloaded once, with the new content. Every wait is bounded (10 s); it
//! exits non-zero on any failure. The cluster version is `examples/webhook-reload/`.

use bytes::Bytes;
use clap::Parser;
use configsnap::cli::Args;
use fake_apiserver::FakeApiServer;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Error = Box<dyn std::error::Error>;

const NS: &str = "demo";
/// The bound of every wait.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhook_reload: FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let api = FakeApiServer::start().await?;
    let work = tempfile::Builder::new().prefix("configsnap-webhook-").tempdir()?;
    let (kubeconfig, dir) = (work.path().join("kubeconfig"), work.path().join("config"));
    api.write_kubeconfig(&kubeconfig, NS)?;
    api.apply("configmaps", app_config("greeting = \"hello v1\"\n"))?;

    // The app's port first: configsnap's --webhook-url points at it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let reload_url = format!("http://{}/-/reload", listener.local_addr()?);
    let args = Args::try_parse_from([
        "configsnap".to_owned(),
        format!("--dir={}", dir.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        "--selector=app=demo".to_owned(),
        format!("--webhook-url={reload_url}"),
        "--listen=127.0.0.1:0".to_owned(),
    ])?;
    configsnap::telemetry::init(configsnap::cli::LogFormat::Text);
    println!("== fake API {} (namespace {NS}); configsnap writes {}", api.url(), dir.display());
    let sidecar = tokio::spawn(configsnap::run::run(args.into_config()?));
    // by-name layout: ConfigMap "app", key "app.conf".
    let config = dir.join("app/app.conf");
    configsnap_kit::poll(WAIT, Duration::from_millis(50), || config.exists())
        .await
        .ok_or("timed out waiting for the first snapshot")?;

    // The app loads its config once at start, then only when told to.
    let app = App::load(config).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(app.clone().serve(listener));
    println!("== app on http://127.0.0.1:{port}/, reloads on POST {reload_url}");
    println!("== app serves: {}", get(port).await?.trim());

    api.apply("configmaps", app_config("greeting = \"hello v2\"\n"))?;
    println!("== ConfigMap app updated: greeting = \"hello v2\"");
    let served = async {
        while !get(port).await.is_ok_and(|body| body.contains("hello v2")) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, served).await.map_err(|_| "the app did not serve v2 within 10 s")?;

    let reloads = app.reloads();
    if reloads != 1 {
        return Err(format!("expected 1 reload, the app got {reloads}").into());
    }
    println!("== app reloaded 1 time and serves: {}", get(port).await?.trim());
    sidecar.abort();
    Ok(())
}

/// The ConfigMap configsnap selects.
fn app_config(content: &str) -> serde_json::Value {
    FakeApiServer::configmap(NS, "app").label("app", "demo").data("app.conf", content).build()
}

/// A stand-in for an app with a reload endpoint: its config file and what it loaded.
#[derive(Clone)]
struct App {
    path: PathBuf,
    state: Arc<Mutex<Loaded>>,
}

struct Loaded {
    config: String,
    reloads: usize,
}

impl App {
    async fn load(path: PathBuf) -> Result<Self, Error> {
        let config = tokio::fs::read_to_string(&path).await?;
        Ok(Self { path, state: Arc::new(Mutex::new(Loaded { config, reloads: 0 })) })
    }

    fn reloads(&self) -> usize {
        self.state.lock().expect("the app state lock must not be poisoned").reloads
    }

    /// Serves HTTP/1.1 on `listener` until the runtime stops.
    async fn serve(self, listener: tokio::net::TcpListener) {
        while let Ok((stream, _)) = listener.accept().await {
            let app = self.clone();
            let service = hyper::service::service_fn(move |request| app.clone().handle(request));
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    }

    /// `POST /-/reload` re-reads the config file; `GET /` returns the loaded config.
    async fn handle(self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let reply = |status, body: String| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            Ok(response)
        };
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/") => {
                let config =
                    self.state.lock().expect("the app state lock must not be poisoned").config.clone();
                reply(StatusCode::OK, config)
            }
            (&Method::POST, "/-/reload") => {
                // configsnap names the snapshot it reloads for.
                let hash = request.headers().get("x-configsnap-hash").and_then(|v| v.to_str().ok());
                println!(
                    "   app: POST /-/reload (x-configsnap-hash: {}); re-reading {}",
                    hash.unwrap_or("-"),
                    self.path.display()
                );
                match tokio::fs::read_to_string(&self.path).await {
                    Ok(config) => {
                        let mut state = self.state.lock().expect("the app state lock must not be poisoned");
                        state.config = config;
                        state.reloads += 1;
                        reply(StatusCode::OK, "reloaded\n".to_owned())
                    }
                    // A non-2xx answer makes configsnap retry and count a failed reload.
                    Err(err) => {
                        reply(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read config: {err}\n"))
                    }
                }
            }
            _ => reply(StatusCode::NOT_FOUND, "not found\n".to_owned()),
        }
    }
}

/// GET / on the app; the body.
async fn get(port: u16) -> Result<String, Error> {
    let (_, body) = configsnap_kit::http_get(&format!("http://127.0.0.1:{port}/"))
        .await
        .ok_or("the app did not answer")?;
    Ok(body)
}
