//! One directory's turn on the blocking pool: set the watches it lacks, then read it.

use super::Error;
use super::read;
use crate::source::SourceObject;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use std::path::{Path, PathBuf};

/// One directory to (re-)watch and read on the blocking pool.
pub(super) struct Job {
    /// The slot's index.
    pub(super) index: usize,
    /// The directory.
    pub(super) path: PathBuf,
    /// Its object name.
    pub(super) name: String,
    /// A parent to watch (non-recursively) for the directory's creation.
    pub(super) parent: Option<PathBuf>,
    /// The directory's recursive watch is already set.
    pub(super) watched: bool,
}

/// What a [`Job`] found.
pub(super) struct Finished {
    /// The slot's index.
    pub(super) index: usize,
    /// The directory's recursive watch is set after this job.
    pub(super) watched: bool,
    /// Watches that failed (a missing path is no failure).
    pub(super) watch_errors: Vec<Error>,
    /// The object, `None` when the directory does not exist.
    pub(super) read: Result<Option<SourceObject>, Error>,
}

// === impl Job ===

impl Job {
    /// Sets the watches that are missing, then reads (watch first: no change is missed
    /// between the read and the watch).
    pub(super) fn run(self, watcher: Option<&mut RecommendedWatcher>) -> Finished {
        let mut is_watched = self.watched;
        let mut watch_errors = Vec::new();
        if let Some(watcher) = watcher {
            if let Some(parent) = &self.parent
                && let Err(error) = watch_path(watcher, parent, RecursiveMode::NonRecursive)
            {
                watch_errors.extend(error);
            }
            if !is_watched && self.path.is_dir() {
                match watch_path(watcher, &self.path, RecursiveMode::Recursive) {
                    Ok(()) => is_watched = true,
                    Err(error) => watch_errors.extend(error),
                }
            }
        }
        let read = read::read(&self.path, &self.name);
        if matches!(read, Ok(None)) {
            // Gone: inotify dropped the watch with the directory.
            is_watched = false;
        }
        Finished { index: self.index, watched: is_watched, watch_errors, read }
    }
}

/// Watches `path`; a path that does not exist is no error (the re-check will come back).
fn watch_path(
    watcher: &mut RecommendedWatcher,
    path: &Path,
    mode: RecursiveMode,
) -> Result<(), Option<Error>> {
    watcher.watch(path, mode).map_err(|source| match source.kind {
        notify::ErrorKind::PathNotFound => None,
        notify::ErrorKind::Io(ref e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => Some(Error::Watch { what: path.display().to_string(), source }),
    })
}
