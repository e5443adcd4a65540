//! Staging: write the nodes a snapshot needs that are not on disk yet (objects, leaves,
//! middle nodes, children before parents), then a new root, and sync them.

use super::{
    Durability, Error, Node, OBJECTS_DIR, SYNC_BATCH, Staged, State, SwapTimings, TREE_DIR, Writer, fsops,
    io, io_std, new_snapshot_dir_name,
};
use crate::snapshot::manifest::{MANIFEST_FILE, ObjectManifest, RootManifest};
use crate::snapshot::object::Object;
use crate::snapshot::tree::{self, Entry, FANOUT, Leaf};
use crate::snapshot::{Snapshot, SourceRef};
use crate::source::SourceKind;
use nix::errno::Errno;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use tokio::time::Instant;

/// Mode of every directory configsnap creates in the target dir.
const DIR_MODE: u32 = 0o755;

/// What one stage writes.
struct Plan<'a> {
    objects: Vec<&'a Arc<Object>>,
    /// Merged entries (name and entry) whose node is not on disk.
    merged: Vec<(&'a str, &'a Entry)>,
    leaves: Vec<(usize, usize)>,
    mids: Vec<usize>,
}

/// The live generation's node at the position a stage writes a new node to. The new
/// node shares each of the donor's links it needs unchanged (a hard link to the same
/// symlink inode), so a swap allocates inodes only along the changed path instead of one
/// per link of every node it copies: on ext4 without a journal an inode allocation scans
/// past every inode freed in the last minute, which made a swap at 100 objects cost 2.3×
/// one at 1.
struct Donor {
    dir: Option<OwnedFd>,
}

/// The sync work of one stage.
struct Syncer {
    durability: Durability,
    /// More new files than [`SYNC_BATCH`], or [`Durability::Flush`]: one `syncfs` at the
    /// end instead of one sync each.
    batch: bool,
    timings: SwapTimings,
}

pub(super) fn stage(writer: &Writer, state: &mut State, snapshot: &Snapshot) -> Result<Staged, Error> {
    let plan = plan(state, snapshot);
    let new_files: usize = plan.objects.iter().map(|o| o.files.len() + 1).sum::<usize>() + 1;
    let mut syncer = Syncer {
        durability: writer.durability,
        batch: new_files > SYNC_BATCH || writer.durability == Durability::Flush,
        timings: SwapTimings::default(),
    };
    let mut created = Vec::new();
    let started = Instant::now();
    let live = Live::of(writer, state);
    let result = write_plan(writer, snapshot, &plan, &live, &mut syncer, &mut created)
        .and_then(|()| write_root(writer, snapshot, &live, &mut syncer));
    syncer.timings.write = started.elapsed().saturating_sub(syncer.timings.fsync);
    let root = match result {
        Ok(root) => root,
        Err(err) => {
            writer.remove_nodes(state, &created);
            return Err(blame_largest_object(err, &plan));
        }
    };
    state.present.extend(created.iter().copied());
    Ok(Staged { root, snapshot: snapshot.clone(), created, timings: syncer.timings })
}

/// A volume that fills up during a stage is full because of every object the stage
/// writes, not only the one that met the limit (or, after them, the tree or the root):
/// the largest is blamed (what it wrote goes with the stage), so the rest of the change
/// goes ahead without it. Blaming whichever came last would hold back a small change
/// written after a big one, then the big one too, and neither would land.
fn blame_largest_object(error: Error, plan: &Plan<'_>) -> Error {
    if !matches!(error.label(), "no_space" | "quota") {
        return error;
    }
    let source = match error {
        Error::Object { source, .. } => *source,
        other => other,
    };
    match plan.objects.iter().max_by_key(|object| object.bytes()) {
        Some(largest) => Error::Object { object: largest.id.clone(), source: Box::new(source) },
        None => source,
    }
}

