//! The last-good store (`--state-dir`): the last snapshot that was swapped in and
//! reloaded, persisted so a restart without the API can restore it.
//!
//! The state dir holds the same content-addressed tree as the target dir (see
//! [`crate::writer`]), without visible links: a save writes only the objects that
//! changed since the previous save, swaps `..data` with one rename, and removes what the
//! old copy alone used once the switch is durable. So a crash leaves the old copy or the
//! new one, never a mix; saving costs what changed, and needs room for the changed
//! objects only. Loading reads every file back and checks it against the manifests and
//! the content-addressed names, so a truncated or altered copy is never trusted. The
//! dir is 0700 (it may hold Secrets, in plain text, with their own 0600 modes).
//!
//! # Trust
//!
//! The copy is trusted only as far as the dir is: a state dir (or its `..objects`,
//! `..tree` or root dirs) that another user owns, or that group or others may write,
//! could hold a copy planted by someone else. [`check_dir`] refuses such a dir at start
//! (exit 64, see [`crate::cli::preflight`]); [`Store::load`] checks again before
//! restoring and ignores the copy with a warning. Anything else found there (leftovers,
//! junk) is tidied or moved aside, never a reason to fail start-up.

use crate::snapshot::Snapshot;
use crate::snapshot::manifest::Origin;
use crate::writer::{self, Writer};
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use thiserror::Error;

/// The single-file copy written by earlier versions; removed at open.
const OLD_FILE: &str = "snapshot.v1";
/// The state dir holds config (and possibly Secrets): only the sidecar reads it.
const DIR_MODE: u32 = 0o700;
/// Temporary files of earlier versions' saves; removed at open.
const OLD_TEMP_PREFIX: &str = ".tmp-";

/// A failed save or load.
#[derive(Debug, Error)]
pub enum Error {
    /// The state dir could not be created or opened.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done, with the path involved.
        action: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing or reading the copy failed.
    #[error("failed to store the last-good snapshot: {0}")]
    Write(#[source] writer::Error),
    /// The state dir cannot be trusted (owner, mode) or is not a directory.
    #[error("--state-dir {path}: {reason}")]
    Unsafe {
        /// The state dir.
        path: String,
        /// What is wrong, and what to do.
        reason: String,
    },
}

/// The last-good copy in one state dir, for one [`Origin`].
#[derive(Debug)]
pub(crate) struct Store {
    writer: Writer,
    origin: Origin,
}

// === impl Store ===

impl Store {
    /// Opens (creating, mode 0700) the state dir and removes leftovers of an interrupted
    /// save. Blocking.
    /// Refuses (with [`Error::Unsafe`]) a dir that another user owns or that group or
    /// others may write; tightens our own dir to 0700.
    pub(crate) fn open(dir: &Path, origin: Origin) -> Result<Self, Error> {
        let unsafe_dir = |reason: String| Error::Unsafe { path: dir.display().to_string(), reason };
        match std::fs::metadata(dir) {
            Ok(meta) => check_dir(&meta).map_err(unsafe_dir)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| Error::Io { action: format!("create {}", dir.display()), source })?,
            Err(source) => return Err(Error::Io { action: format!("stat {}", dir.display()), source }),
        }
        let meta = std::fs::metadata(dir)
            .map_err(|source| Error::Io { action: format!("stat {}", dir.display()), source })?;
        check_dir(&meta).map_err(unsafe_dir)?;
        if meta.permissions().mode() & 0o777 != DIR_MODE {
            tracing::info!(dir = %dir.display(), "making the state dir private (0700): it may hold Secrets");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|source| Error::Io { action: format!("chmod {}", dir.display()), source })?;
        }
        remove_old_formats(dir);
        let writer = Writer::open(dir, origin.clone()).map_err(Error::Write)?.without_visible_links();
        Ok(Self { writer, origin })
    }

    /// The state dir.
    #[must_use]
    pub(crate) fn dir(&self) -> &Path {
        self.writer.path()
    }

    /// Persists `snapshot`, replacing the previous copy atomically. Blocking (fsyncs):
    /// call it in `spawn_blocking`.
    pub(crate) fn save(&self, snapshot: &Snapshot) -> Result<(), Error> {
        self.writer.swap(snapshot).map(drop).map_err(Error::Write)
    }

    /// The stored snapshot, verified. `Ok(None)` when there is none, or when it is
    /// damaged or of another origin (logged as a warning, never trusted). Blocking.
    pub(crate) fn load(&self) -> Result<Option<Snapshot>, Error> {
        if let Err(reason) = self.check_ownership() {
            tracing::warn!(dir = %self.dir().display(), reason, "ignoring the last-good copy: its dir is not trusted");
            return Ok(None);
        }
        match self.writer.load_current() {
            Ok(None) => Ok(None),
            Ok(Some((snapshot, origin))) => {
                if origin == self.origin {
                    Ok(Some(snapshot))
                } else {
                    tracing::warn!(
                        dir = %self.dir().display(),
                        "ignoring a last-good copy of another origin (namespace, selector or layout)"
                    );
                    Ok(None)
                }
            }
            Err(err @ writer::Error::Io { .. }) => Err(Error::Write(err)),
            Err(err) => {
                tracing::warn!(dir = %self.dir().display(), error = %err, "ignoring a damaged last-good copy");
                Ok(None)
            }
        }
    }

    /// The state dir, and the dirs of the copy in it, are ours and writable by us only.
    fn check_ownership(&self) -> Result<(), String> {
        let root = self.writer.current_dir_name().ok().flatten();
        let names = [Some("."), Some(writer::OBJECTS_DIR), Some(writer::TREE_DIR), root.as_deref()];
        for name in names.into_iter().flatten() {
            let path = self.dir().join(name);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            check_dir(&meta).map_err(|reason| format!("{}: {reason}", path.display()))?;
        }
        Ok(())
    }
}

/// Why a state dir cannot be trusted: not a directory, owned by another user, or writable
/// by group or others. The reason says what to do.
pub(crate) fn check_dir(meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_dir() {
        return Err("not a directory; give --state-dir a directory path".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "owned by uid {}, not by configsnap's uid {me}; the last-good copy could be forged: \
             chown it, or point --state-dir at a subdirectory for configsnap to create \
             (an emptyDir's mount point is root's and 0777: use e.g. /state/last-good)",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "mode {mode:04o} lets group or others write it; the last-good copy could be forged: \
             chmod 0700 it, or point --state-dir at a subdirectory for configsnap to create \
             (an emptyDir's mount point is 0777: use e.g. /state/last-good)"
        ));
    }
    Ok(())
}

/// Removes what earlier versions left: the single-file copy and `.tmp-*` temporaries.
/// Best effort: junk here never stops start-up.
fn remove_old_formats(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != OLD_FILE && !name.starts_with(OLD_TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        tracing::info!(name, "removing a leftover of an older version from the state dir");
        // `file_type` does not follow links, and `remove_dir_all` never follows one.
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(error) = removed {
            tracing::warn!(name, %error, "could not remove a leftover from the state dir; ignoring it");
        }
    }
}

#[cfg(test)]
#[path = "lastgood/tests.rs"]
mod tests;
