//! Reading a snapshot back from disk and verifying all of it: every link's exact form,
//! every object's files against its manifest and its content-addressed name, every
//! node's name against its content, and the root against the root manifest. Nothing
//! is followed: links are parsed as text and each node is opened from its parent fd.

use super::{Error, Node, OBJECTS_DIR, TREE_DIR, current_dir_name, fsops, io, io_std};
use crate::keypath;
use crate::snapshot::manifest::{MANIFEST_FILE, ObjectManifest, RootManifest};
use crate::snapshot::object::Object;
use crate::snapshot::tree::{self, FANOUT, ShortId, parse_node_name, short};
use crate::snapshot::{Snapshot, SourceRef};
use crate::source::{Input, ObjectId, SourceObject};
use bytes::Bytes;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

/// A snapshot read back, with its root dir and every node it uses.
pub(super) struct Loaded {
    pub(super) snapshot: Snapshot,
    pub(super) root: String,
    pub(super) nodes: HashSet<Node>,
    pub(super) origin: crate::snapshot::manifest::Origin,
}

/// Reads and verifies the snapshot `..data` points at in the target dir `path`, without
/// changing anything (for checkers and tests). `Ok(None)` when there is none.
pub fn read_current(path: &Path) -> Result<Option<Snapshot>, Error> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = nix::fcntl::open(path, flags, Mode::empty()).map_err(io(format!("open {}", path.display())))?;
    if current_dir_name(&dir)?.is_none() {
        return Ok(None);
    }
    let objects = fsops::open_dir(&dir, OBJECTS_DIR).map_err(io(format!("open {OBJECTS_DIR}")))?;
    let tree = fsops::open_dir(&dir, TREE_DIR).map_err(io(format!("open {TREE_DIR}")))?;
    Ok(read_tree(&dir, &objects, &tree)?.map(|loaded| loaded.snapshot))
}

/// Reads the current snapshot; `Err(Damaged)` when anything does not match.
pub(super) fn read_tree(dir: &OwnedFd, objects: &OwnedFd, tree: &OwnedFd) -> Result<Option<Loaded>, Error> {
    let Some(root) = current_dir_name(dir)? else {
        return Ok(None);
    };
    let damaged = |reason: String| Error::Damaged { dir: root.clone(), reason };
    let root_fd = fsops::open_dir(dir, &root).map_err(io(format!("open {root}")))?;
    let raw =
        fsops::read_file(&root_fd, MANIFEST_FILE).map_err(io_std(format!("read {root}/{MANIFEST_FILE}")))?;
    let manifest = RootManifest::parse(&raw).map_err(|e| damaged(e.to_string()))?;
    let mut reader = Reader {
        objects,
        tree,
        loaded: HashMap::new(),
        entries: BTreeMap::new(),
        merged: HashMap::new(),
        mids: BTreeMap::new(),
        leaves: BTreeMap::new(),
    };
    for name in fsops::list(&root_fd).map_err(io(format!("list {root}")))? {
        if name == MANIFEST_FILE {
            continue;
        }
        let (h0, mid) = child_link(&root_fd, &name, &format!("../{TREE_DIR}/")).map_err(damaged)?;
        reader.mids.insert(h0, mid);
        reader.mid(h0, mid).map_err(|e| e.or_damaged(&root))?;
    }
    let objects: Vec<Arc<Object>> = reader.loaded.values().cloned().collect();
    let snapshot = Snapshot::from_objects(manifest.origin.layout, objects);
    manifest.check(&snapshot).map_err(|e| damaged(e.to_string()))?;
    let nodes = reader.matches(&snapshot).map_err(damaged)?;
    Ok(Some(Loaded { snapshot, root, nodes, origin: manifest.origin }))
}

/// One failure while reading a tree: an I/O error, or something that does not match.
enum ReadError {
    Io(Error),
    Mismatch(String),
}

impl ReadError {
    fn or_damaged(self, root: &str) -> Error {
        match self {
            Self::Io(err) => err,
            Self::Mismatch(reason) => Error::Damaged { dir: root.to_owned(), reason },
        }
    }
}

impl From<Error> for ReadError {
    fn from(err: Error) -> Self {
        Self::Io(err)
    }
}

struct Reader<'a> {
    objects: &'a OwnedFd,
    tree: &'a OwnedFd,
    loaded: HashMap<ShortId, Arc<Object>>,
    /// Entry name → the object (or merged node) its link names.
    entries: BTreeMap<String, ShortId>,
    /// Merged node → its links: name inside → object.
    merged: HashMap<ShortId, BTreeMap<String, ShortId>>,
    /// Position → the middle node / leaf the links name.
    mids: BTreeMap<usize, ShortId>,
    leaves: BTreeMap<(usize, usize), ShortId>,
}