/// The nodes of `snapshot` not on disk, found top-down: a present node's subtree is.
fn plan<'a>(state: &State, snapshot: &'a Snapshot) -> Plan<'a> {
    let tree = snapshot.tree();
    let mut plan = Plan { objects: Vec::new(), merged: Vec::new(), leaves: Vec::new(), mids: Vec::new() };
    let mut planned = HashSet::new();
    for h0 in 0..FANOUT {
        let Some(mid) = tree.mid(h0) else { continue };
        if state.present.contains(&Node::Tree(mid)) {
            continue;
        }
        plan.mids.push(h0);
        for h1 in 0..FANOUT {
            let leaf = tree.leaf(h0, h1);
            if leaf.entries.is_empty() || state.present.contains(&Node::Tree(leaf.id)) {
                continue;
            }
            plan.leaves.push((h0, h1));
            for (name, entry) in &leaf.entries {
                if let Some(id) = entry.merged()
                    && !state.present.contains(&Node::Tree(id))
                    && planned.insert(Node::Tree(id))
                {
                    plan.merged.push((name, entry));
                }
                for member in entry.members() {
                    let node = Node::Object(member.object.digest);
                    if !state.present.contains(&node) && planned.insert(node) {
                        plan.objects.push(&member.object);
                    }
                }
            }
        }
    }
    plan
}

fn write_plan(
    writer: &Writer,
    snapshot: &Snapshot,
    plan: &Plan<'_>,
    live: &Live<'_>,
    syncer: &mut Syncer,
    created: &mut Vec<Node>,
) -> Result<(), Error> {
    for object in &plan.objects {
        if let Err(error) = write_object(writer, object, syncer) {
            // What it wrote would take room from everything else until the next sweep.
            let _ = fsops::remove_tree(&writer.objects, &object.dir_name());
            return Err(Error::Object { object: object.id.clone(), source: Box::new(error) });
        }
        created.push(Node::Object(object.digest));
    }
    for &(name, entry) in &plan.merged {
        write_merged(writer, entry, &live.merged(name), syncer, created)?;
    }
    let tree = snapshot.tree();
    for &(h0, h1) in &plan.leaves {
        let leaf = tree.leaf(h0, h1);
        write_leaf(writer, leaf, &live.leaf(h0, h1), syncer)?;
        created.push(Node::Tree(leaf.id));
    }
    for &h0 in &plan.mids {
        let Some(id) = tree.mid(h0) else { continue };
        let dir = make_node_dir(&writer.tree, &tree::node_name(&id))?;
        let donor = live.mid(h0);
        for h1 in 0..FANOUT {
            let leaf = tree.leaf(h0, h1);
            if !leaf.entries.is_empty() {
                let target = format!("../{}", tree::node_name(&leaf.id));
                donor.link(&dir, &target, &tree::digit(h1).to_string())?;
            }
        }
        syncer.strict_dir(&dir)?;
        created.push(Node::Tree(id));
    }
    if !plan.objects.is_empty() {
        syncer.strict_dir(&writer.objects)?;
    }
    if !plan.leaves.is_empty() || !plan.mids.is_empty() {
        syncer.strict_dir(&writer.tree)?;
    }
    Ok(())
}

fn write_object(writer: &Writer, object: &Object, syncer: &mut Syncer) -> Result<(), Error> {
    let name = object.dir_name();
    let dir = make_node_dir(&writer.objects, &name)?;
    let mut subdirs: HashMap<String, OwnedFd> = HashMap::new();
    for file in &object.files {
        let (parent, leaf) = match file.key.rsplit_once('/') {
            Some((parent, leaf)) => (ensure_dir(&dir, parent, &mut subdirs)?, leaf),
            None => (dir.as_fd(), file.key.as_str()),
        };
        let content =
            object.read(file).map_err(io_std(format!("read {}/{} back", object.id.name, file.key)))?;
        let written = fsops::create_file(parent, leaf, &content, file.mode)
            .map_err(io_std(format!("write {}/{}", object.id.name, file.key)))?;
        syncer.file(&written)?;
    }
    let manifest = ObjectManifest::describe(object).to_json();
    let written = fsops::create_file(&dir, MANIFEST_FILE, &manifest, manifest_mode(&object.source))
        .map_err(io_std(format!("write {OBJECTS_DIR}/{name}/{MANIFEST_FILE}")))?;
    syncer.file(&written)?;
    for sub in subdirs.values() {
        syncer.strict_dir(sub)?;
    }
    syncer.strict_dir(&dir)
}

