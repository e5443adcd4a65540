//! The local demo: the real configsnap pipeline against an embedded Kubernetes API (the
//! test suite's fake API server, real HTTP on loopback). No cluster needed.
//!
//! `cargo run --example demo` shows: the first snapshot, a ConfigMap update arriving as an
//! atomic `..data` swap, a bad key rejected while the previous files stay, the Kubernetes
//! Event that says why, and the admin endpoints. Each step checks that what it shows happened and fails the demo otherwise.
//! Add `-- --keep` to leave it running (Ctrl-C to stop): it prints the kubeconfig and
//! `kubectl` commands that work against the embedded API (get, patch, replace, delete).

use clap::Parser;
use configsnap::cli::Args;
use fake_apiserver::FakeApiServer;
use std::path::Path;
use std::time::Duration;

const NS: &str = "demo";

/// How long the demo waits for the files.
const WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const TICK: Duration = Duration::from_millis(5);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep = std::env::args().any(|a| a == "--keep");
    let api = FakeApiServer::start().await?;
    let work = tempfile::Builder::new().prefix("configsnap-demo-").tempdir()?;
    let (kubeconfig, dir) = (work.path().join("kubeconfig"), work.path().join("config"));
    api.write_kubeconfig(&kubeconfig, NS)?;
    api.apply("configmaps", web("<h1>Hello from v1</h1>\n"))?;
    api.apply("configmaps", FakeApiServer::configmap(NS, "unrelated").data("x", "not selected").build())?;

    let admin = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let args = Args::try_parse_from([
        "configsnap".to_owned(),
        format!("--dir={}", dir.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        "--selector=app=web".to_owned(),
        format!("--listen={admin}"),
    ])?;
    configsnap::telemetry::init(configsnap::cli::LogFormat::Text);
    println!("\n== configsnap demo: API {} (namespace {NS}), files in {}\n", api.url(), dir.display());
    let sidecar = tokio::spawn(configsnap::run::run(args.into_config()?));

    let first = || read(&dir, "web/index.html").is_some();
    configsnap_kit::poll(WAIT, TICK, first).await.ok_or("timed out waiting for the first snapshot")?;
    if dir.join("unrelated").exists() {
        return Err("the unselected ConfigMap \"unrelated\" was written".into());
    }
    show(&dir, "first snapshot (the unselected ConfigMap is not there)");

    let before = data_target(&dir);
    api.apply("configmaps", web("<h1>Hello from v2</h1>\n"))?;
    let updated = || read(&dir, "web/index.html").is_some_and(|t| t.contains("v2"));
    configsnap_kit::poll(WAIT, TICK, updated).await.ok_or("timed out waiting for the update")?;
    println!("== update: ..data swapped from {before} to {}", data_target(&dir));
    show(&dir, "after the update");

    let bad = FakeApiServer::configmap(NS, "web")
        .label("app", "web")
        .data("index.html", "<h1>v3</h1>")
        .data("../escape", "x")
        .build();
    api.apply_unvalidated("configmaps", bad);
    let mut rejected = false;
    for _ in 0..500 {
        let metrics = get(admin, "/metrics").await?;
        if metrics.contains("configsnap_rejected_objects_total{reason=\"invalid_key\"} 1") {
            rejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !rejected {
        return Err("the ConfigMap with key \"../escape\" was not rejected within 5 s".into());
    }
    if !read(&dir, "web/index.html").is_some_and(|t| t.contains("v2")) || dir.join("escape").exists() {
        return Err("the rejected ConfigMap changed the files".into());
    }
    println!("== a ConfigMap with key \"../escape\" was rejected; the previous files stay:");
    show(&dir, "after the bad update");
    let event = rejected_event(&api).await?;
    println!(
        "== Event on ConfigMap web (what `kubectl describe configmap web` shows): {} {}: {}\n",
        event["type"].as_str().unwrap_or_default(),
        event["reason"].as_str().unwrap_or_default(),
        event["note"].as_str().unwrap_or_default()
    );

    let metrics = get(admin, "/metrics").await?;
    println!("== http://{admin}/readyz\n{}", get(admin, "/readyz").await?);
    println!("== http://{admin}/metrics (excerpt)");
    metrics
        .lines()
        .filter(|l| l.starts_with("configsnap_swaps_total") || l.starts_with("configsnap_rejected"))
        .for_each(|l| println!("{l}"));
    if keep {
        print_try_it(&kubeconfig, &dir, admin);
        sidecar.await??;
    } else {
        sidecar.abort();
        println!("\n== done (run with `-- --keep` to leave it running)");
    }
    Ok(())
}

/// Commands that work against the embedded API (it speaks JSON and merge patches; not
/// protobuf, so not `kubectl create configmap`).
fn print_try_it(kubeconfig: &Path, dir: &Path, admin: std::net::SocketAddr) {
    let k = format!("kubectl -n {NS}");
    println!(
        "\n== running; press Ctrl-C to stop. Try, in another terminal:\n\
         \n  export KUBECONFIG={kubeconfig}\
         \n  {k} get configmaps\
         \n  {k} get events; {k} describe configmap web   # configsnap's Events\
         \n  # drop the bad key and change the page (a merge patch; kubectl edit works too):\
         \n  {k} patch configmap web --type merge -p '{{\"data\":{{\"../escape\":null,\"index.html\":\"<h1>Hello from v3</h1>\"}}}}'\
         \n  cat {index}\
         \n  {k} get configmap web -o json | sed 's/v3/v4/' | {k} replace --validate=false -f -\
         \n  {k} label configmap unrelated app=web      # selected now: {unrelated} appears\
         \n  {k} delete configmap unrelated\
         \n  curl -s http://{admin}/readyz; curl -s http://{admin}/metrics | grep ^configsnap_swaps",
        kubeconfig = kubeconfig.display(),
        index = dir.join("web/index.html").display(),
        unrelated = dir.join("unrelated").display(),
    );
}

/// The `Rejected` Event configsnap published on ConfigMap web, read back from the API.
async fn rejected_event(api: &FakeApiServer) -> Result<serde_json::Value, String> {
    let found = || {
        api.events(NS).into_iter().find(|e| {
            e["reason"] == "Rejected"
                && e["regarding"]["kind"] == "ConfigMap"
                && e["regarding"]["name"] == "web"
        })
    };
    for _ in 0..2000 {
        if let Some(event) = found() {
            return Ok(event);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("no Rejected Event on ConfigMap web within 10 s".into())
}

fn web(page: &str) -> serde_json::Value {
    FakeApiServer::configmap(NS, "web")
        .label("app", "web")
        .data("index.html", page)
        .data("nginx.conf", "events {}\nhttp { server { listen 8080; root /config/web; } }\n")
        .build()
}

fn read(dir: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(rel)).ok()
}

fn data_target(dir: &Path) -> String {
    std::fs::read_link(dir.join("..data")).map(|t| t.display().to_string()).unwrap_or_default()
}

fn show(dir: &Path, title: &str) {
    println!("-- {title}:");
    let mut names: Vec<_> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        match std::fs::read_link(&path) {
            Ok(target) => println!("   {} -> {}", name.to_string_lossy(), target.display()),
            Err(_) => println!("   {}/", name.to_string_lossy()),
        }
    }
    println!("   web/index.html = {:?}\n", read(dir, "web/index.html").unwrap_or_default());
}

/// GET `path` on the admin server: the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> Result<String, Box<dyn std::error::Error>> {
    let (_, body) = configsnap_kit::http_get(&format!("http://{addr}{path}")).await.ok_or("no answer")?;
    Ok(body.trim().to_owned())
}
