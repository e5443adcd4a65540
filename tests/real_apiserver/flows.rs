//! The kubectl flows users run, each reaching the files with exactly one reload (a no-op
//! none), and the Events the sidecar writes, accepted by the server and regarding the
//! right object.

use crate::cluster::{Cluster, NS, USER, WAIT, configmap, wait_file, wait_reloads};
use configsnap_kit::wait_for;

/// A change of the `sentinel` ConfigMap that every earlier reload must precede: after it
/// lands, a reload count off by one means an earlier step reloaded twice or not at all.
async fn barrier(cluster: &Cluster, sidecar: &configsnap_kit::Sidecar, round: usize, reloads: f64) {
    let value = format!("barrier-{round}");
    cluster.apply(&configmap("sentinel", &[("s", &value)]), &[]);
    wait_file(cluster, "flows", "sentinel/s", Some(value.as_bytes())).await;
    wait_reloads(sidecar, reloads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_flows_reach_the_files_with_exactly_one_reload_each() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("sentinel", &[("s", "0")]), &[]);
    let sidecar = cluster.sidecar("flows", &[]);
    wait_file(&cluster, "flows", "sentinel/s", Some(b"0")).await;
    let mut reloads = 0.0;
    let file = cluster.tmp.path().join("nginx.conf");

    // create --from-file, then label it into the selection.
    std::fs::write(&file, "v1").expect("write");
    cluster.kubectl(&["create", "configmap", "web", &format!("--from-file=nginx.conf={}", file.display())]);
    cluster.kubectl(&["label", "configmap", "web", "configsnap.io/include=true"]);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v1")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // apply, then an edit-style replace of the whole object.
    cluster.apply(&configmap("web", &[("nginx.conf", "v2")]), &[]);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v2")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;
    let mut edited: serde_json::Value =
        serde_json::from_str(&cluster.kubectl(&["get", "configmap", "web", "-o", "json"])).expect("json");
    edited["data"]["nginx.conf"] = "v3".into();
    cluster.cp.kubectl_with_input(&["-n", NS, "replace", "-f", "-"], Some(&edited.to_string()));
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v3")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // patch: merge, JSON, and server-side apply.
    cluster.kubectl(&["patch", "configmap", "web", "--type=merge", "-p", r#"{"data":{"nginx.conf":"v4"}}"#]);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v4")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;
    let json_patch = r#"[{"op":"replace","path":"/data/nginx.conf","value":"v5"}]"#;
    cluster.kubectl(&["patch", "configmap", "web", "--type=json", "-p", json_patch]);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v5")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;
    let ssa = ["--server-side", "--field-manager=flows-test", "--force-conflicts"];
    cluster.apply(&configmap("web", &[("nginx.conf", "v6")]), &ssa);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v6")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // A no-op apply (same content) reloads nothing: only the barrier's change does.
    cluster.apply(&configmap("web", &[("nginx.conf", "v6")]), &ssa);
    reloads += 1.0;
    barrier(&cluster, &sidecar, 1, reloads).await;

    // Labelled out of the selection and back in.
    cluster.kubectl(&["label", "configmap", "web", "configsnap.io/include-"]);
    wait_file(&cluster, "flows", "web/nginx.conf", None).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;
    cluster.kubectl(&["label", "configmap", "web", "configsnap.io/include=true"]);
    wait_file(&cluster, "flows", "web/nginx.conf", Some(b"v6")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // binaryData: bytes that are no UTF-8, written as they are.
    let blob: Vec<u8> = (0..=255u8).rev().cycle().take(3000).collect();
    let blob_file = cluster.tmp.path().join("blob.bin");
    std::fs::write(&blob_file, &blob).expect("write");
    cluster.kubectl(&[
        "create",
        "configmap",
        "bin",
        &format!("--from-file=blob.bin={}", blob_file.display()),
    ]);
    cluster.kubectl(&["label", "configmap", "bin", "configsnap.io/include=true"]);
    wait_file(&cluster, "flows", "bin/blob.bin", Some(&blob)).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // An immutable ConfigMap lands; the server refuses to change it.
    let immutable = format!("{}immutable: true\n", configmap("frozen", &[("k", "once")]));
    cluster.apply(&immutable, &[]);
    wait_file(&cluster, "flows", "frozen/k", Some(b"once")).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;
    let refused = cluster.cp.kubectl_output(&[
        "-n",
        NS,
        "patch",
        "configmap",
        "frozen",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"twice"}}"#,
    ]);
    assert!(!refused.status.success(), "the server changed an immutable ConfigMap");

    // A value near the 1 MiB object limit.
    let big = "x".repeat(1_000_000);
    let big_file = cluster.tmp.path().join("big.txt");
    std::fs::write(&big_file, &big).expect("write");
    cluster.kubectl(&["create", "configmap", "big", &format!("--from-file=big.txt={}", big_file.display())]);
    cluster.kubectl(&["label", "configmap", "big", "configsnap.io/include=true"]);
    wait_file(&cluster, "flows", "big/big.txt", Some(big.as_bytes())).await;
    reloads += 1.0;
    wait_reloads(&sidecar, reloads).await;

    // delete.
    cluster.kubectl(&["delete", "configmap", "web"]);
    wait_file(&cluster, "flows", "web/nginx.conf", None).await;
    reloads += 1.0;
    barrier(&cluster, &sidecar, 2, reloads + 1.0).await;

    // Every request the sidecar made was allowed and valid, Events included.
    wait_for("the sidecar's Events are sent", WAIT, || {
        cluster.sidecar_requests().iter().any(|(verb, resource, _)| verb == "create" && resource == "events")
    })
    .await;
    let failed: Vec<_> = cluster.sidecar_requests().into_iter().filter(|(_, _, code)| *code >= 400).collect();
    assert!(failed.is_empty(), "requests of {USER} the server refused: {failed:?}");
    let events: serde_json::Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-o",
        "json",
        "--field-selector=regarding.name=big",
    ]))
    .expect("events json");
    let items = events["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items.iter().any(|e| e["regarding"]["kind"] == "ConfigMap" && e["reportingController"].is_string()),
        "no Event regarding ConfigMap big: {events}"
    );
}
