//! Kubernetes Events: each reason on the object it concerns, repeats as one Event, an API
//! that forbids or delays Events changing no swap or reload, and no Secret value in any.

use crate::support::{NS, Sidecar, WAIT, Workspace, configmap, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The Events stored for `kind`/`name` with `reason`.
fn events_on(api: &FakeApiServer, kind: &str, name: &str, reason: &str) -> Vec<Value> {
    api.events(NS)
        .into_iter()
        .filter(|e| e["regarding"]["kind"] == kind && e["regarding"]["name"] == name && e["reason"] == reason)
        .collect()
}

/// Waits for one Event `reason` on `kind`/`name` and returns it.
async fn wait_event(api: &FakeApiServer, kind: &str, name: &str, reason: &str) -> Value {
    wait_for(&format!("a {reason} Event on {kind} {name}"), WAIT, || {
        !events_on(api, kind, name, reason).is_empty()
    })
    .await;
    events_on(api, kind, name, reason).remove(0)
}

fn note(event: &Value) -> &str {
    event["note"].as_str().unwrap_or_default()
}

async fn wait_fresh(sidecar: &Sidecar) {
    wait_until("fresh", WAIT, || async {
        sidecar.get("/readyz").await.is_some_and(|(code, body)| code == 200 && body.contains("fresh"))
    })
    .await;
}

/// A webhook answering 500 while `app/mode` says bad; counts the calls.
async fn app_webhook(ws: &Workspace) -> (String, Arc<Mutex<Vec<String>>>) {
    let mode = ws.dir().join("app/mode");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let url = crate::support::http_server(move |_| {
        let now = std::fs::read_to_string(&mode).unwrap_or_default();
        seen.lock().expect("lock").push(now.clone());
        async move { if now.starts_with("bad") { 500 } else { 200 } }
    })
    .await;
    (url, calls)
}

// Fake API: Rejected needs a key ("../x") a real server refuses; Events are read from the in-process store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_lands_on_the_object_it_concerns_with_a_useful_message() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("app", &[("mode", "good"), ("config.json", "{}")])).expect("app");
    let ws = Workspace::new(&api);
    let (url, _) = app_webhook(&ws).await;
    let sidecar = ws.start(&[
        &format!("--webhook-url={url}"),
        "--webhook-retries=0",
        "--validate-syntax",
        "--debounce=0",
        "--max-wait=0",
        "--pod-name=web-7d9f",
        "--pod-uid=uid-of-the-pod",
    ]);
    let applied = wait_event(&api, "ConfigMap", "app", "Applied").await;
    assert_eq!(applied["type"], "Normal");
    assert!(note(&applied).contains("snapshot "), "{applied}");
    assert_eq!(applied["reportingController"], "configsnap");
    assert_eq!(applied["reportingInstance"], "web-7d9f");
    assert_eq!(applied["related"]["name"], "web-7d9f");
    assert_eq!(applied["related"]["uid"], "uid-of-the-pod");
    assert_eq!(applied["regarding"]["apiVersion"], "v1");
    assert!(applied["regarding"]["uid"].as_str().is_some_and(|u| !u.is_empty()), "{applied}");

    api.apply_unvalidated("configmaps", configmap("bad", &[("../x", "1")]));
    let rejected = wait_event(&api, "ConfigMap", "bad", "Rejected").await;
    assert_eq!(rejected["type"], "Warning");
    assert!(note(&rejected).contains("invalid key") && note(&rejected).contains("../x"), "{rejected}");
    // kubectl describe selects Events by involvedObject uid too.
    let bad = api.get("configmaps", NS, "bad").expect("bad is stored");
    assert_eq!(rejected["regarding"]["uid"], bad["metadata"]["uid"], "{rejected}");

    api.apply("configmaps", configmap("app", &[("mode", "good"), ("config.json", "{\"v\": 2,,}")]))
        .expect("json");
    let invalid = wait_event(&api, "ConfigMap", "app", "ValidationFailed").await;
    assert_eq!(invalid["type"], "Warning");
    assert!(
        note(&invalid).contains("app/config.json") && note(&invalid).contains("line 1, column"),
        "{invalid}"
    );

    api.apply("configmaps", configmap("app", &[("mode", "bad"), ("config.json", "{}")])).expect("bad mode");
    let refused = wait_event(&api, "ConfigMap", "app", "ReloadFailed").await;
    assert!(note(&refused).contains("500"), "{refused}");
    let rolled = wait_event(&api, "ConfigMap", "app", "RolledBack").await;
    assert_eq!(rolled["type"], "Warning");
    assert!(note(&rolled).contains("restored the last good snapshot"), "{rolled}");
    wait_for("the good files are back", WAIT, || ws.read("app/mode").as_deref() == Some("good")).await;

    api.delete("configmaps", NS, "app").expect("delete app");
    let held = wait_event(&api, "ConfigMap", "app", "SelectionHeld").await;
    assert_eq!(held["type"], "Warning");
    assert!(note(&held).contains("--allow-empty"), "{held}");
    drop(sidecar);
}

