//! Reading a snapshot back from disk and verifying all of it: every link's exact form,
//! every object's files against its manifest and its content-addressed name, every
//! node's name against its content, and the root against the root manifest. Nothing
//! is followed: links are parsed as text and each node is opened from its parent fd.

use super::{Error, Node, OBJECTS_DIR, TREE_DIR, current_dir_name, fsops, io, io_std};
use crate::keypath;
use crate::snapshot::manifest::{MANIFEST_FILE, ObjectManifest, RootManifest};
use crate::snapshot::object::{Digest32, Object};
use crate::snapshot::tree::{self, FANOUT};
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
    let mut reader =
        Reader { objects, tree, loaded: HashMap::new(), entries: BTreeMap::new(), nodes: HashSet::new() };
    for name in fsops::list(&root_fd).map_err(io(format!("list {root}")))? {
        if name == MANIFEST_FILE {
            continue;
        }
        let mid = child_link(&root_fd, &name, &format!("../{TREE_DIR}/")).map_err(damaged)?;
        reader.mid(mid).map_err(|e| e.or_damaged(&root))?;
    }
    let objects: Vec<Arc<Object>> = reader.loaded.values().cloned().collect();
    let snapshot = Snapshot::from_objects(manifest.origin.layout, objects);
    manifest.check(&snapshot).map_err(|e| damaged(e.to_string()))?;
    let found: Vec<(&String, Digest32)> = reader.entries.iter().map(|(n, d)| (n, *d)).collect();
    let expected: Vec<(&String, Digest32)> = snapshot
        .tree()
        .entries()
        .map(|(n, e)| (n, e.object.digest))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    if found != expected {
        return Err(damaged("the entries on disk are not those of its objects".into()));
    }
    Ok(Some(Loaded { snapshot, root, nodes: reader.nodes, origin: manifest.origin }))
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
    loaded: HashMap<Digest32, Arc<Object>>,
    entries: BTreeMap<String, Digest32>,
    nodes: HashSet<Node>,
}

// === impl Reader ===

impl Reader<'_> {
    fn mid(&mut self, id: Digest32) -> Result<(), ReadError> {
        let name = tree::node_name(&id);
        let fd = fsops::open_dir(self.tree, &name).map_err(io(format!("open {TREE_DIR}/{name}")))?;
        for child in fsops::list(&fd).map_err(io(format!("list {TREE_DIR}/{name}")))? {
            let leaf = child_link(&fd, &child, "../").map_err(ReadError::Mismatch)?;
            self.leaf(leaf)?;
        }
        self.nodes.insert(Node::Tree(id));
        Ok(())
    }

    fn leaf(&mut self, id: Digest32) -> Result<(), ReadError> {
        let name = tree::node_name(&id);
        let fd = fsops::open_dir(self.tree, &name).map_err(io(format!("open {TREE_DIR}/{name}")))?;
        let prefix = format!("../../{OBJECTS_DIR}/");
        for entry in fsops::list(&fd).map_err(io(format!("list {TREE_DIR}/{name}")))? {
            let target = fsops::read_link(&fd, &entry)
                .ok_or_else(|| ReadError::Mismatch(format!("leaf entry {entry:?} is not a link")))?;
            let rest = target.strip_prefix(&prefix).unwrap_or_default();
            let (hex, inner) = rest.split_once('/').map_or((rest, None), |(h, i)| (h, Some(i)));
            if inner.is_some_and(|i| i != entry) {
                return Err(ReadError::Mismatch(format!("leaf entry {entry:?} points at {target:?}")));
            }
            let digest = parse_id(hex).ok_or_else(|| ReadError::Mismatch(format!("bad link {target:?}")))?;
            if !self.loaded.contains_key(&digest) {
                let object = self.object(digest)?;
                self.loaded.insert(digest, Arc::new(object));
            }
            self.entries.insert(entry, digest);
        }
        self.nodes.insert(Node::Tree(id));
        Ok(())
    }

    /// Reads one object dir: its manifest, then every file, checked against it.
    fn object(&mut self, digest: Digest32) -> Result<Object, ReadError> {
        let name = hex::encode(digest);
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
        let object = restored_object(&manifest.source, files, entries);
        if object.digest != digest {
            return Err(ReadError::Mismatch(format!("object dir {name} does not hold what its name says")));
        }
        self.nodes.insert(Node::Object(digest));
        Ok(object)
    }
}

/// An object read from disk; its bytes are owned until the live source replaces it.
fn restored_object(
    source: &SourceRef,
    files: Vec<crate::snapshot::ObjectFile>,
    entries: BTreeMap<String, Bytes>,
) -> Object {
    let id = ObjectId { kind: source.kind, name: source.name.clone() };
    let raw = SourceObject {
        id: id.clone(),
        namespace: source.namespace.clone(),
        uid: source.uid.clone(),
        resource_version: source.resource_version.clone(),
        mode_annotation: None,
        entries,
        duplicate_keys: Vec::new(),
    };
    Object::new(id, source.clone(), files, Input::Object(Arc::new(raw)))
}

/// The node id a child link names: exactly `<prefix><64 hex>`, and the child is a hex
/// digit (root and middle nodes have no other entries).
fn child_link(dir: &OwnedFd, child: &str, prefix: &str) -> Result<Digest32, String> {
    let digit_ok =
        child.len() == 1 && child.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let index = usize::from_str_radix(child, 16).unwrap_or(FANOUT);
    if !digit_ok || index >= FANOUT {
        return Err(format!("unexpected entry {child:?}"));
    }
    let target = fsops::read_link(dir, child).ok_or_else(|| format!("entry {child:?} is not a link"))?;
    target
        .strip_prefix(prefix)
        .and_then(parse_id)
        .ok_or_else(|| format!("entry {child:?} points at {target:?}"))
}

/// A node name: 64 lower-case hex digits.
pub(super) fn parse_id(text: &str) -> Option<Digest32> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}
