//! Keeps every visible link pointing at its entry in the current snapshot: another
//! process, a mistake or an attacker sharing the volume may replace `web` with a link to
//! somewhere else, a directory or a file, and every later swap would leave the app
//! reading that. An inotify watch on the target dir names each top-level entry anyone
//! creates, removes or renames, so a check costs what was touched, not the size of the
//! namespace; all entries are checked at start, when the watch overflowed, and on every
//! swap when no watch could be had.
//!
//! A wrong entry is replaced atomically and never followed: a link by a new link renamed
//! over it; a directory or a file (not ours to delete) by exchanging it with a new link
//! (`renameat2(RENAME_EXCHANGE)`, so the name never goes missing), then moving it aside
//! under `..aside-<hex>`.

use super::{ASIDE_PREFIX, Error, LINK_TMP, Writer, fsops, io, visible_link_target};
use crate::snapshot::Snapshot;
use nix::errno::Errno;
use nix::fcntl::{RenameFlags, renameat, renameat2};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// What was at a visible entry's name instead of the link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A symlink to somewhere else (its target).
    OtherLink(String),
    /// Nothing.
    Missing,
    /// A directory, moved aside to this name.
    Directory(String),
    /// A file (or a fifo, a socket…), moved aside to this name.
    File(String),
}

impl Found {
    /// Short label for metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::OtherLink(_) => "link",
            Self::Missing => "missing",
            Self::Directory(_) => "directory",
            Self::File(_) => "file",
        }
    }
}

/// A visible link found wrong and put right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The entry (a top-level name in the target dir).
    pub entry: String,
    /// What was there.
    pub found: Found,
}

/// The inotify watch on the target dir's own entries.
#[derive(Debug)]
pub(super) struct LinkWatch {
    inotify: Option<Inotify>,
}

impl LinkWatch {
    /// Watches `dir` (by its fd, so a path swapped since cannot redirect it); without a
    /// watch (no inotify instance left) every entry is checked at every swap.
    pub(super) fn open(dir: &OwnedFd) -> Self {
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ONLYDIR;
        let watched = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).and_then(|inotify| {
            inotify.add_watch(format!("/proc/self/fd/{}", dir.as_raw_fd()).as_str(), flags)?;
            Ok(inotify)
        });
        match watched {
            Ok(inotify) => Self { inotify: Some(inotify) },
            Err(error) => {
                tracing::warn!(%error, "cannot watch the target dir (inotify); every visible link is checked at every swap instead");
                Self { inotify: None }
            }
        }
    }

    /// No watch (for a writer without visible links).
    pub(super) fn none() -> Self {
        Self { inotify: None }
    }

    /// The watch's fd, to wait on for a change between swaps.
    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.inotify.as_ref().map(AsFd::as_fd)
    }

    /// Top-level names created, removed or renamed since the last call; `None` when that
    /// is not known (no watch, or the queue overflowed): check them all.
    pub(super) fn touched(&self) -> Option<BTreeSet<String>> {
        let inotify = self.inotify.as_ref()?;
        let mut names = BTreeSet::new();
        loop {
            match inotify.read_events() {
                Ok(events) => {
                    for event in events {
                        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            return None;
                        }
                        if let Some(name) = event.name.and_then(|n| n.into_string().ok())
                            && !name.starts_with("..")
                        {
                            names.insert(name);
                        }
                    }
                }
                Err(Errno::EAGAIN) => return Some(names),
                Err(_) => return None,
            }
        }
    }
}

impl Writer {
    /// Checks the visible links of `snapshot` (all of them, or those touched since the
    /// last check) and repairs the wrong ones; a failure to repair one is logged and
    /// retried at the next check.
    pub(super) fn check_visible_links(&self, snapshot: &Snapshot, all: bool) -> Vec<Repair> {
        if !self.visible_links {
            return Vec::new();
        }
        let touched = self.links.touched();
        let names: Vec<&str> = match touched.as_ref().filter(|_| !all) {
            Some(touched) => touched.iter().map(String::as_str).filter(|n| snapshot.has_top(n)).collect(),
            None => snapshot.top_level().collect(),
        };
        let mut repairs = Vec::new();
        for entry in names {
            match self.repair_link(entry) {
                Ok(Some(found)) => repairs.push(Repair { entry: entry.to_owned(), found }),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, entry = %crate::keypath::Escaped(entry), "could not repair a visible link; retried at the next swap");
                }
            }
        }
        repairs
    }

    /// Puts the link of `entry` right if it is not: what was there, or `None`.
    pub(super) fn repair_link(&self, entry: &str) -> Result<Option<Found>, Error> {
        let target = visible_link_target(entry);
        let found = match fsops::kind_of(&self.dir, entry).map_err(io(format!("stat {entry}")))? {
            fsops::Kind::Symlink => match fsops::read_link(&self.dir, entry) {
                Some(now) if now == target => return Ok(None),
                now => Found::OtherLink(now.unwrap_or_default()),
            },
            fsops::Kind::Missing => Found::Missing,
            kind @ (fsops::Kind::Directory | fsops::Kind::Other) => {
                let aside = self.exchange_for_link(entry, &target)?;
                return Ok(Some(if kind == fsops::Kind::Directory {
                    Found::Directory(aside)
                } else {
                    Found::File(aside)
                }));
            }
        };
        self.clear_reserved(LINK_TMP, true)?;
        fsops::symlink(&target, &self.dir, LINK_TMP).map_err(io(format!("link {LINK_TMP}")))?;
        renameat(&self.dir, LINK_TMP, &self.dir, entry).map_err(io(format!("rename over {entry}")))?;
        Ok(Some(found))
    }

    /// Swaps the foreign entry at `entry` with a new link in one step, then moves it
    /// aside; returns its new name.
    fn exchange_for_link(&self, entry: &str, target: &str) -> Result<String, Error> {
        self.clear_reserved(LINK_TMP, true)?;
        fsops::symlink(target, &self.dir, LINK_TMP).map_err(io(format!("link {LINK_TMP}")))?;
        renameat2(&self.dir, LINK_TMP, &self.dir, entry, RenameFlags::RENAME_EXCHANGE)
            .map_err(io(format!("exchange {entry} with its link")))?;
        let aside = format!("{ASIDE_PREFIX}{:016x}", rand::random::<u64>());
        renameat(&self.dir, LINK_TMP, &self.dir, aside.as_str())
            .map_err(io(format!("move {entry} aside")))?;
        Ok(aside)
    }
}
