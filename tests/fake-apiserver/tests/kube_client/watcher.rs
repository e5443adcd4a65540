//! The watcher's happy path: initial sync, changes, streaming lists, the kubeconfig.

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::watcher;

use crate::support::{Ev, Watcher, apply, delete, init_apply, kube_client, put};

fn web() -> watcher::Config {
    watcher::Config::default().labels("app=web")
}

// Fake API: checks the fake serves kube-rs from a plain-http kubeconfig, as the e2e tests use it.
#[tokio::test]
async fn kubeconfig_without_ca_data_gives_a_working_client_for_plain_http() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    let client = kube_client(&server).await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.minor, "33");
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let cm = api.get("a").await.expect("get");
    assert_eq!(cm.data.expect("data")["k"], "1");
}

// Fake API: checks the fake against kube's watcher (initial sync, one LIST) the e2e tests rely on.
#[tokio::test]
async fn watcher_sees_init_init_apply_and_init_done_for_matching_config_maps() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    put(&server, "b", "db", "1");
    put(&server, "c", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    assert_eq!(w.initial_sync().await, [Ev::Init, init_apply("a"), init_apply("c"), Ev::InitDone]);
    let stats = server.stats();
    assert_eq!((stats.lists, stats.errors_injected), (1, 0));
}

// Fake API: checks the fake against kube's watcher (changes, selector transitions).
#[tokio::test]
async fn watcher_sees_apply_and_delete_including_selector_transitions() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    let mut w = Watcher::start(&server, web()).await;
    w.initial_sync().await;
    put(&server, "new", "web", "1");
    assert!(w.expect(apply("new")).await.is_empty());
    put(&server, "a", "web", "2");
    assert!(w.expect(apply("a")).await.is_empty());
    server.delete("configmaps", "ns", "new").expect("exists");
    assert!(w.expect(delete("new")).await.is_empty());
    put(&server, "a", "db", "2");
    assert!(w.expect(delete("a")).await.is_empty(), "leaving the selector is a Delete");
    put(&server, "other", "db", "1");
    put(&server, "last", "web", "1");
    assert!(w.expect(apply("last")).await.is_empty(), "non-matching objects are never seen");
}

// Fake API: checks the fake against kube's streaming-list watcher (no LIST).
#[tokio::test]
async fn streaming_list_watcher_finishes_its_initial_events_at_the_annotated_bookmark() {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a", "web", "1");
    put(&server, "b", "db", "1");
    let mut w = Watcher::start(&server, web().streaming_lists()).await;
    assert_eq!(w.initial_sync().await, [Ev::Init, init_apply("a"), Ev::InitDone]);
    put(&server, "c", "web", "1");
    assert!(w.expect(apply("c")).await.is_empty());
    let stats = server.stats();
    assert_eq!(stats.lists, 0, "a streaming list never calls LIST");
    assert!(stats.watches >= 1);
}
