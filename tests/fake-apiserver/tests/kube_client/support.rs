//! A kube client for a fake server and a watcher whose events tests wait on, bounded.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Stats};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;

/// Upper bound of every wait; backoff after an error is at most a few seconds here.
pub const WAIT: Duration = Duration::from_secs(15);

/// A watcher event reduced to what tests compare: `Init`, `InitApply(name)`, `InitDone`,
/// `Apply(name)`, `Delete(name)` or `Error(text)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    Error(String),
}

impl Ev {
    pub fn is_error(&self) -> bool {
        matches!(self, Ev::Error(_))
    }
}

/// A kube client built the way configsnap builds one outside a cluster: from a kubeconfig
/// file (plain http, no CA data).
pub async fn kube_client(server: &FakeApiServer) -> Client {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "ns").expect("kubeconfig written");
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    Client::try_from(config).expect("client builds")
}

/// The watcher under test, run in a task; its events arrive on a channel.
pub struct Watcher {
    rx: mpsc::UnboundedReceiver<Ev>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Starts `watcher(Api::<ConfigMap>::namespaced(client, "ns"), config).default_backoff()`.
    pub async fn start(server: &FakeApiServer, config: watcher::Config) -> Watcher {
        let api: Api<ConfigMap> = Api::namespaced(kube_client(server).await, "ns");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, config).default_backoff().boxed();
            while let Some(item) = stream.next().await {
                let ev = match item {
                    Ok(watcher::Event::Init) => Ev::Init,
                    Ok(watcher::Event::InitApply(cm)) => Ev::InitApply(cm.name_any()),
                    Ok(watcher::Event::InitDone) => Ev::InitDone,
                    Ok(watcher::Event::Apply(cm)) => Ev::Apply(cm.name_any()),
                    Ok(watcher::Event::Delete(cm)) => Ev::Delete(cm.name_any()),
                    Err(e) => Ev::Error(e.to_string()),
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
        Watcher { rx, task }
    }

    /// Events up to and including the first one `done` accepts; panics after [`WAIT`].
    pub async fn until(&mut self, done: impl Fn(&Ev) -> bool) -> Vec<Ev> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(ev) = self.rx.recv().await {
                let stop = done(&ev);
                seen.push(ev);
                if stop {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "condition not met; events so far: {seen:?}");
        seen
    }

    /// Waits for `want`; returns the events before it.
    pub async fn expect(&mut self, want: Ev) -> Vec<Ev> {
        let mut seen = self.until(|e| *e == want).await;
        seen.pop();
        seen
    }

    /// Events up to InitDone with errors left out: the initial list as the watcher saw it.
    pub async fn initial_sync(&mut self) -> Vec<Ev> {
        self.until(|e| *e == Ev::InitDone).await.into_iter().filter(|e| !e.is_error()).collect()
    }
}

/// Waits until the server's counters satisfy `cond`; panics after [`WAIT`].
pub async fn wait_stats(server: &FakeApiServer, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            let s = server.stats();
            if cond(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{what}: not reached; stats {:?}", server.stats()))
}

/// Stores a ConfigMap `ns/name` with `app=<app>`.
pub fn put(server: &FakeApiServer, name: &str, app: &str, value: &str) -> u64 {
    let cm = FakeApiServer::configmap("ns", name).label("app", app).data("k", value).build();
    server.apply("configmaps", cm).expect("valid ConfigMap")
}

pub fn init_apply(name: &str) -> Ev {
    Ev::InitApply(name.to_string())
}

pub fn apply(name: &str) -> Ev {
    Ev::Apply(name.to_string())
}

pub fn delete(name: &str) -> Ev {
    Ev::Delete(name.to_string())
}
