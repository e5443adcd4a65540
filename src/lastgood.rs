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

use crate::snapshot::Snapshot;
use crate::snapshot::manifest::Origin;
use crate::writer::{self, Writer};
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The single-file copy written by earlier versions; removed at open.
const OLD_FILE: &str = "snapshot.v1";
/// The state dir holds config (and possibly Secrets): only the sidecar reads it.
const DIR_MODE: u32 = 0o700;

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
}

/// The last-good copy in one state dir, for one [`Origin`].
#[derive(Debug)]
pub struct Store {
    writer: Writer,
    origin: Origin,
}

// === impl Store ===

impl Store {
    /// Opens (creating, mode 0700) the state dir and removes leftovers of an interrupted
    /// save. Blocking.
    pub fn open(dir: &Path, origin: Origin) -> Result<Self, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| Error::Io { action: format!("create {}", dir.display()), source })?;
        let old = dir.join(OLD_FILE);
        if std::fs::symlink_metadata(&old).is_ok_and(|m| m.is_file()) {
            tracing::info!(path = %old.display(), "removing a last-good copy of an older format");
            let _ = std::fs::remove_file(&old);
        }
        let writer = Writer::open(dir, origin.clone()).map_err(Error::Write)?.without_visible_links();
        Ok(Self { writer, origin })
    }

    /// The state dir.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.writer.path()
    }

    /// The origin a stored copy must have to be loaded.
    #[must_use]
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Path of the link naming the stored copy.
    #[must_use]
    pub fn data_path(&self) -> PathBuf {
        self.dir().join(writer::DATA_LINK)
    }

    /// Persists `snapshot`, replacing the previous copy atomically. Blocking (fsyncs):
    /// call it in `spawn_blocking`.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), Error> {
        self.writer.swap(snapshot).map(drop).map_err(Error::Write)
    }

    /// The stored snapshot, verified. `Ok(None)` when there is none, or when it is
    /// damaged or of another origin (logged as a warning, never trusted). Blocking.
    pub fn load(&self) -> Result<Option<Snapshot>, Error> {
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
}

#[cfg(test)]
#[path = "lastgood/tests.rs"]
mod tests;
