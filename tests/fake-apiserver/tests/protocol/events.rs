//! Events: `events.k8s.io/v1` create, get, list with field selectors, watch, the core/v1
//! view, and the event-write faults.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use hyper::Method;
use serde_json::{Value, json};

use crate::common::{Watch, client, enc, get, request};

fn event(name: &str, regarding: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "ns"},
        "eventTime": "2026-11-30T05:00:00.123456Z",
        "reason": reason, "note": format!("{reason} on {regarding}"), "type": "Warning", "action": "Render",
        "reportingController": "configsnap", "reportingInstance": "pod-1",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": regarding, "uid": "u-1"},
        "related": {"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "pod-1"}
    })
}

fn events_url(server: &FakeApiServer, rest: &str) -> String {
    format!("{}/apis/events.k8s.io/v1/namespaces/ns/events{rest}", server.url())
}

// Fake API: checks the fake server's own events.k8s.io/v1 create, get and regarding.* field selectors.
#[tokio::test]
async fn events_are_created_read_back_and_selected_by_regarding_name() {
    let server = FakeApiServer::start().await.expect("server starts");
    let c = client();
    for (name, regarding) in [("web.1", "web"), ("db.1", "db")] {
        let (code, _, body) =
            request(&c, Method::POST, &events_url(&server, ""), Some(&event(name, regarding, "Rejected")))
                .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["apiVersion"], "events.k8s.io/v1");
    }
    let (code, _, one) = get(&c, &events_url(&server, "/web.1")).await;
    assert_eq!((code, one["regarding"]["name"].as_str()), (200, Some("web")));
    let selector = enc("regarding.name=web,regarding.kind=ConfigMap");
    let (code, _, list) = get(&c, &events_url(&server, &format!("?fieldSelector={selector}"))).await;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().filter_map(|e| e["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["web.1"]);
    let (code, _, bad) = get(&c, &events_url(&server, &format!("?fieldSelector={}", enc("note=x")))).await;
    assert_eq!(code, 400, "{bad}");
}

// Fake API: checks the fake server's own core/v1 Event view (involvedObject) for kubectl describe.
#[tokio::test]
async fn the_core_view_maps_regarding_to_involved_object_for_kubectl_describe() {
    let server = FakeApiServer::start().await.expect("server starts");
    let c = client();
    request(&c, Method::POST, &events_url(&server, ""), Some(&event("web.1", "web", "ValidationFailed")))
        .await;
    let selector = enc("involvedObject.name=web,involvedObject.namespace=ns,involvedObject.kind=ConfigMap");
    let url = format!("{}/api/v1/namespaces/ns/events?fieldSelector={selector}", server.url());
    let (code, _, list) = get(&c, &url).await;
    assert_eq!(code, 200, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["involvedObject"]["name"], "web");
    assert_eq!(item["reason"], "ValidationFailed");
    assert_eq!(item["message"], "ValidationFailed on web");
    assert_eq!(item["source"]["component"], "configsnap");
    assert_eq!(item["count"], 1);
    assert_eq!(item["lastTimestamp"], "2026-11-30T05:00:00Z");
    let (_, _, all) = get(&c, &format!("{}/api/v1/events", server.url())).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
}

// Fake API: checks the fake server's own watch on Events.
#[tokio::test]
async fn a_watch_on_events_sees_a_created_event() {
    let server = FakeApiServer::start().await.expect("server starts");
    let c = client();
    let mut watch = Watch::open(&c, &events_url(&server, "?watch=true")).await;
    assert_eq!(watch.status, 200);
    request(&c, Method::POST, &events_url(&server, ""), Some(&event("web.1", "web", "Applied"))).await;
    let seen = watch.non_bookmark().await;
    assert_eq!(seen["type"], "ADDED");
    assert_eq!(seen["object"]["reason"], "Applied");
}

// Fake API: checks the fake's own Event-write faults (403, delay) that the e2e Event tests use.
#[tokio::test]
async fn event_writes_can_be_forbidden_and_delayed_without_touching_other_resources() {
    let server = FakeApiServer::start().await.expect("server starts");
    let c = client();
    server.faults().set_event_writes_status(Some(403));
    let (code, _, body) =
        request(&c, Method::POST, &events_url(&server, ""), Some(&event("web.1", "web", "Applied"))).await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("Forbidden")));
    assert!(server.events("ns").is_empty());
    // ConfigMaps are not affected, and an injected failure is not consumed by events.
    server.faults().fail_requests(1, 503, None);
    server.faults().set_event_writes_status(None);
    let (code, _, _) =
        request(&c, Method::POST, &events_url(&server, ""), Some(&event("web.1", "web", "Applied"))).await;
    assert_eq!(code, 201);
    let (code, _, _) = get(&c, &format!("{}/api/v1/namespaces/ns/configmaps", server.url())).await;
    assert_eq!(code, 503);
    server.faults().set_event_writes_delay(Duration::from_secs(30));
    let (c2, url, body) = (c.clone(), events_url(&server, ""), event("web.2", "web", "Applied"));
    let slow = tokio::spawn(async move { request(&c2, Method::POST, &url, Some(&body)).await });
    // While the event write is held back, other requests are answered and it is not stored.
    let (code, _, _) = get(&c, &format!("{}/api/v1/namespaces/ns/configmaps", server.url())).await;
    assert_eq!(code, 200);
    assert_eq!(server.events("ns").len(), 1);
    assert!(!slow.is_finished());
    slow.abort();
}

// Fake API: checks the fake server's own Table view of Events for kubectl get events.
#[tokio::test]
async fn kubectl_get_events_gets_a_table_with_the_columns_a_real_server_sends() {
    let server = FakeApiServer::start().await.expect("server starts");
    let c = client();
    request(&c, Method::POST, &events_url(&server, ""), Some(&event("web.1", "web", "Rejected"))).await;
    let req = hyper::Request::builder()
        .uri(format!("{}/api/v1/namespaces/ns/events", server.url()))
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = c.request(req).await.expect("answer");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let table: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(table["kind"], "Table");
    let names: Vec<&str> =
        table["columnDefinitions"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message", "Name"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[1], "Warning");
    assert_eq!(cells[3], "configmap/web");
    assert_eq!(cells[4], "Rejected on web");
}
