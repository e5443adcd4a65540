//! The atomic swap on the target directory (kubelet's AtomicWriter algorithm, in Rust,
//! on a directory fd): a new timestamped dir is written and fsynced, then the `..data`
//! symlink is renamed over, so readers see the complete old or the complete new snapshot.

mod fsops;
mod links;

use crate::snapshot::Snapshot;
use crate::snapshot::manifest::{MANIFEST_FILE, Manifest};
use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{OFlag, readlinkat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::symlinkat;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

pub use fsops::read_file;

/// The symlink naming the current snapshot dir.
pub const DATA_LINK: &str = "..data";
/// The link created next to `..data` and renamed over it.
pub const DATA_TMP_LINK: &str = "..data_tmp";
/// Temporary name used to replace a visible link atomically.
const LINK_TMP: &str = "..link_tmp";
/// Files written before their fsyncs are issued (bounds open fds during a swap).
const FSYNC_BATCH: usize = 256;

/// A failed filesystem step; the current snapshot is left as it was.
#[derive(Debug, Error)]
pub enum Error {
    /// A system call failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done, with the name involved.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `..data` exists but does not point at a snapshot dir of ours.
    #[error("{DATA_LINK} points at {0:?}, which is not a configsnap snapshot directory")]
    ForeignData(String),
    /// The snapshot on disk does not match its manifest.
    #[error("snapshot {dir} is damaged: {source}")]
    Damaged {
        /// The snapshot dir.
        dir: String,
        /// What does not match.
        #[source]
        source: crate::snapshot::manifest::Error,
    },
}

fn io(action: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Io { action: action.into(), source: errno.into() }
}

fn io_std(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { action: action.into(), source }
}

/// Time spent in each part of a swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapTimings {
    /// Creating and writing files.
    pub write: Duration,
    /// fsync of files and directories.
    pub fsync: Duration,
    /// Visible links, the `..data` rename and the old dir's removal (no fsync: see
    /// [`Writer::commit`]).
    pub rename: Duration,
}

impl SwapTimings {
    /// Total time.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.write + self.fsync + self.rename
    }
}

/// A snapshot dir written and fsynced but not yet swapped in.
#[derive(Debug)]
#[must_use = "a staged snapshot must be committed or discarded"]
pub struct Staged {
    name: String,
    timings: SwapTimings,
}

impl Staged {
    /// Name of the staged dir inside the target dir (`..<timestamp>.<random>`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A snapshot swapped in but not yet durable; see [`Writer::persist`].
#[derive(Debug)]
#[must_use = "a commit must be persisted"]
pub struct Committed {
    /// Time spent so far.
    pub timings: SwapTimings,
    /// The snapshot dir it replaced, removed by [`Writer::persist`].
    previous: Option<String>,
}

/// Writes snapshots into one target directory.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    dir: OwnedFd,
    fsync: bool,
}

// === impl Writer ===

impl Writer {
    /// Opens (creating if needed) the target dir and clears leftovers of a crash:
    /// `..data_tmp`, snapshot dirs that `..data` does not point at, and visible links
    /// of ours that point at nothing.
    pub fn open(path: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(path).map_err(io_std(format!("create {}", path.display())))?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir =
            nix::fcntl::open(path, flags, Mode::empty()).map_err(io(format!("open {}", path.display())))?;
        let writer = Self { path: path.to_owned(), dir, fsync: true };
        writer.clean_leftovers()?;
        Ok(writer)
    }

