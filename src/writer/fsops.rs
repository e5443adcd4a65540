//! Directory-fd-relative file operations that never follow a symlink: every path given
//! here is resolved one element at a time with `O_NOFOLLOW`, from a directory fd.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use prometheus_client::metrics::counter::Counter;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::LazyLock;

/// Every fsync, fdatasync and syncfs configsnap issues (`configsnap_sync_calls_total`).
static SYNC_CALLS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The process-wide counter of sync calls, for the metrics registry.
#[must_use]
pub(crate) fn sync_calls() -> Counter {
    SYNC_CALLS.clone()
}

/// Flags for opening a directory without following a link.
const DIR_FLAGS: OFlag =
    OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// What is at a name inside a directory (without following links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing.
    Missing,
    /// A symbolic link.
    Symlink,
    /// A directory.
    Directory,
    /// Anything else (regular file, fifo, …).
    Other,
}

/// Looks at `name` in `dir` without following it.
pub(crate) fn kind_of(dir: impl AsFd, name: &str) -> Result<Kind, Errno> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => {
            let fmt = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
            Ok(if fmt == SFlag::S_IFLNK {
                Kind::Symlink
            } else if fmt == SFlag::S_IFDIR {
                Kind::Directory
            } else {
                Kind::Other
            })
        }
        Err(Errno::ENOENT) => Ok(Kind::Missing),
        Err(err) => Err(err),
    }
}

/// Opens the directory `name` inside `dir`, refusing a symlink.
pub(crate) fn open_dir(dir: impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// Creates directory `name` in `dir` with exactly `mode`, and opens it.
pub(crate) fn make_dir(dir: impl AsFd + Copy, name: &str, mode: u32) -> Result<OwnedFd, Errno> {
    mkdirat(dir, name, Mode::from_bits_truncate(mode))?;
    let fd = open_dir(dir, name)?;
    fchmod(&fd, Mode::from_bits_truncate(mode))?;
    Ok(fd)
}

/// Creates a new file `name` in `dir` (`O_EXCL|O_NOFOLLOW`), writes `content` and sets
/// exactly `mode` regardless of umask. The caller fsyncs the returned file.
pub(crate) fn create_file(dir: impl AsFd, name: &str, content: &[u8], mode: u32) -> std::io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(mode & 0o777))?;
    fchmod(&fd, Mode::from_bits_truncate(mode & 0o777))?;
    let mut file = File::from(fd);
    file.write_all(content)?;
    Ok(file)
}

/// Reads the regular file at relative `path` below `dir`, refusing links at every step.
pub(crate) fn read_file(dir: impl AsFd, path: &str) -> std::io::Result<Vec<u8>> {
    let (parent, leaf) = match path.rsplit_once('/') {
        Some((parent, leaf)) => (Some(parent), leaf),
        None => (None, path),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match parent {
        Some(parent) => openat(&walk(dir, parent)?, leaf, flags, Mode::empty())?,
        None => openat(dir, leaf, flags, Mode::empty())?,
    };
    let mut file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!("{path} is not a regular file")));
    }
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Opens the directory at relative `path` below `dir`, one element at a time.
pub(crate) fn walk(dir: impl AsFd, path: &str) -> Result<OwnedFd, Errno> {
    let mut elements = path.split('/');
    let first = elements.next().unwrap_or(".");
    let mut current = open_dir(dir, first)?;
    for element in elements {
        current = open_dir(&current, element)?;
    }
    Ok(current)
}

/// Removes `name` from `dir`: a directory recursively, anything else (links included)
/// with `unlink`, never following a link. A missing entry is not an error. The entry
/// types readdir reports spare a stat per entry (a node of the snapshot tree is dozens
/// of links, removed at every swap).
pub(crate) fn remove_tree(dir: impl AsFd + Copy, name: &str) -> Result<(), Errno> {
    let fd = match open_dir(dir, name) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        // A link (O_NOFOLLOW) or anything else that is not a directory.
        Err(Errno::ELOOP | Errno::ENOTDIR) => return remove_entry(dir, name),
        Err(err) => return Err(err),
    };
    for (child, is_dir) in list_typed(&fd)? {
        match is_dir {
            Some(false) => remove_entry(&fd, &child)?,
            Some(true) | None => remove_tree(&fd, &child)?,
        }
    }
    ignore_missing(unlinkat(dir, name, UnlinkatFlags::RemoveDir))
}

