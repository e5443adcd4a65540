//! The atomic swap on the target directory: kubelet's AtomicWriter idea (a new
//! timestamped dir, then one `rename` of the `..data` symlink) over a persistent,
//! content-addressed tree, so a swap writes what changed and nothing else.
//!
//! # On disk
//!
//! ```text
//! ..data -> ..2026_11_22_11_45_12.123456789     the current root, swapped by one rename
//! ..2026_11_22_11_45_12.123456789/              root: ≤ 16 links + the root manifest
//!     ..manifest.json
//!     3 -> ../..tree/<mid id>
//! ..tree/<mid id>/a -> ../<leaf id>             middle node: ≤ 16 links
//! ..tree/<leaf id>/web -> ../../..objects/<id>  leaf: the entries hashing to (3, a)
//! ..tree/<leaf id>/rules -> ../<merged id>       an entry several objects share
//! ..tree/<merged id>/a.conf -> ../../..objects/<id>/a.conf   one link per name in it
//! ..objects/<id>/nginx.conf                     one object's files, and its manifest
//! web -> ..data/3/a/web                         visible link, fixed for the entry's life
//! ```
//!
//! Object dirs and tree nodes are named by their content digest (see
//! [`crate::snapshot::tree`]) and never change once written, so consecutive snapshots
//! share every node that did not change: a one-object update writes that object's dir,
//! one leaf, one middle node and a root (about 35 entries at 5,000 objects), whatever
//! the size of the namespace. Open fds are O(1): one node is open at a time. A directory
//! that several objects share (`configsnap.io/target-dir`) is a merged node of links
//! into their object dirs: updating one member writes that object, the merged node's
//! links (shared with the old node's by hard link where unchanged) and the same path.
//!
//! A new node's links that the node it replaces already has (same name, same target)
//! are hard links to that node's symlink inodes, not new symlinks: a swap then allocates
//! and frees only the inodes along the changed path (about a dozen), not one per link of
//! every node it copies (about 30 at 100 objects). On ext4 without a journal each inode
//! allocation scans past the inodes freed in the last minute, so the copies made a swap
//! at 100 objects cost 2.3× one at 1 in CPU; sharing brought that to the cost of the
//! path (and saves a third of the link work on a journaled ext4 too). A symlink
//! inode never changes, so sharing it between generations shares nothing mutable; a
//! donor link is shared only when `readlink` shows exactly the target a new link would
//! get. Under [`Durability::Strict`] links are never shared: the donor's link count
//! changes too, which only an ordered journal commits together with the new entry.
//!
//! # Why this choice
//!
//! Hard-linking unchanged files into a fresh snapshot dir keeps each swap O(files), and
//! a flat dir of per-object links keeps it O(objects) (measured: 1,000 entries cost 10×
//! one). The fixed two-level trie bounds every node, and its positions depend on entry
//! names only, so visible links never move and need touching only when an entry appears
//! or goes.
//!
//! # Crash analysis
//!
//! - A process crash (kill -9) at any instant: `..data` names a root whose every node was
//!   complete before the root was created (children are written first), and nodes are
//!   immutable, so a reader resolving `..data` sees one whole generation. A node is
//!   removed only after a swap made its generation unreachable *and* that switch was made
//!   durable ([`Writer::persist`]). Whatever a crash leaves unreferenced (a half-written
//!   node, a root never swapped in, garbage not yet removed) is found by the sweep at
//!   start ([`Writer::load_current`]) and after any swap that could not tidy up.
//! - A power loss: the rename of `..data` must not become durable before what it names.
//!   File contents are always fdatasynced before the rename (one `syncfs` instead when a
//!   swap creates more than [`SYNC_BATCH`] files, as the first one does). Directory
//!   entries (mkdir, symlink, link, rename) are *metadata*: on ext4, xfs and tmpfs they reach
//!   the disk in the order they were made (one ordered journal), so a durable rename
//!   implies durable nodes and no directory fsync is needed before it
//!   ([`Durability::Ordered`]). ext2/3/4 without a journal (seen in sysfs) orders
//!   nothing, and there an fsync of a directory does not even write its links' inodes:
//!   one `syncfs` before the rename makes everything durable ([`Durability::Flush`]).
//!   On any other filesystem every new directory and its
//!   parent are fsynced before the rename ([`Durability::Strict`]). After the reload the
//!   target dir is fsynced once, and only then is the previous generation removed. A
//!   one-object update thus costs: one fdatasync per changed file, one for the object's
//!   manifest, one for the root manifest, and the target-dir fsync.

