//! The publisher against the fake API server (repeats, a forbidding API, a full queue), and
//! against an in-process API under paused time (the 5-minute repeat window).

use super::{Notice, Publisher};
use crate::metrics::Metrics;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Upper bound of each wait.
const WAIT: Duration = Duration::from_secs(10);

async fn client(api: &FakeApiServer) -> kube::Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    api.write_kubeconfig(&path, "ns").expect("kubeconfig");
    let connection = crate::source::kube::Connection::load(Some(&path), Duration::from_secs(60))
        .await
        .expect("the kubeconfig loads");
    connection.client().expect("a client")
}

fn notice(note: &str) -> Notice {
    Notice {
        type_: EventType::Warning,
        reason: "Rejected",
        action: "Render",
        note: note.to_owned(),
        regarding: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            namespace: Some("ns".into()),
            name: Some("web".into()),
            ..ObjectReference::default()
        },
    }
}

fn counted(metrics: &Metrics, line: &str) -> bool {
    metrics.encode().lines().any(|l| l == line)
}

async fn wait_counted(metrics: &Metrics, line: &str) {
    let wait = async {
        while !counted(metrics, line) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("never counted {line:?}:\n{}", metrics.encode());
    }
}

#[tokio::test]
async fn the_same_event_is_sent_once_and_a_new_version_with_a_new_message_goes_out() {
    let api = FakeApiServer::start().await.expect("fake api");
    let metrics = Arc::new(Metrics::new());
    let (publisher, task) = start(&api, &metrics, CancellationToken::new()).await;
    tokio::spawn(task);
    for _ in 0..3 {
        publisher.send(notice("invalid key"));
    }
    // A new message comes with a new version (the recorder keys on the reference).
    let mut newer = notice("another rule");
    newer.regarding.resource_version = Some("8".into());
    publisher.send(newer);
    wait_counted(&metrics, "configsnap_events_total{result=\"sent\"} 2").await;
    assert!(counted(&metrics, "configsnap_events_total{result=\"repeated\"} 2"), "{}", metrics.encode());
    let notes: Vec<String> =
        api.events("ns").iter().map(|e| e["note"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
}

#[tokio::test]
async fn a_forbidding_api_is_asked_once_and_later_events_are_counted_not_sent() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.faults().set_event_writes_status(Some(403));
    let metrics = Arc::new(Metrics::new());
    let (publisher, task) = start(&api, &metrics, CancellationToken::new()).await;
    tokio::spawn(task);
    publisher.send(notice("one"));
    publisher.send(notice("two"));
    wait_counted(&metrics, "configsnap_events_total{result=\"forbidden\"} 2").await;
    api.faults().set_event_writes_status(None);
    publisher.send(notice("three"));
    wait_counted(&metrics, "configsnap_events_total{result=\"forbidden\"} 3").await;
    assert!(api.events("ns").is_empty(), "no retry before the retry interval");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let api = FakeApiServer::start().await.expect("fake api");
    let metrics = Arc::new(Metrics::new());
    // The task is never run: nothing drains the queue.
    let (publisher, _task) = start(&api, &metrics, CancellationToken::new()).await;
    for i in 0..=super::QUEUE {
        publisher.send(notice(&i.to_string()));
    }
    assert!(counted(&metrics, "configsnap_events_dropped_total 1"), "{}", metrics.encode());
}

#[tokio::test]
async fn cancelling_drains_what_is_queued() {
    let api = FakeApiServer::start().await.expect("fake api");
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let (publisher, task) = start(&api, &metrics, cancel.clone()).await;
    publisher.send(notice("queued before shutdown"));
    cancel.cancel();
    tokio::time::timeout(WAIT, task).await.expect("the task ends after its drain");
    assert_eq!(api.events("ns").len(), 1);
}

/// A publisher for no Pod, without redaction, beside a pipeline that is never busy.
async fn start(
    api: &FakeApiServer,
    metrics: &Arc<Metrics>,
    cancel: CancellationToken,
) -> (Publisher, impl Future<Output = ()> + Send + 'static) {
    let idle = tokio::sync::watch::channel(false).1;
    Publisher::start(client(api).await, None, false, Arc::clone(metrics), idle, cancel)
}

/// Events created through [`recording_client`]: (name, note), in order.
type Created = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A client whose API is in-process: it records each Event created and answers as the API
/// server does, 201 with the Event, or 409 for a name it holds already. No sockets, so
/// paused time moves only when the test advances it.
fn recording_client() -> (kube::Client, Created) {
    use http_body_util::BodyExt;
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let created = Created::default();
    let seen = Arc::clone(&created);
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let seen = Arc::clone(&seen);
        async move {
            let body = request.into_body().collect().await.map_err(|e| -> BoxError { e.into() })?.to_bytes();
            let event: serde_json::Value = serde_json::from_slice(&body)?;
            let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            let (name, note) = (field(&event["metadata"]["name"]), field(&event["note"]));
            let mut seen = seen.lock().expect("lock");
            let (status, answer) = if seen.iter().any(|(n, _)| *n == name) {
                let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "AlreadyExists", "code": 409, "message": "already exists"});
                (409, bytes::Bytes::from(status.to_string()))
            } else {
                seen.push((name, note));
                (201, body)
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(answer))?;
            Ok::<_, BoxError>(response)
        }
    });
    (kube::Client::new(service, "ns"), created)
}

/// Lets the publisher's task run, without moving the clock, until `line` is counted.
async fn settle(metrics: &Metrics, line: &str) {
    for _ in 0..10_000 {
        if counted(metrics, line) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never counted {line:?}:\n{}", metrics.encode());
}

#[tokio::test(start_paused = true)]
async fn a_repeat_inside_five_minutes_is_folded_and_the_first_after_them_goes_out() {
    let metrics = Arc::new(Metrics::new());
    let (client, created) = recording_client();
    let idle = tokio::sync::watch::channel(false).1;
    let (publisher, task) =
        Publisher::start(client, None, false, Arc::clone(&metrics), idle, CancellationToken::new());
    tokio::spawn(task);
    // A stuck bad ConfigMap: every new version breaks the same rule, so the same message.
    let version = |rv: &str| {
        let mut notice = notice("key \"a/b\" is not a valid key");
        notice.regarding.resource_version = Some(rv.into());
        notice
    };
    let start = tokio::time::Instant::now();
    let at = |secs: u64| async move {
        tokio::time::advance((start + Duration::from_secs(secs)) - tokio::time::Instant::now()).await;
    };
    publisher.send(version("1"));
    settle(&metrics, "configsnap_events_total{result=\"sent\"} 1").await;
    // Inside the window (5 minutes from the Event sent): folded, nothing reaches the API.
    at(60).await;
    publisher.send(version("2"));
    settle(&metrics, "configsnap_events_total{result=\"repeated\"} 1").await;
    at(299).await;
    publisher.send(version("3"));
    settle(&metrics, "configsnap_events_total{result=\"repeated\"} 2").await;
    assert_eq!(created.lock().expect("lock").len(), 1, "folded repeats reached the API");
    // Five minutes after the Event sent (the repeats did not extend the window): a new one.
    at(300).await;
    publisher.send(version("4"));
    settle(&metrics, "configsnap_events_total{result=\"sent\"} 2").await;
    // The window starts again from that Event.
    at(301).await;
    publisher.send(version("5"));
    settle(&metrics, "configsnap_events_total{result=\"repeated\"} 3").await;
    let created = created.lock().expect("lock").clone();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_ne!(created[0].0, created[1].0, "the Event after the window is a new one: {created:?}");
    assert!(created.iter().all(|(_, note)| note.contains("a/b")), "{created:?}");
}