/// Names in a directory with whether each is a directory, as readdir says (`None`
/// when the filesystem does not say).
fn list_typed(dir: impl AsFd) -> Result<Vec<(String, Option<bool>)>, Errno> {
    let mut handle = Dir::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    let mut names = Vec::new();
    for entry in handle.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            let is_dir = entry.file_type().map(|t| t == nix::dir::Type::Directory);
            names.push((name, is_dir));
        }
    }
    Ok(names)
}

/// Unlinks a non-directory entry; missing is fine.
pub(crate) fn remove_entry(dir: impl AsFd, name: &str) -> Result<(), Errno> {
    ignore_missing(unlinkat(dir, name, UnlinkatFlags::NoRemoveDir))
}

fn ignore_missing(result: Result<(), Errno>) -> Result<(), Errno> {
    match result {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

/// Names in a directory, without `.` and `..`.
pub(crate) fn list(dir: impl AsFd) -> Result<Vec<String>, Errno> {
    Ok(list_typed(dir)?.into_iter().map(|(name, _)| name).collect())
}

/// fsyncs a directory, making renames and creations in it durable.
pub(crate) fn sync_dir(dir: impl AsFd) -> Result<(), Errno> {
    SYNC_CALLS.inc();
    #[cfg(test)]
    syncs_on_this_thread::count(|s| s.dirs += 1);
    nix::unistd::fsync(dir)
}

/// fdatasyncs a file: its bytes and what is needed to read them back.
pub(crate) fn sync_data(file: &File) -> std::io::Result<()> {
    SYNC_CALLS.inc();
    #[cfg(test)]
    syncs_on_this_thread::count(|s| s.files += 1);
    file.sync_data()
}

/// Flushes the whole filesystem holding `dir` (one call for a large batch of new files).
pub(crate) fn sync_filesystem(dir: impl AsFd) -> Result<(), Errno> {
    SYNC_CALLS.inc();
    #[cfg(test)]
    syncs_on_this_thread::count(|s| s.filesystems += 1);
    nix::unistd::syncfs(dir)
}

/// Creates the symlink `name -> target` in `dir`.
pub(crate) fn symlink(target: &str, dir: impl AsFd, name: &str) -> Result<(), Errno> {
    nix::unistd::symlinkat(target, dir, name)
}

/// Adds a second name `to_name` in `to_dir` for the entry `name` in `dir` (a hard link;
/// a symlink there is linked itself, not followed).
pub(crate) fn hard_link(dir: impl AsFd, name: &str, to_dir: impl AsFd, to_name: &str) -> Result<(), Errno> {
    nix::unistd::linkat(dir, name, to_dir, to_name, AtFlags::empty())
}

/// The target of the symlink `name` in `dir`, if it is one.
#[must_use]
pub(crate) fn read_link(dir: impl AsFd, name: &str) -> Option<String> {
    nix::fcntl::readlinkat(dir, name).ok().map(|t| t.to_string_lossy().into_owned())
}

/// Opens the directory `name` in `dir`, creating it (with `mode`) when missing. A symlink
/// or a file planted under that name is removed first: the name is reserved for us.
pub(crate) fn open_or_make_dir(dir: impl AsFd + Copy, name: &str, mode: u32) -> Result<OwnedFd, Errno> {
    match kind_of(dir, name)? {
        Kind::Directory => open_dir(dir, name),
        Kind::Missing => make_dir(dir, name, mode),
        Kind::Symlink | Kind::Other => {
            tracing::warn!(name, "removing an entry configsnap did not create under a name it reserves");
            remove_entry(dir, name)?;
            make_dir(dir, name, mode)
        }
    }
}

/// Sync calls made by the current thread, by kind: a unit test counts one stage's syncs
/// exactly (the process-wide counter is shared by the tests running in parallel).
#[cfg(test)]
pub(crate) mod syncs_on_this_thread {
    use std::cell::Cell;

    /// How many syncs of each kind.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub(crate) struct Syncs {
        /// fdatasync of a file.
        pub(crate) files: u32,
        /// fsync of a directory.
        pub(crate) dirs: u32,
        /// syncfs of the filesystem.
        pub(crate) filesystems: u32,
    }

    thread_local! {
        static SYNCS: Cell<Syncs> = Cell::new(Syncs::default());
    }

    /// Counts one sync on this thread.
    pub(super) fn count(add: impl FnOnce(&mut Syncs)) {
        SYNCS.with(|cell| {
            let mut syncs = cell.get();
            add(&mut syncs);
            cell.set(syncs);
        });
    }

    /// The syncs counted on this thread since the last call, and a fresh count.
    pub(crate) fn take() -> Syncs {
        SYNCS.with(|cell| cell.replace(Syncs::default()))
    }
}