mod build;
mod error;
mod fsops;
mod garbage;
mod guard;
mod links;
mod names;
mod read;
mod retire;
mod view;

use crate::snapshot::Snapshot;
use crate::snapshot::manifest::Origin;
use crate::snapshot::object::Digest32;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::Mode;
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

pub use error::Error;
use error::{io, io_std};
pub(crate) use fsops::sync_calls;
pub use guard::{Found, Repair};
pub(crate) use names::is_snapshot_dir_name;
pub use names::visible_link_target;
use names::{current_dir_name, detect_durability, new_snapshot_dir_name};
pub use read::read_current;

/// The symlink naming the current snapshot root.
pub(crate) const DATA_LINK: &str = "..data";
/// The link created next to `..data` and renamed over it.
pub(crate) const DATA_TMP_LINK: &str = "..data_tmp";
/// Content-addressed object dirs.
pub(crate) const OBJECTS_DIR: &str = "..objects";
/// Content-addressed tree nodes (leaves and middle nodes).
pub(crate) const TREE_DIR: &str = "..tree";
/// Temporary name used to replace a visible link atomically.
const LINK_TMP: &str = "..link_tmp";
/// Prefix of the name a foreign entry at a reserved name is moved to (`..aside-data-<hex>`).
pub(crate) const ASIDE_PREFIX: &str = "..aside-";
/// Prefix of the view a validation command reads (real dirs, files hard-linked).
const VIEW_PREFIX: &str = "..staged-";
/// Prefix of the dir made and removed to learn whether the target dir takes writes.
const PROBE_PREFIX: &str = "..probe-";
/// Up to this many new files are fdatasynced one by one; more take one `syncfs`.
pub(crate) const SYNC_BATCH: usize = 64;

/// How directory entries are made durable before `..data` is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// The filesystem commits metadata in order (ext4, xfs, tmpfs): file data is synced,
    /// directory entries ride on the ordered journal.
    Ordered,
    /// Every new directory and its parent are fsynced too.
    Strict,
    /// One `syncfs` before the rename covers every new file, directory and link: for
    /// ext2/3/4 running without a journal, where metadata reaches the disk in no
    /// particular order and a directory's fsync does not write the inodes of the links in
    /// it.
    Flush,
    /// Nothing is synced (tests and benchmarks of the non-durable cost only).
    Off,
}

/// Time spent in each part of a swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapTimings {
    /// Creating and writing files, links and dirs.
    pub write: Duration,
    /// fdatasync/fsync/syncfs before the rename.
    pub fsync: Duration,
    /// Visible links and the `..data` rename (the durable fsync comes later: see
    /// [`Writer::persist`]).
    pub rename: Duration,
}

impl SwapTimings {
    /// Total time.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.write + self.fsync + self.rename
    }
}

/// A snapshot root written and synced but not yet swapped in.
#[derive(Debug)]
#[must_use = "a staged snapshot must be committed or discarded"]
pub(crate) struct Staged {
    root: String,
    snapshot: Snapshot,
    /// Nodes this stage created (removed again if it is discarded).
    created: Vec<Node>,
    timings: SwapTimings,
}

impl Staged {
    #[cfg(test)]
    /// Name of the staged root inside the target dir (`..<timestamp>.<random>`).
    #[must_use]
    pub(crate) fn name(&self) -> &str {
        &self.root
    }
}

/// A snapshot swapped in but not yet durable; see [`Writer::persist`].
#[derive(Debug)]
#[must_use = "a commit must be persisted"]
pub(crate) struct Committed {
    /// Time spent so far.
    pub(crate) timings: SwapTimings,
    /// The root it replaced, removed by [`Writer::persist`] (after the grace).
    previous: Option<String>,
    /// The snapshot it replaced.
    replaced: Option<Snapshot>,
    /// Nodes only the replaced generation used.
    garbage: Vec<garbage::Garbage>,
}

/// A content-addressed dir: an object's or a tree node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Object(Digest32),
    Tree(Digest32),
}

/// What the writer knows of the target dir.
#[derive(Debug, Default)]
struct State {
    /// The snapshot `..data` points at, and its root dir.
    current: Option<(Snapshot, String)>,
    /// Complete nodes on disk.
    present: HashSet<Node>,
    /// Something could not be tidied: sweep after the next durable swap.
    dirty: bool,
    /// Visible links put right since [`Writer::take_repairs`] was last called.
    repairs: Vec<Repair>,
    /// The view a validation command reads, when one was made.
    view: Option<view::View>,
    /// Replaced generations still readable, oldest first.
    retired: std::collections::VecDeque<retire::Retired>,
}