// === impl Reader ===

impl Reader<'_> {
    fn mid(&mut self, h0: usize, id: ShortId) -> Result<(), ReadError> {
        let name = name_of(&id);
        let fd = fsops::open_dir(self.tree, &name).map_err(io(format!("open {TREE_DIR}/{name}")))?;
        for child in fsops::list(&fd).map_err(io(format!("list {TREE_DIR}/{name}")))? {
            let (h1, leaf) = child_link(&fd, &child, "../").map_err(ReadError::Mismatch)?;
            self.leaves.insert((h0, h1), leaf);
            self.leaf(leaf)?;
        }
        Ok(())
    }

    fn leaf(&mut self, id: ShortId) -> Result<(), ReadError> {
        let name = name_of(&id);
        let fd = fsops::open_dir(self.tree, &name).map_err(io(format!("open {TREE_DIR}/{name}")))?;
        for entry in fsops::list(&fd).map_err(io(format!("list {TREE_DIR}/{name}")))? {
            let target = fsops::read_link(&fd, &entry)
                .ok_or_else(|| ReadError::Mismatch(format!("leaf entry {entry:?} is not a link")))?;
            let id = match target.strip_prefix("../").and_then(parse_node_name) {
                Some(merged) => {
                    self.merged_node(merged)?;
                    merged
                }
                None => self.object_link(&entry, &target, false)?,
            };
            self.entries.insert(entry, id);
        }
        Ok(())
    }

    /// Reads a node of a directory several objects share: every entry a link to the
    /// same name in an object dir.
    fn merged_node(&mut self, id: ShortId) -> Result<(), ReadError> {
        if self.merged.contains_key(&id) {
            return Ok(());
        }
        let name = name_of(&id);
        let fd = fsops::open_dir(self.tree, &name).map_err(io(format!("open {TREE_DIR}/{name}")))?;
        let mut links = BTreeMap::new();
        for inside in fsops::list(&fd).map_err(io(format!("list {TREE_DIR}/{name}")))? {
            let target = fsops::read_link(&fd, &inside)
                .ok_or_else(|| ReadError::Mismatch(format!("merged entry {inside:?} is not a link")))?;
            let object = self.object_link(&inside, &target, true)?;
            links.insert(inside, object);
        }
        self.merged.insert(id, links);
        Ok(())
    }

    /// Loads the object a link names: `../../..objects/<id>`, or `…/<id>/<entry>` (the
    /// only form when `inside`).
    fn object_link(&mut self, entry: &str, target: &str, inside: bool) -> Result<ShortId, ReadError> {
        let rest = target.strip_prefix(&format!("../../{OBJECTS_DIR}/")).unwrap_or_default();
        let (object_name, inner) = rest.split_once('/').map_or((rest, None), |(h, i)| (h, Some(i)));
        if inner.is_some_and(|i| i != entry) || (inside && inner.is_none()) {
            return Err(ReadError::Mismatch(format!("entry {entry:?} points at {target:?}")));
        }
        let object = parse_node_name(object_name)
            .ok_or_else(|| ReadError::Mismatch(format!("bad link {target:?}")))?;
        if !self.loaded.contains_key(&object) {
            let read = self.object(object)?;
            self.loaded.insert(object, Arc::new(read));
        }
        Ok(object)
    }

    /// Checks that the links found name exactly the nodes of the snapshot rebuilt from the
    /// objects, and returns those nodes (with their full ids).
    fn matches(&self, snapshot: &Snapshot) -> Result<HashSet<Node>, String> {
        let tree = snapshot.tree();
        let mut nodes: HashSet<Node> = snapshot.objects().map(|o| Node::Object(o.digest)).collect();
        let expected_entries: BTreeMap<&String, ShortId> =
            tree.entries().map(|(name, e)| (name, short(&e.target_id()))).collect();
        let found_entries: BTreeMap<&String, ShortId> = self.entries.iter().map(|(n, id)| (n, *id)).collect();
        if found_entries != expected_entries {
            return Err("the entries on disk are not those of its objects".into());
        }
        for (name, entry) in tree.entries() {
            let Some(id) = entry.merged() else { continue };
            let expected: BTreeMap<String, ShortId> =
                entry.merged_links().into_iter().map(|(n, o)| (n.to_owned(), short(&o.digest))).collect();
            if self.merged.get(&short(&id)) != Some(&expected) {
                return Err(format!("the shared dir {name:?} does not hold its objects' files"));
            }
            nodes.insert(Node::Tree(id));
        }
        for h0 in 0..FANOUT {
            if tree.mid(h0).map(|m| short(&m)) != self.mids.get(&h0).copied() {
                return Err(format!("middle node {h0:x} is not the one its leaves make"));
            }
            if let Some(mid) = tree.mid(h0) {
                nodes.insert(Node::Tree(mid));
            }
            for h1 in 0..FANOUT {
                let leaf = tree.leaf(h0, h1);
                let want = (!leaf.entries.is_empty()).then(|| short(&leaf.id));
                if want != self.leaves.get(&(h0, h1)).copied() {
                    return Err(format!("leaf {h0:x}{h1:x} is not the one its entries make"));
                }
                if want.is_some() {
                    nodes.insert(Node::Tree(leaf.id));
                }
            }
        }
        Ok(nodes)
    }

    /// Reads one object dir: its manifest, then every file, checked against it.
    fn object(&mut self, id: ShortId) -> Result<Object, ReadError> {
        let name = name_of(&id);
        let fd = fsops::open_dir(self.objects, &name).map_err(io(format!("open {OBJECTS_DIR}/{name}")))?;
        let raw = fsops::read_file(&fd, MANIFEST_FILE)
            .map_err(io_std(format!("read {OBJECTS_DIR}/{name}/{MANIFEST_FILE}")))?;
        let manifest = ObjectManifest::parse(&raw).map_err(|e| ReadError::Mismatch(e.to_string()))?;
        let mut entries = BTreeMap::new();
        let mut files = Vec::with_capacity(manifest.files.len());
        for record in &manifest.files {
            keypath::validate_path(&record.path)
                .map_err(|e| ReadError::Mismatch(format!("unsafe path: {e}")))?;
            let content = fsops::read_file(&fd, &record.path)
                .map_err(|_| ReadError::Mismatch(format!("file {:?} of {name} is missing", record.path)))?;
            files
                .push(manifest.check_file(record, &content).map_err(|e| ReadError::Mismatch(e.to_string()))?);
            entries.insert(record.path.clone(), Bytes::from(content));
        }
        if let Some(target) = &manifest.target_dir {
            keypath::validate_key(target)
                .map_err(|e| ReadError::Mismatch(format!("unsafe target dir: {e}")))?;
        }
        let object = restored_object(&manifest.source, files, entries, manifest.target_dir.clone());
        if short(&object.digest) != id {
            return Err(ReadError::Mismatch(format!("object dir {name} does not hold what its name says")));
        }
        Ok(object)
    }
}

