//! The opt-in rules of the deploy Role: `--secrets` needs the commented `secrets` rule of
//! `deploy/base/role.yaml` (without it the Secret watch is refused and named; with it,
//! Secrets are written 0600), and `--name` (a `metadata.name` field selector) works
//! under the same Role.

use crate::cluster::{Cluster, WAIT, configmap, wait_file};
use std::os::unix::fs::PermissionsExt;

/// The `secrets` rule that `deploy/base/role.yaml` carries commented out, uncommented.
fn role_with_secrets() -> String {
    let role =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/base/role.yaml")).expect("role");
    let uncommented: Vec<String> = role
        .lines()
        .map(|line| match line.strip_prefix("  # ") {
            Some(rule)
                if rule.starts_with("- apiGroups: [\"\"]")
                    || rule.starts_with("  resources: [\"secrets\"]")
                    || rule.starts_with("  verbs:") =>
            {
                format!("  {rule}")
            }
            _ => line.to_owned(),
        })
        .collect();
    let text = uncommented.join("\n");
    assert!(
        text.contains("\n  - apiGroups: [\"\"]\n    resources: [\"secrets\"]"),
        "the commented rule is gone:\n{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_need_the_commented_rule_and_names_work_under_the_deploy_role() {
    let cluster = Cluster::start(&[]);
    cluster.apply(&configmap("web", &[("a", "1")]), &[]);
    cluster.apply(&configmap("other", &[("b", "2")]), &[]);
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  labels:\n    configsnap.io/include: \"true\"\nstringData:\n  token: s3cr3t\n";
    cluster.apply(secret, &[]);

    // --name: only that ConfigMap, through a field selector the Role allows.
    let named = cluster.sidecar("named", &["--name=web"]);
    named.wait_state("fresh", WAIT).await;
    wait_file(&cluster, "named", "web/a", Some(b"1")).await;
    assert!(cluster.read("named", "other/b").is_none(), "--name=web wrote another ConfigMap");

    // --secrets without the rule: the Secret watch is refused and named.
    let sidecar = cluster.sidecar("secrets", &["--secrets"]);
    let body = sidecar.wait_state("degraded", WAIT).await;
    let reason = body["status"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot list resource \"secrets\"")
            || reason.contains("cannot watch resource \"secrets\""),
        "{body}"
    );

    // With the rule: healed without a restart, the Secret written 0600.
    cluster.apply(&role_with_secrets(), &[]);
    sidecar.wait_state("fresh", WAIT).await;
    wait_file(&cluster, "secrets", "creds/token", Some(b"s3cr3t")).await;
    let mode =
        std::fs::metadata(cluster.dir("secrets").join("creds/token")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!sidecar.log().contains("s3cr3t"), "a Secret value reached the log");
}