/// Writes snapshots into one target directory.
#[derive(Debug)]
pub(crate) struct Writer {
    path: PathBuf,
    dir: OwnedFd,
    objects: OwnedFd,
    /// `<path>/..objects`, where released objects read their bytes back from.
    objects_path: std::sync::Arc<Path>,
    tree: OwnedFd,
    origin: Origin,
    durability: Durability,
    visible_links: bool,
    /// How long a replaced generation stays readable.
    gc_grace: Duration,
    /// Names of the target dir touched by anyone, to check their links.
    links: guard::LinkWatch,
    state: Mutex<State>,
}

// === impl Writer ===

impl Writer {
    /// Opens (creating if needed) the target dir for snapshots of `origin` and removes
    /// leftovers of an interrupted swap that need no knowledge of the current snapshot.
    pub(crate) fn open(path: &Path, origin: Origin) -> Result<Self, Error> {
        std::fs::create_dir_all(path).map_err(io_std(format!("create {}", path.display())))?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir =
            nix::fcntl::open(path, flags, Mode::empty()).map_err(io(format!("open {}", path.display())))?;
        let objects =
            fsops::open_or_make_dir(&dir, OBJECTS_DIR, 0o755).map_err(io(format!("open {OBJECTS_DIR}")))?;
        let tree = fsops::open_or_make_dir(&dir, TREE_DIR, 0o755).map_err(io(format!("open {TREE_DIR}")))?;
        let durability = detect_durability(&dir);
        let links = guard::LinkWatch::open(&dir);
        let writer = Self {
            path: path.to_owned(),
            dir,
            objects,
            objects_path: std::sync::Arc::from(path.join(OBJECTS_DIR)),
            tree,
            origin,
            durability,
            visible_links: true,
            gc_grace: Duration::ZERO,
            links,
            state: Mutex::new(State { dirty: true, ..State::default() }),
        };
        writer.remove_temporaries();
        Ok(writer)
    }

    #[cfg(test)]
    /// Turns fsync off (only for tests and benchmarks of the non-durable cost).
    #[must_use]
    pub(crate) fn without_fsync(self) -> Self {
        self.with_durability(Durability::Off)
    }

    #[cfg(test)]
    /// Overrides the durability detected from the filesystem type.
    #[must_use]
    pub(crate) fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Keeps each replaced generation readable for `grace` after the swap away from it
    /// (default: removed once the swap is durable).
    #[must_use]
    pub(crate) fn with_gc_grace(mut self, grace: Duration) -> Self {
        self.gc_grace = grace;
        self
    }

    /// When the oldest generation kept for readers may be removed, if one is kept: call
    /// [`Writer::collect`] then.
    #[must_use]
    pub(crate) fn next_collection(&self) -> Option<Instant> {
        self.lock().retired.front().map(|r| r.due)
    }

    /// Removes the generations whose grace ran out.
    pub(crate) fn collect(&self) -> Result<(), Error> {
        let mut state = self.lock();
        self.collect_retired(&mut state, Instant::now(), false);
        if std::mem::take(&mut state.dirty) {
            self.sweep(&mut state)?;
        }
        Ok(())
    }

    #[cfg(test)]
    /// Number of replaced generations kept for readers.
    #[must_use]
    pub(crate) fn retained(&self) -> usize {
        self.lock().retired.len()
    }

    /// No visible links (the last-good store keeps only the tree).
    #[must_use]
    pub(crate) fn without_visible_links(mut self) -> Self {
        self.visible_links = false;
        self.links = guard::LinkWatch::none();
        self
    }

    /// The target directory.
    #[must_use]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its objects dir: where the objects it wrote or read keep their bytes.
    #[must_use]
    pub(crate) fn objects_path(&self) -> &std::sync::Arc<Path> {
        &self.objects_path
    }

    /// How directory entries are made durable here.
    #[must_use]
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// Name of the snapshot dir `..data` points at, if any.
    pub(crate) fn current_dir_name(&self) -> Result<Option<String>, Error> {
        current_dir_name(&self.dir)
    }