fn write_leaf(writer: &Writer, leaf: &Leaf, donor: &Donor, syncer: &mut Syncer) -> Result<(), Error> {
    let dir = make_node_dir(&writer.tree, &tree::node_name(&leaf.id))?;
    for (name, entry) in &leaf.entries {
        let target = match entry.single_member() {
            Some(only) if only.whole => format!("../../{OBJECTS_DIR}/{}", only.object.dir_name()),
            Some(only) => format!("../../{OBJECTS_DIR}/{}/{name}", only.object.dir_name()),
            None => format!("../{}", tree::node_name(&entry.target_id())),
        };
        donor.link(&dir, &target, name)?;
    }
    syncer.strict_dir(&dir)
}

/// Writes the node of a directory several objects share: one link per name in it, to
/// the object that provides it (`nginx.conf -> ../../..objects/<id>/nginx.conf`).
fn write_merged(
    writer: &Writer,
    entry: &Entry,
    donor: &Donor,
    syncer: &mut Syncer,
    created: &mut Vec<Node>,
) -> Result<(), Error> {
    let id = entry.target_id();
    let dir = make_node_dir(&writer.tree, &tree::node_name(&id))?;
    created.push(Node::Tree(id));
    for (inside, object) in entry.merged_links() {
        let target = format!("../../{OBJECTS_DIR}/{}/{inside}", object.dir_name());
        donor.link(&dir, &target, inside)?;
    }
    syncer.strict_dir(&dir)
}

/// Creates the root: one link per middle node, and the root manifest; syncs what the
/// rename will depend on.
fn write_root(
    writer: &Writer,
    snapshot: &Snapshot,
    live: &Live<'_>,
    syncer: &mut Syncer,
) -> Result<String, Error> {
    let (name, dir) = make_unique_root(writer)?;
    let result = (|| {
        let tree = snapshot.tree();
        let donor = live.root();
        for h0 in 0..FANOUT {
            if let Some(mid) = tree.mid(h0) {
                donor.link(
                    &dir,
                    &format!("../{TREE_DIR}/{}", tree::node_name(&mid)),
                    &tree::digit(h0).to_string(),
                )?;
            }
        }
        let manifest = RootManifest::describe(snapshot, &writer.origin).to_json();
        let written = fsops::create_file(&dir, MANIFEST_FILE, &manifest, 0o644)
            .map_err(io_std(format!("write {name}/{MANIFEST_FILE}")))?;
        syncer.file(&written)?;
        syncer.strict_dir(&dir)?;
        syncer.strict_dir(&writer.dir)?;
        syncer.finish(&writer.dir)
    })();
    if let Err(err) = result {
        let _ = fsops::remove_tree(&writer.dir, &name);
        return Err(err);
    }
    Ok(name)
}

fn make_unique_root(writer: &Writer) -> Result<(String, OwnedFd), Error> {
    for _ in 0..16 {
        let name = new_snapshot_dir_name();
        match fsops::make_dir(&writer.dir, &name, DIR_MODE) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EEXIST) => continue,
            Err(err) => return Err(io(format!("create {name}"))(err)),
        }
    }
    Err(io("create a unique snapshot dir")(Errno::EEXIST))
}

/// Creates a node dir; one left by an interrupted stage under that name (not known to
/// be complete) is removed first.
fn make_node_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Error> {
    match fsops::make_dir(parent, name, DIR_MODE) {
        Err(Errno::EEXIST) => {
            fsops::remove_tree(parent, name).map_err(io(format!("remove the incomplete {name}")))?;
            fsops::make_dir(parent, name, DIR_MODE)
        }
        other => other,
    }
    .map_err(io(format!("create {name}")))
}

/// The live generation, as the donor of links for the nodes a stage writes.
struct Live<'a> {
    writer: &'a Writer,
    /// The live snapshot and its root dir; `None` when nothing is live or links must not
    /// be shared (strict durability: a hard link also changes the donor inode's link
    /// count, which only an ordered journal commits together with the new entry).
    current: Option<(&'a Snapshot, &'a str)>,
}

