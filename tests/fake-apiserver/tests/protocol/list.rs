//! LIST: selectors, pagination and resourceVersion semantics.

use fake_apiserver::FakeApiServer;

use super::{cms, put};
use crate::common::{client, enc, get, names};

async fn labelled_server() -> FakeApiServer {
    let server = FakeApiServer::start().await.expect("server starts");
    put(&server, "a-web", &[("app", "web"), ("tier", "front")]);
    put(&server, "b-db", &[("app", "db")]);
    put(&server, "c-cache", &[("app", "cache"), ("tier", "back")]);
    put(&server, "d-none", &[]);
    server
}

// Fake API: checks the fake server's own label selector operators, which the other tests rely on.
#[tokio::test]
async fn list_filters_by_every_label_selector_operator() {
    let server = labelled_server().await;
    let c = client();
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["a-web"]),
        ("app==db", &["b-db"]),
        ("app!=web", &["b-db", "c-cache", "d-none"]),
        ("app in (web, db)", &["a-web", "b-db"]),
        ("app notin (web,db)", &["c-cache", "d-none"]),
        ("tier", &["a-web", "c-cache"]),
        ("!tier", &["b-db", "d-none"]),
        ("app,!tier", &["b-db"]),
        ("app in (web,cache),tier=back", &["c-cache"]),
    ];
    for (selector, want) in cases {
        let (code, _, body) = get(&c, &cms(&server, &format!("labelSelector={}", enc(selector)))).await;
        assert_eq!(code, 200, "{selector}: {body}");
        assert_eq!(names(&body), *want, "{selector}");
    }
}

// Fake API: checks the fake server's own 400 for a malformed label selector.
#[tokio::test]
async fn list_rejects_a_malformed_label_selector_with_400() {
    let server = labelled_server().await;
    let (code, _, body) = get(&client(), &cms(&server, &format!("labelSelector={}", enc("app in (")))).await;
    assert_eq!(code, 400);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "BadRequest");
}

// Fake API: checks the fake server's own metadata.name field selector, which --name relies on.
#[tokio::test]
async fn list_filters_by_metadata_name_field_selector() {
    let server = labelled_server().await;
    let c = client();
    let (code, _, body) = get(&c, &cms(&server, "fieldSelector=metadata.name%3Dc-cache")).await;
    assert_eq!((code, names(&body)), (200, vec!["c-cache".to_string()]));
    let (code, _, body) = get(&c, &cms(&server, "fieldSelector=metadata.name!%3Dc-cache")).await;
    assert_eq!((code, names(&body).len()), (200, 3));
    let (code, _, body) = get(&c, &cms(&server, "fieldSelector=data.k%3Dx")).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
}

// Fake API: checks the fake server's own LIST shape (no item kind, the list's resourceVersion).
#[tokio::test]
async fn list_items_have_no_kind_and_the_list_has_the_current_resource_version() {
    let server = labelled_server().await;
    let (_, _, body) = get(&client(), &cms(&server, "")).await;
    assert_eq!(body["kind"], "ConfigMapList");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["metadata"]["resourceVersion"], server.current_resource_version().to_string());
    let first = &body["items"][0];
    assert!(first.get("kind").is_none() && first.get("apiVersion").is_none(), "{first}");
    assert_eq!(first["metadata"]["namespace"], "ns");
}

// Fake API: checks the fake server's own pagination (limit, continue, one snapshot).
#[tokio::test]
async fn list_pages_with_limit_and_continue_from_one_snapshot() {
    let server = labelled_server().await;
    put(&server, "e-web", &[("app", "web")]);
    let c = client();
    let (code, _, p1) = get(&c, &cms(&server, "limit=2")).await;
    assert_eq!(code, 200);
    assert_eq!(names(&p1), ["a-web", "b-db"]);
    assert_eq!(p1["metadata"]["remainingItemCount"], 3);
    let snapshot_rv = p1["metadata"]["resourceVersion"].clone();
    // Changes after the first page must not show up in later pages.
    put(&server, "bb-new", &[]);
    server.delete("configmaps", "ns", "c-cache").expect("exists");
    let token = p1["metadata"]["continue"].as_str().expect("a continue token");
    let (_, _, p2) = get(&c, &cms(&server, &format!("limit=2&continue={}", enc(token)))).await;
    assert_eq!(names(&p2), ["c-cache", "d-none"]);
    assert_eq!(p2["metadata"]["resourceVersion"], snapshot_rv);
    let token = p2["metadata"]["continue"].as_str().expect("a continue token");
    let (_, _, p3) = get(&c, &cms(&server, &format!("limit=2&continue={}", enc(token)))).await;
    assert_eq!(names(&p3), ["e-web"]);
    assert!(p3["metadata"].get("continue").is_none(), "last page: {p3}");
}