// Fake API: 100 writes of a key ("../x") a real server refuses to store; the dedup is the sidecar's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_rejected_100_times_makes_one_event_not_100() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_event(&api, "ConfigMap", "web", "Applied").await;
    for i in 0..100 {
        api.apply_unvalidated("configmaps", configmap("bad", &[("../x", &i.to_string())]));
    }
    // Events go out in order: once the sentinel's is there, every rejection was handled.
    api.apply("configmaps", configmap("sentinel", &[("s", "1")])).expect("sentinel");
    wait_event(&api, "ConfigMap", "sentinel", "Applied").await;
    let rejected = events_on(&api, "ConfigMap", "bad", "Rejected");
    assert_eq!(rejected.len(), 1, "one Event for a stuck bad ConfigMap: {rejected:#?}");
    let rejections = sidecar.metric("configsnap_rejected_objects_total{reason=\"invalid_key\"}").await;
    assert!(rejections.is_some_and(|n| n >= 1.0), "{rejections:?}");
}

// Fake API: Event writes held for an hour (and 403) on demand; RBAC-forbidden Events are also in rbac.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_forbids_or_delays_events_still_gets_every_swap_and_reload() {
    for fault in ["forbidden", "slow"] {
        let api = FakeApiServer::start().await.expect("fake api");
        match fault {
            "forbidden" => api.faults().set_event_writes_status(Some(403)),
            _ => api.faults().set_event_writes_delay(std::time::Duration::from_secs(3600)),
        }
        api.apply("configmaps", configmap("app", &[("mode", "v0")])).expect("app");
        let ws = Workspace::new(&api);
        let (url, calls) = app_webhook(&ws).await;
        let sidecar = ws.start(&[&format!("--webhook-url={url}"), "--debounce=0", "--max-wait=0"]);
        wait_fresh(&sidecar).await;
        for i in 1..=20 {
            let mode = format!("v{i}");
            api.apply("configmaps", configmap("app", &[("mode", &mode)])).expect("update");
            wait_for(&format!("{fault}: {mode} reloaded"), WAIT, || {
                calls.lock().expect("lock").last().is_some_and(|m| *m == mode)
            })
            .await;
        }
        assert!(api.events(NS).is_empty(), "{fault}: no Event could be stored");
        if fault == "forbidden" {
            wait_until("every Applied counted as forbidden", WAIT, || async {
                let forbidden = sidecar.metric("configsnap_events_total{result=\"forbidden\"}").await;
                forbidden.is_some_and(|n| n >= 21.0)
            })
            .await;
            let log = sidecar.log();
            assert_eq!(log.matches("the API forbids creating Events").count(), 1, "logged once: {log}");
        }
    }
}

// Fake API: a Secret key ("../x") a real server refuses; the claim is about the sidecar's own Event notes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_appear_in_any_event() {
    const VALUE: &str = "s3cr3t-VALUE-4242";
    let api = FakeApiServer::start().await.expect("fake api");
    let secret = |name: &str, key: &str, value: &str| {
        FakeApiServer::secret(NS, name)
            .label("configsnap.io/include", "true")
            .data(key, value.as_bytes())
            .build()
    };
    api.apply("secrets", secret("creds", "app.toml", "ok = true")).expect("secret");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--secrets", "--validate-syntax", "--debounce=0", "--max-wait=0"]);
    wait_event(&api, "Secret", "creds", "Applied").await;
    // TOML's parser quotes the offending line: the Event must not.
    api.apply("secrets", secret("creds", "app.toml", &format!("token = \"{VALUE}"))).expect("bad toml");
    let invalid = wait_event(&api, "Secret", "creds", "ValidationFailed").await;
    assert!(note(&invalid).contains("app.toml"), "{invalid}");
    assert!(sidecar.log().contains("app.toml"), "the log keeps the detail");
    api.apply_unvalidated("secrets", secret("creds2", "../x", VALUE));
    wait_event(&api, "Secret", "creds2", "Rejected").await;
    drop(sidecar);

    // A validation command that prints the Secret and fails.
    let other = Workspace::new(&api);
    api.apply("secrets", secret("creds", "token", VALUE)).expect("secret");
    let cmd = "--validate-cmd=cat $CONFIGSNAP_STAGED_DIR/creds/token $CONFIGSNAP_STAGED_DIR/missing";
    let _refusing = other.start(&["--secrets", cmd, "--debounce=0", "--max-wait=0"]);
    let refused = wait_until("a ValidationFailed Event with the exit code", WAIT, || async {
        api.events(NS).iter().any(|e| e["reason"] == "ValidationFailed" && note(e).contains("exited with 1"))
    });
    refused.await;
    let core = crate::support::http_get(&format!("{}/api/v1/namespaces/{NS}/events", api.url())).await;
    let (_, core) = core.expect("the core view answers");
    assert!(!core.contains(VALUE), "a Secret value in a core/v1 Event: {core}");
    for event in api.events(NS) {
        assert!(!event.to_string().contains(VALUE), "a Secret value in an Event: {event}");
    }
}
