//! kube-runtime's event recorder against the fake server: a create, then a series patch.

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::support::kube_client;

// Fake API: checks the fake against kube-runtime's Recorder (a create, then a series patch).
#[tokio::test]
async fn the_recorder_turns_repeats_into_one_series() {
    let server = FakeApiServer::start().await.expect("server starts");
    let client = kube_client(&server).await;
    let reporter = Reporter { controller: "configsnap".into(), instance: Some("pod-1".into()) };
    let recorder = Recorder::new(client, reporter);
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some("ns".into()),
        name: Some("web".into()),
        uid: Some("u-1".into()),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "Rejected".into(),
        note: Some("invalid key".into()),
        action: "Render".into(),
        secondary: None,
    };
    for _ in 0..3 {
        recorder.publish(&event, &regarding).await.expect("the fake server accepts events");
    }
    let events = server.events("ns");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["series"]["count"], 3);
    assert_eq!(events[0]["regarding"]["name"], "web");
}