// Fake API: checks the fake server's own paging under a selector (no remainingItemCount).
#[tokio::test]
async fn list_pages_under_a_selector_omit_remaining_item_count() {
    let server = labelled_server().await;
    let (_, _, p1) = get(&client(), &cms(&server, &format!("limit=1&labelSelector={}", enc("app")))).await;
    assert_eq!(names(&p1), ["a-web"]);
    assert!(p1["metadata"]["continue"].is_string());
    assert!(p1["metadata"].get("remainingItemCount").is_none(), "{p1}");
}

// Fake API: checks the fake server's own 400 for continue with a resourceVersion, or a bad token.
#[tokio::test]
async fn list_rejects_a_resource_version_together_with_continue() {
    let server = labelled_server().await;
    let c = client();
    let (_, _, p1) = get(&c, &cms(&server, "limit=1")).await;
    let token = enc(p1["metadata"]["continue"].as_str().expect("token"));
    let (code, _, _) = get(&c, &cms(&server, &format!("limit=1&continue={token}&resourceVersion=1"))).await;
    assert_eq!(code, 400);
    let (code, _, _) = get(&c, &cms(&server, "continue=not-a-token")).await;
    assert_eq!(code, 400);
}

// Fake API: checks the fake server's own Exact/NotOlderThan LIST and its 410 after compact().
#[tokio::test]
async fn list_at_an_exact_resource_version_shows_the_past_until_compacted() {
    let server = labelled_server().await;
    let before = server.current_resource_version();
    server.delete("configmaps", "ns", "a-web").expect("exists");
    put(&server, "z-late", &[]);
    let c = client();
    let exact = format!("resourceVersion={before}&resourceVersionMatch=Exact");
    let (code, _, body) = get(&c, &cms(&server, &exact)).await;
    assert_eq!(code, 200);
    assert_eq!(names(&body), ["a-web", "b-db", "c-cache", "d-none"]);
    assert_eq!(body["metadata"]["resourceVersion"], before.to_string());
    let (_, _, now) =
        get(&c, &cms(&server, &format!("resourceVersion={before}&resourceVersionMatch=NotOlderThan"))).await;
    assert_eq!(names(&now), ["b-db", "c-cache", "d-none", "z-late"]);

    server.compact();
    let (code, _, body) = get(&c, &cms(&server, &exact)).await;
    assert_eq!((code, body["reason"].as_str(), body["code"].as_u64()), (410, Some("Expired"), Some(410)));
}

// Fake API: checks the fake server's own 504 for a LIST at a future resourceVersion.
#[tokio::test]
async fn list_of_a_future_resource_version_times_out_with_504() {
    let server = labelled_server().await;
    let future = server.current_resource_version() + 10;
    let (code, _, body) = get(&client(), &cms(&server, &format!("resourceVersion={future}"))).await;
    assert_eq!((code, body["reason"].as_str()), (504, Some("Timeout")));
}

// Fake API: checks the fake server's own no-op apply (same resourceVersion) the no-change tests rely on.
#[tokio::test]
async fn apply_of_an_unchanged_object_keeps_its_resource_version() {
    let server = FakeApiServer::start().await.expect("server starts");
    let first = put(&server, "same", &[("app", "web")]);
    assert_eq!(put(&server, "same", &[("app", "web")]), first);
    assert_eq!(server.current_resource_version(), first);
    assert!(put(&server, "same", &[("app", "db")]) > first);
}

// Fake API: checks the fake server's own 422 for a change to an immutable ConfigMap.
#[tokio::test]
async fn data_of_an_immutable_config_map_cannot_change() {
    let server = FakeApiServer::start().await.expect("server starts");
    let cm = |v: &str| FakeApiServer::configmap("ns", "frozen").data("k", v).immutable(true).build();
    server.apply("configmaps", cm("1")).expect("create");
    let err = server.apply("configmaps", cm("2")).expect_err("immutable");
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
}