/// An object read from disk; its bytes are owned until the live source replaces it.
fn restored_object(
    source: &SourceRef,
    files: Vec<crate::snapshot::ObjectFile>,
    entries: BTreeMap<String, Bytes>,
    target: Option<String>,
) -> Object {
    let id = ObjectId { kind: source.kind, name: source.name.clone() };
    let raw = SourceObject {
        id: id.clone(),
        namespace: source.namespace.clone(),
        uid: source.uid.clone(),
        resource_version: source.resource_version.clone(),
        mode_annotation: None,
        target_annotation: target.clone(),
        entries,
        duplicate_keys: Vec::new(),
    };
    Object::new(id, source.clone(), files, Input::Object(Arc::new(raw))).with_target(target)
}

/// The position and node a child link names: the child is one hex digit (root and
/// middle nodes have no other entries) and its link exactly `<prefix><node name>`.
fn child_link(dir: &OwnedFd, child: &str, prefix: &str) -> Result<(usize, ShortId), String> {
    let digit_ok =
        child.len() == 1 && child.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let index = usize::from_str_radix(child, 16).unwrap_or(FANOUT);
    if !digit_ok || index >= FANOUT {
        return Err(format!("unexpected entry {child:?}"));
    }
    let target = fsops::read_link(dir, child).ok_or_else(|| format!("entry {child:?} is not a link"))?;
    let id = target.strip_prefix(prefix).and_then(parse_node_name);
    id.map(|id| (index, id)).ok_or_else(|| format!("entry {child:?} points at {target:?}"))
}

/// The directory name of a node known by its short id.
fn name_of(id: &ShortId) -> String {
    let mut full = [0; 32];
    full[..16].copy_from_slice(id);
    tree::node_name(&full)
}