    /// Reads and verifies the current snapshot, adopts it as the base of the next swaps,
    /// and removes everything it does not reference (orphan roots and nodes, stale links).
    /// Returns it with the origin its manifest records. `Ok(None)` when there is none;
    /// `Err` when it is damaged or foreign (the next swap replaces it).
    pub(crate) fn load_current(&self) -> Result<Option<(Snapshot, Origin)>, Error> {
        let loaded = read::read_tree(&self.dir, &self.objects, &self.tree)?;
        let mut state = self.lock();
        match loaded {
            Some(read::Loaded { snapshot, root, nodes, origin }) => {
                // Every file was just read and verified: keep them on disk only.
                snapshot.objects().for_each(|object| object.release(&self.objects_path));
                state.present = nodes;
                state.current = Some((snapshot.clone(), root));
                state.dirty = false;
                // The snapshot is verified; what cannot be tidied now (a read-only dir)
                // does not make it unusable.
                if let Err(error) = self.sweep(&mut state) {
                    tracing::warn!(%error, "tidying the target dir failed; the next swap retries");
                    state.dirty = true;
                }
                let repairs = self.check_visible_links(&snapshot, true);
                state.repairs.extend(repairs);
                Ok(Some((snapshot, origin)))
            }
            None => {
                state.dirty = false;
                self.sweep(&mut state)?;
                Ok(None)
            }
        }
    }

    /// Writes `snapshot`, swaps `..data` to it and makes that durable.
    pub(crate) fn swap(&self, snapshot: &Snapshot) -> Result<SwapTimings, Error> {
        let staged = self.stage(snapshot)?;
        let committed = self.commit(staged)?;
        let timings = committed.timings;
        self.persist(committed)?;
        Ok(timings)
    }

    /// Writes what `snapshot` has that is not on disk yet, and a new root for it that
    /// nothing points at yet, so it can be validated before [`Writer::commit`] or
    /// [`Writer::discard`].
    pub(crate) fn stage(&self, snapshot: &Snapshot) -> Result<Staged, Error> {
        let mut state = self.lock();
        let staged = build::stage(self, &mut state, snapshot);
        if let Err(error) = &staged
            && matches!(error.label(), "no_space" | "quota")
            && !state.retired.is_empty()
        {
            tracing::warn!(
                retained = state.retired.len(),
                "the volume is full: removing the replaced snapshots kept for readers now (--gc-grace)"
            );
            self.collect_retired(&mut state, Instant::now(), true);
        }
        staged
    }

    /// A directory showing the staged snapshot at its app-visible paths as real
    /// directories and regular files (hard links to the staged content), so a validation
    /// command that walks it without following links sees every file. Kept between
    /// stages and brought up to date with what changed (see `view`).
    pub(crate) fn staged_view(&self, staged: &mut Staged) -> Result<PathBuf, Error> {
        let mut state = self.lock();
        let name = self.show_in_view(&mut state, &staged.snapshot)?;
        Ok(self.path.join(name))
    }

    /// Swaps `..data` to a staged root and updates the visible links. Readers see the new
    /// snapshot at once; the switch survives a power loss only after [`Writer::persist`],
    /// which also removes the old generation. Keeping that fsync off this path takes one
    /// journal commit out of the update → reload latency.
    pub(crate) fn commit(&self, staged: Staged) -> Result<Committed, Error> {
        let mut state = self.lock();
        let Staged { root, snapshot, created, mut timings } = staged;
        let started = Instant::now();
        let previous = state.current.as_ref().map(|(s, _)| s.clone());
        let switched = self
            .add_visible_links(&snapshot, previous.as_ref())
            .and_then(|repairs| self.switch_data_link(&root).map(|()| repairs));
        let repairs = match switched {
            Ok(repairs) => repairs,
            Err(err) => {
                self.remove_nodes(&mut state, &created);
                let _ = fsops::remove_tree(&self.dir, &root);
                return Err(err);
            }
        };
        state.repairs.extend(repairs);
        // The swap happened: a failure to tidy up must not make the caller think it did not.
        if let Err(error) = self.remove_stale_links(&snapshot, previous.as_ref()) {
            tracing::warn!(%error, "removing stale visible links failed; the next swap retries");
            state.dirty = true;
        }
        let repairs = self.check_visible_links(&snapshot, false);
        state.repairs.extend(repairs);
        let garbage = previous.as_ref().map(|old| garbage::garbage(old, &snapshot)).unwrap_or_default();
        let previous_root =
            state.current.replace((snapshot, root.clone())).map(|(_, r)| r).filter(|r| *r != root);
        timings.rename = started.elapsed();
        Ok(Committed { timings, previous: previous_root, replaced: previous, garbage })
    }

