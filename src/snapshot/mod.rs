//! The snapshot: the complete set of files the app should see, with its content hash.
//!
//! A snapshot is a [`tree::Tree`] of rendered [`Object`]s that share their bytes with the
//! source's cache; two snapshots share every unchanged leaf, so a render, a comparison
//! and a write cost what changed, not the size of the namespace. Rendering (objects →
//! files, with the key rules) lives in [`render`]; the manifests written next to the
//! files live in [`manifest`].

mod claims;
pub(crate) mod manifest;
mod mode;
pub(crate) mod object;
pub(crate) mod render;
pub(crate) mod tree;

use crate::source::{ObjectId, SourceKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

pub use object::Object;
pub(crate) use object::ObjectFile;
pub use render::Rejection;
pub(crate) use render::{RenderOptions, Renderer};
use tree::{Entry, Member, Tree};

/// How objects are laid out under the target directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `<object name>/<key>`: no collisions between objects.
    #[default]
    ByName,
    /// `<key>` at the top level: a key in two objects is a collision.
    Flat,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ByName => "by-name",
            Self::Flat => "flat",
        })
    }
}

/// Where a snapshot's files came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// Kind of object.
    pub kind: SourceKind,
    /// Namespace (empty for directories).
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Object UID.
    pub uid: String,
    /// Resource version the files were rendered from.
    pub(crate) resource_version: String,
}

/// The content hash of a snapshot: the root of its Merkle tree, over every object's kind,
/// name and files (path, mode, bytes) — not over source metadata, so a relabel or a no-op
/// update does not count as a change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContentHash(pub [u8; 32]);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for ContentHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix("sha256:").ok_or("hash must start with sha256:")?;
        let bytes = hex::decode(hex_part).map_err(|e| e.to_string())?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| "hash must be 32 bytes")?;
        Ok(Self(array))
    }
}

/// A complete, immutable set of files. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    layout: Layout,
    tree: Tree,
    /// Content hash (the tree's root id).
    pub hash: ContentHash,
}

