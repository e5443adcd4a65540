//! Protocol tests over raw HTTP: what a Kubernetes client sees on the wire.

#[path = "../common/mod.rs"]
mod common;

mod events;
mod faults;
mod list;
mod watch;

use fake_apiserver::FakeApiServer;
use serde_json::Value;

/// Collection URL of ConfigMaps in namespace `ns`, with an optional query string.
pub fn cms(server: &FakeApiServer, query: &str) -> String {
    let base = format!("{}/api/v1/namespaces/ns/configmaps", server.url());
    if query.is_empty() { base } else { format!("{base}?{query}") }
}

/// Stores a ConfigMap `ns/name` with the given labels; returns its resourceVersion.
pub fn put(server: &FakeApiServer, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut b = FakeApiServer::configmap("ns", name).data("k", name);
    for (k, v) in labels {
        b = b.label(k, v);
    }
    server.apply("configmaps", b.build()).expect("valid ConfigMap")
}

/// `(type, name, resourceVersion)` of a watch event.
pub fn summary(ev: &Value) -> (String, String, u64) {
    let t = ev["type"].as_str().unwrap_or_default().to_string();
    let name = ev["object"]["metadata"]["name"].as_str().unwrap_or_default().to_string();
    (t, name, common::rv(&ev["object"]))
}
