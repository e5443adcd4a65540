//! Test support: run the real `configsnap` binary against the fake API server, and wait
//! on conditions with bounded timeouts.

pub use configsnap_kit::sidecar::Launch;
pub use configsnap_kit::{Sidecar, WAIT, free_port, http_get, metrics, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::path::{Path, PathBuf};

/// Namespace every test uses.
pub const NS: &str = "team-a";
/// Label selector every test uses.
pub const SELECTOR: &str = "configsnap.io/include=true";

/// The binary under test.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_configsnap"))
}

/// Spawns the binary under test with `args` (no shell, no setup).
pub fn spawn_sidecar(args: &[String], kubeconfig: &Path, log_dir: &Path, port: u16) -> Sidecar {
    Sidecar::spawn(&Launch { binary: binary(), args, kubeconfig, log_dir, port, setup: None, rust_log: None })
}

/// `..data` resolves to a snapshot whose files all match its manifest, and every visible
/// entry links into it.
pub fn assert_complete_snapshot(dir: &Path) {
    let target = std::fs::read_link(dir.join("..data")).expect("..data exists");
    let verified = configsnap::disk::read_current(dir)
        .unwrap_or_else(|e| panic!("{target:?} does not match its manifests: {e}"))
        .expect("..data names a snapshot");
    for top in verified.top_level() {
        let link = std::fs::read_link(dir.join(top)).unwrap_or_else(|e| panic!("visible link {top}: {e}"));
        assert_eq!(link, Path::new(&configsnap::disk::visible_link_target(top)));
    }
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
        let kubeconfig = self.tmp.path().join("kubeconfig");
        Sidecar::spawn(&Launch {
            binary: binary(),
            args: &args,
            kubeconfig: &kubeconfig,
            log_dir: self.tmp.path(),
            port,
            setup,
            rust_log: None,
        })
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