    /// Makes a commit durable (fsync of the target dir), then retires the root it
    /// replaced and the nodes only that generation used: removed once the grace
    /// ([`Writer::with_gc_grace`]) runs out, at once without one. A crash before that
    /// removal leaves garbage that the next sweep clears.
    pub(crate) fn persist(&self, committed: Committed) -> Result<(), Error> {
        if self.durability != Durability::Off {
            fsops::sync_dir(&self.dir).map_err(io("fsync the target dir"))?;
        }
        let mut state = self.lock();
        let now = Instant::now();
        let Committed { previous, replaced, garbage, .. } = committed;
        if previous.is_some() || !garbage.is_empty() {
            let due = now + self.gc_grace;
            state.retired.push_back(retire::Retired { root: previous, snapshot: replaced, garbage, due });
        }
        self.collect_retired(&mut state, now, false);
        if state.dirty {
            state.dirty = false;
            self.sweep(&mut state)?;
        }
        Ok(())
    }

    /// Removes a staged root that will not be committed, and the nodes it created; the
    /// validation view goes back to the current snapshot, so refused content does not
    /// linger on the volume.
    pub(crate) fn discard(&self, staged: Staged) -> Result<(), Error> {
        let mut state = self.lock();
        self.unshow_refused(&mut state);
        self.remove_nodes(&mut state, &staged.created);
        fsops::remove_tree(&self.dir, &staged.root).map_err(io(format!("remove {}", staged.root)))
    }

    /// Checks that the target dir takes writes (creates and removes a probe dir): the
    /// error says why not (read-only mount, immutable, no permission).
    pub(crate) fn probe_writable(&self) -> Result<(), Error> {
        let name = format!("{PROBE_PREFIX}{:016x}", rand::random::<u64>());
        nix::sys::stat::mkdirat(&self.dir, name.as_str(), Mode::from_bits_truncate(0o700))
            .map_err(io("create a probe dir in the target dir"))?;
        fsops::remove_tree(&self.dir, &name).map_err(io(format!("remove {name}")))
    }

    /// Visible links put right since the last call (at start, at a swap, or by
    /// [`Writer::repair_visible_links`]), for the caller to report.
    pub(crate) fn take_repairs(&self) -> Vec<Repair> {
        std::mem::take(&mut self.lock().repairs)
    }

    /// Checks the visible links touched since the last check against the current
    /// snapshot and repairs the wrong ones, between swaps; returns every repair not yet
    /// taken.
    pub(crate) fn repair_visible_links(&self) -> Vec<Repair> {
        let mut state = self.lock();
        if let Some((snapshot, _)) = state.current.as_ref() {
            let repairs = self.check_visible_links(snapshot, false);
            state.repairs.extend(repairs);
        } else {
            let _ = self.links.touched();
        }
        std::mem::take(&mut state.repairs)
    }

    /// A descriptor that turns readable when a top-level name of the target dir is
    /// created, removed or renamed (then [`Writer::repair_visible_links`]); `None` without
    /// an inotify watch.
    #[must_use]
    pub(crate) fn changes_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.links.fd()
    }

    fn switch_data_link(&self, name: &str) -> Result<(), Error> {
        // A real directory at either name would make the rename fail on every swap.
        self.clear_reserved(DATA_TMP_LINK, true)?;
        self.clear_reserved(DATA_LINK, false)?;
        fsops::symlink(name, &self.dir, DATA_TMP_LINK).map_err(io(format!("link {DATA_TMP_LINK}")))?;
        renameat(&self.dir, DATA_TMP_LINK, &self.dir, DATA_LINK)
            .map_err(io(format!("rename {DATA_TMP_LINK} over {DATA_LINK}")))?;
        Ok(())
    }

    /// Removes nodes (best effort: a failure leaves garbage for the next sweep).
    fn remove_nodes(&self, state: &mut State, nodes: &[Node]) {
        for node in nodes {
            let (parent, name) = self.node_location(*node);
            if let Err(err) = fsops::remove_tree(parent, &name) {
                tracing::warn!(error = %err, name, "removing an unused node failed; the next sweep retries");
                state.dirty = true;
            }
            state.present.remove(node);
        }
    }

    fn node_location(&self, node: Node) -> (&OwnedFd, String) {
        match node {
            Node::Object(id) => (&self.objects, crate::snapshot::tree::node_name(&id)),
            Node::Tree(id) => (&self.tree, crate::snapshot::tree::node_name(&id)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
mod target_tests;

#[cfg(test)]
mod durability_tests;

#[cfg(test)]
mod open_tests;

#[cfg(test)]
mod error_tests;

#[cfg(test)]
mod fsops_tests;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod view_tests;
