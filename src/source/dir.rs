//! Mounted-directory source (`--from-dir`): each directory (a kubelet `ConfigMap` volume or a
//! plain directory) is one object, re-read when inotify reports a change under it.
//!
//! Events only mark directories as dirty and wake the task, so a burst of events costs one
//! re-read per directory. A directory that does not exist yet is an absent object; its
//! parent is watched for its creation, and only while some directory is missing (or a
//! watch could not be set) is anything re-checked on a timer.

use super::{Input, Inventory, Notifier, SharedInventory};
use crate::source::HealthReporter;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod job;
mod read;
mod task;

/// Failure to watch or read a directory; the source reports it and keeps going.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// A file or directory could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The path given as a directory is something else.
    #[error("failed to read {}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// `..data` points somewhere other than a sibling timestamped directory.
    #[error("failed to follow {}: it points outside its directory, to {}", path.display(), target.display())]
    DataLink {
        /// The `..data` link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// The tree nests deeper than any `ConfigMap` key would (a mount loop?).
    #[error("failed to read {}: nested too deep", path.display())]
    TooDeep {
        /// The directory past the limit.
        path: PathBuf,
    },
    /// Every attempt raced a concurrent change.
    #[error("failed to read a stable state of {}: it changed during every attempt", path.display())]
    Unstable {
        /// The directory.
        path: PathBuf,
    },
    /// The inotify watcher could not be created, or a path could not be watched.
    #[error("failed to watch {what}: {source}")]
    Watch {
        /// The path, or "directories" for the watcher itself.
        what: String,
        /// Why it failed.
        #[source]
        source: notify::Error,
    },
    /// inotify reported an error (queue overflow, watch limit reached).
    #[error("failed to receive file events: {0}")]
    Events(#[source] notify::Error),
    /// The blocking read task panicked.
    #[error("failed to run the directory read: {0}")]
    Join(#[source] tokio::task::JoinError),
}

/// The objects of every watched directory that exists, read by the pipeline.
#[derive(Default)]
struct DirInventory {
    objects: ArcSwap<Vec<Input>>,
}

impl Inventory for DirInventory {
    fn current(&self) -> Vec<Input> {
        self.objects.load().as_ref().clone()
    }
}

/// Starts watching the directories: returns the inventory and the task to run.
///
/// Paths are made absolute against the current directory; each directory becomes one
/// object named by [`object_name`]. The task reports `source_ready` once, after the first
/// read of every directory (missing ones included), and runs until `cancel`.
pub(crate) fn watch(
    dirs: Vec<PathBuf>,
    notifier: Notifier,
    reporter: HealthReporter,
    cancel: CancellationToken,
) -> (SharedInventory, impl Future<Output = ()> + Send + 'static) {
    let inventory = Arc::new(DirInventory::default());
    let task = task::Task::new(dirs, inventory.clone(), notifier, reporter);
    let span = tracing::info_span!("dir_source");
    (inventory, task.run(cancel).instrument(span))
}

#[cfg(test)]
mod tests;
