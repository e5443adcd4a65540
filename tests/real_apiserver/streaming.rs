//! `--streaming-list`: the initial state as a WatchList stream (`sendInitialEvents`) from
//! the real server, then changes, as the deploy ServiceAccount.

use crate::cluster::{Cluster, WAIT, configmap, wait_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_gets_the_initial_state_and_follows_changes_without_a_list() {
    let cluster = Cluster::start(&[]);
    for i in 0..20 {
        cluster.apply(&configmap(&format!("cm{i}"), &[("k", "0")]), &[]);
    }
    let sidecar = cluster.sidecar("stream", &["--streaming-list"]);
    sidecar.wait_state("fresh", WAIT).await;
    for i in 0..20 {
        wait_file(&cluster, "stream", &format!("cm{i}/k"), Some(b"0")).await;
    }
    cluster.apply(&configmap("cm7", &[("k", "1")]), &[]);
    wait_file(&cluster, "stream", "cm7/k", Some(b"1")).await;
    assert_eq!(cluster.configmap_lists(), 0, "a streaming list sends no LIST");
}
