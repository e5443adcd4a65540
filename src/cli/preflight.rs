//! Start-up checks of what the flags name on disk and in the environment, before anything
//! is created: each failure is one line saying what, why and which flag to use, and
//! exits 64 ([`crate::cli::EXIT_USAGE`]). Only `stat`s: nothing here writes.

use super::Config;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A configuration that cannot work, found before start-up.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// A path flag names something unusable.
    #[error("--{flag} {path}: {reason}")]
    Path {
        /// The flag.
        flag: &'static str,
        /// Its value.
        path: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// No way to reach the Kubernetes API was configured.
    #[error(
        "no Kubernetes client configuration: {0}; give --kubeconfig FILE (or set KUBECONFIG), \
         run in a pod, or read mounted ConfigMap dirs with --from-dir DIR"
    )]
    NoKubeconfig(String),
}

/// Checks `--dir`, `--state-dir` and the Kubernetes client configuration (a `--from-dir`
/// may appear later: kubelet mounts volumes in its own time).
pub fn check(config: &Config) -> Result<(), Error> {
    check_target(&config.output.dir, config.output.create_dir)?;
    if let Some(state) = &config.output.state_dir {
        check_state(state)?;
    }
    if config.source.from_dirs.is_empty() {
        check_kubeconfig(config.source.kubeconfig.as_deref())?;
    }
    Ok(())
}

fn path_error(flag: &'static str, path: &Path, reason: impl Into<String>) -> Error {
    Error::Path { flag, path: path.display().to_string(), reason: reason.into() }
}

/// `--dir` is a directory, or missing with an existing parent (any missing parent with
/// `--create-dir`).
fn check_target(dir: &Path, create_dir: bool) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(path_error("dir", dir, "not a directory")),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if create_dir {
                return Ok(());
            }
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(())
            } else {
                Err(path_error(
                    "dir",
                    dir,
                    format!(
                        "its parent {} does not exist (a mistyped mount path?); add --create-dir to create it",
                        parent.display()
                    ),
                ))
            }
        }
        Err(err) => Err(path_error("dir", dir, err.to_string())),
    }
}

/// `--state-dir` is missing (created 0700 later) or a directory we own that only we may
/// write.
fn check_state(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(meta) => crate::lastgood::check_dir(&meta).map_err(|reason| path_error("state-dir", dir, reason)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(path_error("state-dir", dir, err.to_string())),
    }
}

/// Some client configuration exists: `--kubeconfig`, in-cluster, `KUBECONFIG` or
/// `~/.kube/config`. Its content is checked when the client is built.
fn check_kubeconfig(flag: Option<&Path>) -> Result<(), Error> {
    if let Some(path) = flag {
        return if path.is_file() { Ok(()) } else { Err(path_error("kubeconfig", path, "no such file")) };
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(());
    }
    let candidates: Vec<PathBuf> = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(paths) => std::env::split_paths(&paths).collect(),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")).into_iter().collect(),
    };
    if candidates.iter().any(|p| p.is_file()) {
        return Ok(());
    }
    let looked = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let why = if looked.is_empty() {
        "not in a pod (KUBERNETES_SERVICE_HOST unset), and neither KUBECONFIG nor HOME is set".to_owned()
    } else {
        format!("not in a pod (KUBERNETES_SERVICE_HOST unset), and no kubeconfig at {looked}")
    };
    Err(Error::NoKubeconfig(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_as_dir_or_state_dir_is_not_a_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("file");
        let err = check_target(&file, false).expect_err("a file");
        assert_eq!(err.to_string(), format!("--dir {}: not a directory", file.display()));
        let err = check_state(&file).expect_err("a file").to_string();
        assert!(err.starts_with("--state-dir") && err.contains("not a directory"), "{err}");
    }

    #[test]
    fn the_parent_of_dir_must_exist_unless_create_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(check_target(&tmp.path().join("config"), false), Ok(()));
        let deep = tmp.path().join("missing/config");
        let err = check_target(&deep, false).expect_err("missing parent").to_string();
        assert!(err.contains("--create-dir"), "{err}");
        assert_eq!(check_target(&deep, true), Ok(()));
        assert!(!tmp.path().join("missing").exists(), "checks create nothing");
    }

    #[test]
    fn a_group_or_world_writable_state_dir_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for (mode, ok) in [(0o700, true), (0o755, true), (0o770, false), (0o777, false), (0o1777, false)] {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
            let result = check_state(tmp.path());
            assert_eq!(result.is_ok(), ok, "{mode:o}: {result:?}");
            if let Err(err) = result {
                assert!(err.to_string().contains("chmod 0700"), "{err}");
            }
        }
    }

    #[test]
    fn a_missing_kubeconfig_flag_names_the_flag() {
        let err = check_kubeconfig(Some(Path::new("/nonexistent/kubeconfig"))).expect_err("missing");
        assert_eq!(err.to_string(), "--kubeconfig /nonexistent/kubeconfig: no such file");
    }
}
