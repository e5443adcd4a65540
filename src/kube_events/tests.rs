//! The publisher against the fake API server: repeats, a forbidding API, a full queue.

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
