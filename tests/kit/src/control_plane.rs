//! A real kube-apiserver and etcd of one Kubernetes release, built from Kubernetes' own
//! Go modules and driven by `scripts/control-plane` (see `tests/control-plane/README.md`):
//! the truth for what Kubernetes does (RBAC, validation of Events, patches and
//! server-side apply, watch expiry and 410 Gone). Stopped with `down` on drop, so no
//! process outlives a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The driver script.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/control-plane")
}

/// A running control plane in a temp dir of its own.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    /// The API server's https URL.
    pub server: String,
}

impl ControlPlane {
    /// Builds (cached) and starts etcd and kube-apiserver; `extra` goes to kube-apiserver.
    /// Fails with the driver's own words (Go missing, a port taken, a failed start).
    pub fn up(extra: &[&str]) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("control-plane-").tempdir().map_err(|e| e.to_string())?;
        let mut args = vec!["up".to_owned(), dir.path().display().to_string()];
        if !extra.is_empty() {
            args.push("--".to_owned());
            args.extend(extra.iter().map(|s| (*s).to_owned()));
        }
        let out = run(&args, None)?;
        let server = std::fs::read_to_string(dir.path().join("server"))
            .map_err(|e| format!("`up` printed {out:?} but wrote no server file: {e}"))?
            .trim()
            .to_owned();
        Ok(Self { dir, server })
    }

    /// Like [`ControlPlane::up`], panicking with what to do when it cannot start.
    #[must_use]
    pub fn start(extra: &[&str]) -> Self {
        Self::up(extra).unwrap_or_else(|e| panic!("a real control plane is needed by this test: {e}"))
    }

    /// Its directory (logs, `audit.log`, certificates).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs kubectl as admin; panics with its stderr on failure; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with_input(args, None)
    }

    /// Like [`ControlPlane::kubectl`], with `input` on stdin (`-f -`).
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> String {
        let mut all = vec!["kubectl".to_owned(), self.dir_arg()];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        run(&all, input).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"))
    }

    /// Runs kubectl as admin and returns its whole output, failing or not.
    #[must_use]
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        Command::new(script()).arg("kubectl").arg(self.dir()).args(args).output().expect("run the driver")
    }

    /// Writes a kubeconfig at `out` authenticating as ServiceAccount `sa` of `namespace`.
    pub fn kubeconfig_for(&self, namespace: &str, sa: &str, out: &Path) {
        let args = [
            "kubeconfig".to_owned(),
            self.dir_arg(),
            namespace.to_owned(),
            sa.to_owned(),
            out.display().to_string(),
        ];
        run(&args, None).unwrap_or_else(|e| panic!("kubeconfig for {namespace}/{sa}: {e}"));
    }

    /// `stop-apiserver`, `start-apiserver`, `restart-apiserver`, `kill-apiserver` or
    /// `compact`: etcd and the certificates stay.
    pub fn control(&self, verb: &str) {
        run(&[verb.to_owned(), self.dir_arg()], None).unwrap_or_else(|e| panic!("{verb}: {e}"));
    }

    /// Every audit event so far (one JSON object per line of `audit.log`).
    #[must_use]
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir().join("audit.log")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn dir_arg(&self) -> String {
        self.dir().display().to_string()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("down").arg(self.dir()).stdin(Stdio::null()).output();
    }
}

/// Runs the driver with `args`; stdout on success, else what it said.
fn run(args: &[String], input: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(script())
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`control-plane {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
