//! Outages of the real API server: stopped for 60 s, SIGKILLed and restarted, restarted
//! after a compaction (older resourceVersions then answer 410 Gone). Through each the
//! files stay and nothing reloads; after each a change lands, a no-change reloads
//! nothing, and the sidecar lists ConfigMaps at most once.

use crate::cluster::{Cluster, WAIT, configmap, wait_file, wait_reloads};
use std::time::Duration;

/// Applies `value` to `web`, waits for the file and one more reload; then applies the
/// same again (a no-change) and proves with a second object's change that it reloaded
/// nothing.
async fn change_lands_and_no_change_reloads_nothing(
    cluster: &Cluster,
    sidecar: &configsnap_kit::Sidecar,
    value: &str,
    reloads: &mut f64,
) {
    cluster.apply(&configmap("web", &[("a", value)]), &[]);
    wait_file(cluster, "outage", "web/a", Some(value.as_bytes())).await;
    *reloads += 1.0;
    wait_reloads(sidecar, *reloads).await;
    cluster.apply(&configmap("web", &[("a", value)]), &[]);
    cluster.apply(&configmap("sentinel", &[("s", value)]), &[]);
    wait_file(cluster, "outage", "sentinel/s", Some(value.as_bytes())).await;
    *reloads += 1.0;
    wait_reloads(sidecar, *reloads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_keep_the_files_and_cost_at_most_one_list_each() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("web", &[("a", "0")]), &[]);
    cluster.apply(&configmap("sentinel", &[("s", "0")]), &[]);
    let sidecar = cluster.sidecar("outage", &[]);
    sidecar.wait_state("fresh", WAIT).await;
    let mut reloads = 0.0;
    change_lands_and_no_change_reloads_nothing(&cluster, &sidecar, "before", &mut reloads).await;

    let outages: [(&str, &[&str]); 3] = [
        ("stopped for 60 s", &["stop-apiserver"]),
        ("SIGKILLed", &["kill-apiserver"]),
        ("compacted", &["compact"]),
    ];
    let mut lists_per_outage = Vec::new();
    for (round, (what, verbs)) in outages.iter().enumerate() {
        let lists_before = cluster.configmap_lists();
        for verb in *verbs {
            cluster.cp.control(verb);
        }
        if *verbs == ["stop-apiserver"] {
            let body = sidecar.wait_state("degraded", WAIT).await;
            assert_eq!(sidecar.readyz().await.0, 200, "{what}: the files stay usable: {body}");
            // The outage itself: a minute of a server that answers nothing.
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert_eq!(
                cluster.read("outage", "web/a").as_deref(),
                Some(&b"before"[..]),
                "{what}: files stay"
            );
            assert_eq!(
                sidecar.metric(crate::cluster::RELOADS).await.unwrap_or(0.0),
                reloads,
                "{what}: no reload"
            );
            cluster.cp.control("start-apiserver");
        } else if *verbs == ["kill-apiserver"] {
            sidecar.wait_state("degraded", WAIT).await;
            cluster.cp.control("start-apiserver");
        }
        sidecar.wait_state("fresh", WAIT).await;
        change_lands_and_no_change_reloads_nothing(
            &cluster,
            &sidecar,
            &format!("after-{round}"),
            &mut reloads,
        )
        .await;
        let lists = cluster.configmap_lists() - lists_before;
        lists_per_outage.push((*what, lists));
    }
    eprintln!("ConfigMap LISTs per outage: {lists_per_outage:?}");
    for (what, lists) in &lists_per_outage {
        assert!(*lists <= 1, "{what}: {lists} LISTs of ConfigMaps after the outage");
    }
    let failed: Vec<_> = cluster
        .sidecar_requests()
        .into_iter()
        .filter(|(verb, _, code)| *code >= 500 && verb != "watch")
        .collect();
    eprintln!("requests answered 5xx to the sidecar: {}", failed.len());
}