// === impl Snapshot ===

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.layout == other.layout
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// A snapshot without files.
    #[must_use]
    pub fn empty(layout: Layout) -> Self {
        let tree = Tree::default();
        Self { layout, hash: ContentHash(tree.root()), tree }
    }

    /// A snapshot of these objects (which must not collide).
    #[must_use]
    pub(crate) fn from_objects(layout: Layout, objects: impl IntoIterator<Item = Arc<Object>>) -> Self {
        let mut snapshot = Self::empty(layout);
        snapshot.change(objects.into_iter().map(|o| (None, Some(o))));
        snapshot
    }

    /// Replaces objects: each pair is (old version, new version), either side absent.
    /// An entry that several objects share is rebuilt from the members that stay.
    pub(crate) fn change(
        &mut self,
        changes: impl IntoIterator<Item = (Option<Arc<Object>>, Option<Arc<Object>>)>,
    ) {
        let layout = self.layout;
        let (mut gone, mut added) = (HashSet::new(), Vec::new());
        let mut touched: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        for (old, new) in changes {
            if let Some(old) = old {
                gone.insert(old.id.clone());
                for top in old.tops(layout) {
                    touched.entry(top.to_owned()).or_default();
                }
            }
            added.extend(new);
        }
        // Removals first, so an entry that moves between objects ends up added.
        for (name, members) in &mut touched {
            let current = self.tree.get(name).map(Entry::members).unwrap_or_default();
            members.extend(current.iter().filter(|m| !gone.contains(&m.object.id)).cloned());
        }
        for new in added {
            let tops = new.tops(layout);
            let first = tops.first().copied();
            let whole = new.dir(layout).is_some();
            for top in tops {
                let member = Member { object: Arc::clone(&new), whole, primary: Some(top) == first };
                let members = touched.entry(top.to_owned()).or_insert_with(|| {
                    let current = self.tree.get(top).map(Entry::members).unwrap_or_default();
                    current.iter().filter(|m| !gone.contains(&m.object.id)).cloned().collect()
                });
                members.retain(|m| m.object.id != new.id);
                members.push(member);
            }
        }
        let edits = touched.into_iter().map(|(name, members)| {
            let entry = Entry::of(&name, members);
            (name, entry)
        });
        self.tree.apply(edits);
        self.hash = ContentHash(self.tree.root());
    }

    /// The layout of its paths.
    #[must_use]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Its tree.
    #[must_use]
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Every object, once each.
    pub fn objects(&self) -> impl Iterator<Item = &Arc<Object>> {
        self.tree.entries().flat_map(|(_, e)| e.members().iter().filter(|m| m.primary).map(|m| &m.object))
    }

    /// Number of objects.
    #[must_use]
    pub fn object_count(&self) -> u64 {
        self.tree.totals().objects
    }

    /// Number of files.
    #[must_use]
    pub(crate) fn file_count(&self) -> u64 {
        self.tree.totals().files
    }

    /// Sum of all file sizes in bytes.
    #[must_use]
    pub(crate) fn total_bytes(&self) -> u64 {
        self.tree.totals().bytes
    }

    /// The entries visible at the top of the target dir.
    pub fn top_level(&self) -> impl Iterator<Item = &str> {
        self.tree.entries().map(|(name, _)| name.as_str())
    }

    /// True when `name` is one of the entries visible at the top of the target dir.
    #[must_use]
    pub(crate) fn has_top(&self, name: &str) -> bool {
        self.tree.get(name).is_some()
    }

    /// Every file as (path in the snapshot, object, file).
    pub fn files(&self) -> impl Iterator<Item = (String, &Object, &ObjectFile)> {
        let layout = self.layout;
        self.objects().flat_map(move |object| {
            object.files.iter().map(move |file| (object.path_of(&file.key, layout), &**object, file))
        })
    }

    /// The bytes at `path`, if a file is there.
    #[must_use]
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let entry = self.tree.get(top_of(path))?;
        entry.members().iter().find_map(|member| {
            let key = if member.whole { path.split_once('/')?.1 } else { path };
            let object = &member.object;
            object.files.iter().find(|f| f.key == key).map(|f| object.content(f))
        })
    }

    /// Objects of `self` that `older` does not have in the same version (new or changed),
    /// found by comparing only the leaves that differ.
    #[must_use]
    pub(crate) fn changed_since(&self, older: Option<&Snapshot>) -> Vec<Arc<Object>> {
        let Some(older) = older else {
            return self.objects().cloned().collect();
        };
        let mut seen = HashSet::new();
        let mut changed = Vec::new();
        for (h0, h1) in self.tree.changed_leaves(&older.tree) {
            let before = &older.tree.leaf(h0, h1).entries;
            for (name, entry) in &self.tree.leaf(h0, h1).entries {
                for member in entry.members() {
                    let digest = member.object.digest;
                    let same = before.get(name).is_some_and(|b| b.has(&digest));
                    if !same && seen.insert(digest) {
                        changed.push(Arc::clone(&member.object));
                    }
                }
            }
        }
        changed
    }

    /// `self` with object `id` as `older` has it (or without it when `older` lacks it):
    /// the rest of a change when that object's new files cannot be written. `None` when
    /// an entry of its older version now belongs to another object. Scans the objects:
    /// for the failure path only.
    #[must_use]
    pub(crate) fn with_object_as_in(&self, id: &ObjectId, older: &Snapshot) -> Option<Snapshot> {
        let new = self.objects().find(|o| o.id == *id).cloned();
        let old = older.objects().find(|o| o.id == *id).cloned();
        if let Some(old) = &old {
            let mut seen = HashSet::new();
            let others = (old.tops(self.layout).into_iter())
                .filter_map(|top| self.tree.get(top))
                .flat_map(|entry| entry.members().iter().map(|m| &*m.object))
                .filter(|other| other.id != *id && seen.insert(&other.id));
            if claims::first_collision(self.layout, others, [&**old]).is_some() {
                return None;
            }
        }
        let mut rest = self.clone();
        rest.change([(new, old)]);
        Some(rest)
    }

    /// Names of objects that `older` has and `self` does not (deleted or replaced by an
    /// object of another kind).
    #[must_use]
    pub(crate) fn removed_since(&self, older: &Snapshot) -> Vec<String> {
        let changed: Vec<_> = self.tree.changed_leaves(&older.tree).collect();
        // An object still here sits in a changed leaf unless it is unchanged (then
        // its leaves are unchanged in `older` too).
        let mut present = HashSet::new();
        for &(h0, h1) in &changed {
            for entry in self.tree.leaf(h0, h1).entries.values() {
                present.extend(entry.members().iter().map(|m| &m.object.id));
            }
        }
        let mut removed = Vec::new();
        for &(h0, h1) in &changed {
            for entry in older.tree.leaf(h0, h1).entries.values() {
                for member in entry.members().iter().filter(|m| m.primary) {
                    if !present.contains(&member.object.id) {
                        removed.push(member.object.id.name.clone());
                    }
                }
            }
        }
        removed
    }
}

/// The first element of a relative path.
#[must_use]
pub(crate) fn top_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

#[cfg(test)]
#[path = "tests.rs"]
pub(crate) mod tests;