    /// Turns fsync off (only for tests and benchmarks of the non-durable cost).
    #[must_use]
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    /// The target directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Name of the snapshot dir `..data` points at, if any.
    pub fn current_dir_name(&self) -> Result<Option<String>, Error> {
        match readlinkat(&self.dir, DATA_LINK) {
            Ok(target) => {
                let target = target.to_string_lossy().into_owned();
                if is_snapshot_dir_name(&target) { Ok(Some(target)) } else { Err(Error::ForeignData(target)) }
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(err) => Err(io(format!("read link {DATA_LINK}"))(err)),
        }
    }

    /// Loads and verifies the current snapshot against its manifest.
    pub fn load_current(&self) -> Result<Option<(Snapshot, Manifest)>, Error> {
        let Some(name) = self.current_dir_name()? else {
            return Ok(None);
        };
        let snap_dir = fsops::open_dir(&self.dir, &name).map_err(io(format!("open {name}")))?;
        let damaged = |source| Error::Damaged { dir: name.clone(), source };
        let raw = fsops::read_file(&snap_dir, MANIFEST_FILE)
            .map_err(io_std(format!("read {name}/{MANIFEST_FILE}")))?;
        let manifest = Manifest::parse(&raw).map_err(damaged)?;
        let snapshot =
            manifest.verify(|path| fsops::read_file(&snap_dir, path).map(Bytes::from)).map_err(damaged)?;
        Ok(Some((snapshot, manifest)))
    }

    /// Writes `snapshot` as a new snapshot dir, swaps `..data` to it and makes that durable.
    pub fn swap(&self, snapshot: &Snapshot, manifest: &Manifest) -> Result<SwapTimings, Error> {
        let staged = self.stage(snapshot, manifest)?;
        let committed = self.commit(staged, snapshot)?;
        let timings = committed.timings;
        self.persist(committed)?;
        Ok(timings)
    }

    /// Writes `snapshot` as a new, fsynced snapshot dir that nothing points at yet, so it
    /// can be validated in place before [`Writer::commit`] or [`Writer::discard`].
    pub fn stage(&self, snapshot: &Snapshot, manifest: &Manifest) -> Result<Staged, Error> {
        let mut timings = SwapTimings::default();
        let name = self.create_snapshot_dir(snapshot, manifest, &mut timings)?;
        Ok(Staged { name, timings })
    }

    /// Swaps `..data` to a staged dir and updates the visible links. Readers see the new
    /// snapshot at once; the switch survives a power loss only after [`Writer::persist`],
    /// which also removes the old dir. Until then a crash leaves the old snapshot,
    /// complete (the staged files and dirs were fsynced before the rename, and the old dir
    /// is still there). Keeping that fsync off this path takes one journal commit out of
    /// the update → reload latency.
    pub fn commit(&self, staged: Staged, snapshot: &Snapshot) -> Result<Committed, Error> {
        let Staged { name, mut timings } = staged;
        let previous = self.current_dir_name().ok().flatten().filter(|p| *p != name);
        let started = Instant::now();
        if let Err(err) = self.add_visible_links(snapshot).and_then(|()| self.switch_data_link(&name)) {
            let _ = fsops::remove_tree(&self.dir, &name);
            return Err(err);
        }
        // The swap happened: a failure to tidy up must not make the caller think it did not.
        if let Err(error) = self.remove_stale_links(&snapshot.top_level()) {
            tracing::warn!(%error, "removing stale visible links failed; the next swap retries");
        }
        timings.rename = started.elapsed();
        Ok(Committed { timings, previous })
    }

    /// Makes a commit durable (fsync of the target dir), then removes the snapshot dir it
    /// replaced. A crash before that removal leaves an orphan that [`Writer::open`] clears.
    pub fn persist(&self, committed: Committed) -> Result<(), Error> {
        if self.fsync {
            fsops::sync_dir(&self.dir).map_err(io("fsync the target dir"))?;
        }
        if let Some(previous) = committed.previous {
            fsops::remove_tree(&self.dir, &previous).map_err(io(format!("remove {previous}")))?;
        }
        Ok(())
    }

    /// Removes visible links of ours that `snapshot` (the current one) does not have, e.g.
    /// left dangling by a crash between adding a link and the `..data` rename.
    pub fn tidy_links(&self, snapshot: &Snapshot) -> Result<(), Error> {
        self.remove_stale_links(&snapshot.top_level())
    }

    /// Removes a staged dir that will not be committed.
    pub fn discard(&self, staged: Staged) -> Result<(), Error> {
        fsops::remove_tree(&self.dir, &staged.name).map_err(io(format!("remove {}", staged.name)))
    }

    fn create_snapshot_dir(
        &self,
        snapshot: &Snapshot,
        manifest: &Manifest,
        timings: &mut SwapTimings,
    ) -> Result<String, Error> {
        let (name, root) = self.make_unique_dir()?;
        let result = self.fill_snapshot_dir(&root, snapshot, manifest, timings);
        if let Err(err) = result {
            let _ = fsops::remove_tree(&self.dir, &name);
            return Err(err);
        }
        Ok(name)
    }

    fn make_unique_dir(&self) -> Result<(String, OwnedFd), Error> {
        for _ in 0..16 {
            let name = new_snapshot_dir_name();
            match fsops::make_dir(&self.dir, &name, 0o755) {
                Ok(fd) => return Ok((name, fd)),
                Err(Errno::EEXIST) => continue,
                Err(err) => return Err(io(format!("create {name}"))(err)),
            }
        }
        Err(io("create a unique snapshot dir")(Errno::EEXIST))
    }

    fn fill_snapshot_dir(
        &self,
        root: &OwnedFd,
        snapshot: &Snapshot,
        manifest: &Manifest,
        timings: &mut SwapTimings,
    ) -> Result<(), Error> {
        let mut dirs: HashMap<String, OwnedFd> = HashMap::new();
        let mut unsynced = Vec::new();
        for (path, file) in &snapshot.files {
            let started = Instant::now();
            let (parent_fd, leaf) = match path.rsplit_once('/') {
                Some((parent, leaf)) => (Self::ensure_dir(root, parent, &mut dirs)?, leaf),
                None => (root.as_fd(), path.as_str()),
            };
            let written = fsops::create_file(parent_fd, leaf, &file.content, file.mode)
                .map_err(io_std(format!("write {path}")))?;
            unsynced.push(written);
            timings.write += started.elapsed();
            // Bounded open fds: fsync in batches rather than holding one fd per file.
            if unsynced.len() >= FSYNC_BATCH {
                self.sync_files(&mut unsynced, timings)?;
            }
        }
        let started = Instant::now();
        let written = fsops::create_file(root, MANIFEST_FILE, &manifest.to_json(), 0o644)
            .map_err(io_std(format!("write {MANIFEST_FILE}")))?;
        unsynced.push(written);
        timings.write += started.elapsed();
        self.sync_files(&mut unsynced, timings)?;
        let started = Instant::now();
        if self.fsync {
            for fd in dirs.values() {
                fsops::sync_dir(fd).map_err(io("fsync a snapshot subdir"))?;
            }
            fsops::sync_dir(root).map_err(io("fsync the snapshot dir"))?;
        }
        timings.fsync += started.elapsed();
        Ok(())
    }

    fn sync_files(&self, files: &mut Vec<std::fs::File>, timings: &mut SwapTimings) -> Result<(), Error> {
        let started = Instant::now();
        if self.fsync {
            for file in files.iter() {
                file.sync_all().map_err(io_std("fsync a snapshot file"))?;
            }
        }
        files.clear();
        timings.fsync += started.elapsed();
        Ok(())
    }

    /// Opens (creating) the nested dir `path` under `root`, caching fds by path.
    fn ensure_dir<'a>(
        root: &OwnedFd,
        path: &str,
        dirs: &'a mut HashMap<String, OwnedFd>,
    ) -> Result<std::os::fd::BorrowedFd<'a>, Error> {
        if !dirs.contains_key(path) {
            let fd = match path.rsplit_once('/') {
                Some((parent, leaf)) => {
                    let parent_fd = Self::ensure_dir(root, parent, dirs)?;
                    fsops::make_dir(parent_fd, leaf, 0o755)
                }
                None => fsops::make_dir(root, path, 0o755),
            }
            .map_err(io(format!("create dir {path}")))?;
            dirs.insert(path.to_owned(), fd);
        }
        Ok(dirs[path].as_fd())
    }

    fn switch_data_link(&self, name: &str) -> Result<(), Error> {
        fsops::remove_entry(&self.dir, DATA_TMP_LINK).map_err(io(format!("remove {DATA_TMP_LINK}")))?;
        symlinkat(name, &self.dir, DATA_TMP_LINK).map_err(io(format!("link {DATA_TMP_LINK}")))?;
        renameat(&self.dir, DATA_TMP_LINK, &self.dir, DATA_LINK)
            .map_err(io(format!("rename {DATA_TMP_LINK} over {DATA_LINK}")))?;
        Ok(())
    }
}

/// `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN`: UTC time, then nine random digits.
fn new_snapshot_dir_name() -> String {
    let now = chrono::Utc::now();
    let random: u32 = rand::random_range(0..1_000_000_000);
    format!("..{}.{random:09}", now.format("%Y_%m_%d_%H_%M_%S"))
}

/// True for names made by [`new_snapshot_dir_name`] (and only those: never delete
/// anything configsnap did not create).
#[must_use]
pub fn is_snapshot_dir_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let shape = "DDDD_DD_DD_DD_DD_DD.DDDDDDDDD";
    rest.len() == shape.len()
        && rest.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'D' => c.is_ascii_digit(),
            other => c == other,
        })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
