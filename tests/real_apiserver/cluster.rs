//! One control plane with the `deploy/base` ServiceAccount, Role and RoleBinding applied
//! in namespace `team-a`, and sidecars running as that ServiceAccount.

use configsnap_kit::control_plane::ControlPlane;
use configsnap_kit::sidecar::Launch;
use configsnap_kit::{Sidecar, free_port, wait_for};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The namespace of every test.
pub const NS: &str = "team-a";
/// The label that selects a ConfigMap.
pub const LABEL: &str = "configsnap.io/include=true";
/// The ServiceAccount of `deploy/base`.
pub const SA: &str = "configsnap";
/// The sidecar's user name as the API server (and its audit log) knows it.
pub const USER: &str = "system:serviceaccount:team-a:configsnap";
/// Bound of a wait on the real server (a loaded 2-core machine runs it beside the tests).
pub const WAIT: Duration = Duration::from_secs(60);
/// The counter of successful reloads by `--exec`.
pub const RELOADS: &str = "configsnap_reloads_total{method=\"exec\",result=\"success\"}";

/// A control plane, the deploy RBAC and a scratch dir.
pub struct Cluster {
    /// The control plane (down on drop).
    pub cp: ControlPlane,
    /// Scratch space: kubeconfig, target dirs, logs.
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts a control plane (`extra` flags to kube-apiserver) and applies the
    /// `deploy/base` ServiceAccount, Role and RoleBinding in [`NS`].
    pub fn start(extra: &[&str]) -> Self {
        let cp = ControlPlane::start(extra);
        cp.kubectl(&["create", "namespace", NS]);
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/base");
        let files: Vec<String> = ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml"]
            .iter()
            .map(|f| base.join(f).display().to_string())
            .collect();
        cp.kubectl(&["apply", "-n", NS, "-f", &files[0], "-f", &files[1], "-f", &files[2]]);
        let tmp = tempfile::tempdir().expect("tempdir");
        cp.kubeconfig_for(NS, SA, &tmp.path().join("kubeconfig"));
        Self { cp, tmp }
    }

    /// Starts a sidecar as the ServiceAccount, with its own `--dir` (`dir-<tag>`), an
    /// `--exec true` reload (unless `extra` has its own `--exec`) and `extra` flags.
    pub fn sidecar(&self, tag: &str, extra: &[&str]) -> Sidecar {
        let port = free_port();
        let dir = self.dir(tag);
        std::fs::create_dir_all(&dir).expect("target dir");
        let mut args = vec![
            format!("--dir={}", dir.display()),
            format!("--selector={LABEL}"),
            format!("--listen=127.0.0.1:{port}"),
            "--log-format=json".to_owned(),
            "--debounce=0".to_owned(),
        ];
        if !extra.iter().any(|a| a.starts_with("--exec")) {
            args.push("--exec=true".to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let kubeconfig = self.tmp.path().join("kubeconfig");
        Sidecar::spawn(&Launch {
            binary: Path::new(env!("CARGO_BIN_EXE_configsnap")),
            args: &args,
            kubeconfig: &kubeconfig,
            log_dir: self.tmp.path(),
            port,
            setup: None,
            rust_log: None,
        })
    }

    /// The target dir of the sidecar `tag`.
    pub fn dir(&self, tag: &str) -> PathBuf {
        self.tmp.path().join(format!("dir-{tag}"))
    }

    /// Reads `<dir-tag>/<rel>`.
    pub fn read(&self, tag: &str, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir(tag).join(rel)).ok()
    }

    /// kubectl as admin, in [`NS`].
    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", NS];
        all.extend_from_slice(args);
        self.cp.kubectl(&all)
    }

    /// `kubectl apply -f -` of `yaml`, in [`NS`], with extra `args`.
    pub fn apply(&self, yaml: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", NS, "apply", "-f", "-"];
        all.extend_from_slice(args);
        self.cp.kubectl_with_input(&all, Some(yaml))
    }

    /// Requests by the sidecar's user in the audit log, as (verb, resource, status code).
    pub fn sidecar_requests(&self) -> Vec<(String, String, u64)> {
        self.cp
            .audit()
            .into_iter()
            .filter(|e| e["user"]["username"] == USER && e["stage"] == "ResponseComplete")
            .map(|e| {
                let verb = e["verb"].as_str().unwrap_or_default().to_owned();
                let resource = e["objectRef"]["resource"].as_str().unwrap_or_default().to_owned();
                (verb, resource, e["responseStatus"]["code"].as_u64().unwrap_or_default())
            })
            .collect()
    }

    /// LISTs of ConfigMaps by the sidecar's user so far.
    pub fn configmap_lists(&self) -> usize {
        self.sidecar_requests()
            .iter()
            .filter(|(verb, resource, _)| verb == "list" && resource == "configmaps")
            .count()
    }
}

/// A selected ConfigMap `name` with `data`.
pub fn configmap(name: &str, data: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    configsnap.io/include: \"true\"\ndata:\n"
    );
    for (key, value) in data {
        yaml.push_str(&format!("  {key}: {}\n", serde_json::to_string(value).expect("json string")));
    }
    yaml
}

/// Waits until `<dir-tag>/<rel>` holds `want` (or is gone, for `None`).
pub async fn wait_file(cluster: &Cluster, tag: &str, rel: &str, want: Option<&[u8]>) {
    let what = format!("{tag}/{rel} == {:?}", want.map(String::from_utf8_lossy));
    wait_for(&what, WAIT, || cluster.read(tag, rel).as_deref() == want).await;
}

/// Waits until the reload counter is exactly `n`.
pub async fn wait_reloads(sidecar: &Sidecar, n: f64) {
    configsnap_kit::wait_until(&format!("{RELOADS} == {n}"), WAIT, || async {
        sidecar.metric(RELOADS).await.unwrap_or(0.0) == n
    })
    .await;
}
