//! A fleet: 100 sidecars on one API server follow 10 changes of one selected ConfigMap;
//! the ConfigMap collects one Event per change, not one per replica.

use crate::cluster::{Cluster, WAIT, configmap};
use configsnap_kit::wait_for;
use std::time::Duration;

const SIDECARS: usize = 100;
const CHANGES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_sidecars_converge_on_each_change_and_the_configmap_gets_one_event_per_change() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("web", &[("a", "0")]), &[]);
    let sidecars: Vec<_> = (0..SIDECARS)
        .map(|i| cluster.sidecar(&format!("fleet-{i}"), &[&format!("--pod-name=fleet-{i}")]))
        .collect();
    let converged = |value: &str| {
        (0..SIDECARS)
            .all(|i| cluster.read(&format!("fleet-{i}"), "web/a").as_deref() == Some(value.as_bytes()))
    };
    // Starting a hundred processes on two cores: a longer bound than one change needs.
    wait_for("every sidecar has the first snapshot", Duration::from_secs(300), || converged("0")).await;
    let requests_before = cluster.sidecar_requests().len();
    let first_version =
        cluster.kubectl(&["get", "configmap", "web", "-o", "jsonpath={.metadata.resourceVersion}"]);
    for change in 1..=CHANGES {
        let value = change.to_string();
        cluster.apply(&configmap("web", &[("a", &value)]), &[]);
        wait_for(&format!("every sidecar has change {change}"), WAIT * 2, || converged(&value)).await;
    }
    // Every replica tried its Event; wait until they all have been answered.
    wait_for("the fleet's Events are settled", WAIT * 2, || {
        let events =
            cluster.sidecar_requests().into_iter().filter(|(verb, r, _)| verb == "create" && r == "events");
        events.count() >= SIDECARS * CHANGES / 2
    })
    .await;
    let requests = cluster.sidecar_requests().len() - requests_before;
    eprintln!(
        "{SIDECARS} sidecars, {CHANGES} changes: {requests} requests, {:.1} per sidecar",
        requests as f64 / SIDECARS as f64
    );
    let events: serde_json::Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-o",
        "json",
        "--field-selector=regarding.name=web",
    ]))
    .expect("events json");
    let for_the_changes = |e: &&serde_json::Value| {
        e["reason"] == "Applied" && e["regarding"]["resourceVersion"].as_str() != Some(first_version.trim())
    };
    let applied = events["items"].as_array().map_or(0, |items| items.iter().filter(for_the_changes).count());
    eprintln!("Applied Events on ConfigMap web: {applied}");
    assert!(applied <= CHANGES, "{applied} Applied Events for {CHANGES} changes");
    assert!(applied >= 1, "no Applied Event at all: {events}");
    drop(sidecars);
}