impl<'a> Live<'a> {
    fn of(writer: &'a Writer, state: &'a State) -> Self {
        let share = writer.durability != Durability::Strict;
        let current = state.current.as_ref().filter(|_| share).map(|(s, root)| (s, root.as_str()));
        Self { writer, current }
    }

    fn root(&self) -> Donor {
        Donor::open(&self.writer.dir, self.current.map(|(_, root)| root.to_owned()))
    }

    fn mid(&self, h0: usize) -> Donor {
        let id = self.current.and_then(|(s, _)| s.tree().mid(h0));
        Donor::open(&self.writer.tree, id.map(|id| tree::node_name(&id)))
    }

    /// The live merged node of entry `name`, if it has one.
    fn merged(&self, name: &str) -> Donor {
        let id = self.current.and_then(|(s, _)| s.tree().get(name)).and_then(Entry::merged);
        Donor::open(&self.writer.tree, id.map(|id| tree::node_name(&id)))
    }

    fn leaf(&self, h0: usize, h1: usize) -> Donor {
        let leaf = self.current.map(|(s, _)| s.tree().leaf(h0, h1)).filter(|l| !l.entries.is_empty());
        Donor::open(&self.writer.tree, leaf.map(|l| tree::node_name(&l.id)))
    }
}

// === impl Donor ===

impl Donor {
    /// Opens the donor node `name` in `parent`; none (every link new) when it is missing
    /// or not a plain directory.
    fn open(parent: &OwnedFd, name: Option<String>) -> Self {
        Self { dir: name.and_then(|name| fsops::open_dir(parent, &name).ok()) }
    }

    /// Adds `name -> target` to `dir`: the donor's link of that name when it is a symlink
    /// to exactly `target`, else a new symlink.
    fn link(&self, dir: &OwnedFd, target: &str, name: &str) -> Result<(), Error> {
        if let Some(donor) = &self.dir
            && fsops::read_link(donor, name).as_deref() == Some(target)
            && fsops::hard_link(donor, name, dir, name).is_ok()
        {
            return Ok(());
        }
        fsops::symlink(target, dir, name).map_err(io(format!("link {name}")))
    }
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
                let parent_fd = ensure_dir(root, parent, dirs)?;
                fsops::make_dir(parent_fd, leaf, DIR_MODE)
            }
            None => fsops::make_dir(root, path, DIR_MODE),
        }
        .map_err(io(format!("create dir {path}")))?;
        dirs.insert(path.to_owned(), fd);
    }
    Ok(dirs[path].as_fd())
}

/// Secret objects' manifests list digests of secret values: readable by the sidecar only.
fn manifest_mode(source: &SourceRef) -> u32 {
    if source.kind == SourceKind::Secret { 0o600 } else { 0o644 }
}

// === impl Syncer ===

impl Syncer {
    /// A new file was written: fdatasync it now unless the stage batches.
    fn file(&mut self, file: &std::fs::File) -> Result<(), Error> {
        if self.durability == Durability::Off || self.batch {
            return Ok(());
        }
        let started = Instant::now();
        fsops::sync_data(file).map_err(io_std("fdatasync a snapshot file"))?;
        self.timings.fsync += started.elapsed();
        Ok(())
    }

    /// A new dir (or a parent of new entries): fsynced only under strict durability.
    fn strict_dir(&mut self, dir: &OwnedFd) -> Result<(), Error> {
        if self.durability != Durability::Strict || self.batch {
            return Ok(());
        }
        let started = Instant::now();
        fsops::sync_dir(dir).map_err(io("fsync a snapshot directory"))?;
        self.timings.fsync += started.elapsed();
        Ok(())
    }

    /// The end of a batched stage: one `syncfs` covers every file and directory.
    fn finish(&mut self, dir: &OwnedFd) -> Result<(), Error> {
        if self.durability == Durability::Off || !self.batch {
            return Ok(());
        }
        let started = Instant::now();
        fsops::sync_filesystem(dir).map_err(io("syncfs the target filesystem"))?;
        self.timings.fsync += started.elapsed();
        Ok(())
    }
}
