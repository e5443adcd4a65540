//! The snapshot's shape: a fixed two-level hash trie over the top-level entries, so a
//! change touches one leaf, one middle node and the root, whatever the number of objects.
//!
//! Every top-level entry (`web` in by-name layout, `nginx.conf` in flat) sits in leaf
//! `(h0, h1)`, the first two hex digits of the SHA-256 of its name: a position that
//! depends on the name only, so the app's visible link `web -> ..data/<h0>/<h1>/web`
//! never changes. 16 × 16 leaves keep every node small: at 5,000 entries a leaf holds
//! about 20, and the root and a middle node at most 16 each.
//!
//! Node ids are Merkle digests (a leaf over its entries' names and objects' digests, a
//! middle node over its leaves' ids, the root over the middle nodes' ids), so the root id
//! is the content hash of the whole snapshot and equal ids mean equal subtrees: the
//! writer reuses every node whose id is already on disk. Pure: no I/O.
//!
//! An entry is usually one object's (its directory, or one name in it). Several objects
//! that name the same target dir (`configsnap.io/target-dir`) share one **merged**
//! entry: a small node of its own, one link per name inside the dir to the object that
//! provides it, with an id over the entry name and its members' digests. Objects stay
//! the content-addressed dirs of their own files, so updating one member rewrites that
//! object and the merged node's links, never the other members' files.

use super::object::{Digest32, Object};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Children of the root and of each middle node.
pub(crate) const FANOUT: usize = 16;

/// One object's part in a top-level entry.
#[derive(Debug, Clone)]
pub struct Member {
    /// The object.
    pub object: Arc<Object>,
    /// True when the entry is the object's whole directory (by-name layout, or a target
    /// dir); false when it is one top-level name inside it (flat layout).
    pub whole: bool,
    /// True for exactly one entry of each object (for counting and listing objects).
    pub(crate) primary: bool,
}

/// One top-level entry: the object that provides it, or the objects that share it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Providers, sorted by object id: one, or several whole directories (a merged dir).
    members: Vec<Member>,
    /// Id of the merged node when there are several members.
    merged: Option<Digest32>,
}

/// A leaf: the entries whose names hash to its position.
#[derive(Debug, Clone, Default)]
pub struct Leaf {
    /// Entry name → entry.
    pub entries: BTreeMap<String, Entry>,
    /// Merkle id (meaningless when empty).
    pub id: Digest32,
}

/// The trie. Cloning is cheap (shared leaves); a change copies only the leaves it touches.
#[derive(Debug, Clone)]
pub struct Tree {
    leaves: Vec<Arc<Leaf>>,
    mids: [Option<Digest32>; FANOUT],
    root: Digest32,
    totals: Totals,
}

/// Running counts over every object of a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Objects.
    pub objects: u64,
    /// Files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

// === impl Entry ===

impl Entry {
    /// The entry `name` provided by `members` (at least one; several only when every one
    /// is a whole directory whose names inside do not collide); `None` when empty.
    #[must_use]
    pub fn of(name: &str, mut members: Vec<Member>) -> Option<Self> {
        members.sort_by(|a, b| a.object.id.cmp(&b.object.id));
        let merged = match members.len() {
            0 => return None,
            1 => None,
            _ => Some(merged_digest(name, &members)),
        };
        Some(Self { members, merged })
    }

    /// Its providers, sorted by object id.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The only provider; `None` for a merged entry.
    #[must_use]
    pub(crate) fn single_member(&self) -> Option<&Member> {
        match &self.members[..] {
            [only] => Some(only),
            _ => None,
        }
    }

    /// The merged node's id, when several objects share the entry.
    #[must_use]
    pub(crate) fn merged(&self) -> Option<Digest32> {
        self.merged
    }

    /// The id its leaf link names: the merged node's, else the object's.
    #[must_use]
    pub(crate) fn target_id(&self) -> Digest32 {
        self.merged.unwrap_or(self.members[0].object.digest)
    }

    /// True when the object version `digest` provides (part of) it.
    #[must_use]
    pub fn has(&self, digest: &Digest32) -> bool {
        self.members.iter().any(|m| m.object.digest == *digest)
    }

    /// Each name inside a merged entry with the object providing it, in name order.
    #[must_use]
    pub(crate) fn merged_links(&self) -> BTreeMap<&str, &Arc<Object>> {
        self.members.iter().flat_map(|m| m.object.components().map(move |c| (c, &m.object))).collect()
    }
}

// === impl Tree ===

impl Default for Tree {
    fn default() -> Self {
        // One shared empty leaf: a leaf is copied when it is first changed.
        let empty = Arc::new(Leaf::default());
        let mut tree = Self {
            leaves: (0..FANOUT * FANOUT).map(|_| Arc::clone(&empty)).collect(),
            mids: [None; FANOUT],
            root: [0; 32],
            totals: Totals::default(),
        };
        tree.root = tree.root_digest();
        tree
    }
}

impl Tree {
    /// The leaf position of an entry name: `(h0, h1)`.
    #[must_use]
    pub fn slot(name: &str) -> (usize, usize) {
        let first = Sha256::digest(name.as_bytes())[0];
        (usize::from(first >> 4), usize::from(first & 0x0f))
    }

    /// Applies entry changes (`None` removes) and recomputes the ids they touch.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = (String, Option<Entry>)>) {
        let mut dirty = [false; FANOUT * FANOUT];
        for (name, entry) in changes {
            let (h0, h1) = Self::slot(&name);
            let index = h0 * FANOUT + h1;
            let leaf = Arc::make_mut(&mut self.leaves[index]);
            if let Some(old) = leaf.entries.remove(&name) {
                self.totals.count(&old, false);
            }
            if let Some(entry) = entry {
                self.totals.count(&entry, true);
                leaf.entries.insert(name, entry);
            }
            dirty[index] = true;
        }
        let mut dirty_mids = [false; FANOUT];
        for (index, _) in dirty.iter().enumerate().filter(|(_, d)| **d) {
            let leaf = Arc::make_mut(&mut self.leaves[index]);
            leaf.id = leaf_digest(leaf);
            dirty_mids[index / FANOUT] = true;
        }
        for (h0, _) in dirty_mids.iter().enumerate().filter(|(_, d)| **d) {
            self.mids[h0] = self.mid_digest(h0);
        }
        self.root = self.root_digest();
    }

    /// The root id: the content hash of the snapshot.
    #[must_use]
    pub fn root(&self) -> Digest32 {
        self.root
    }

    /// Counts over every object.
    #[must_use]
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Middle node `h0`'s id, if it has any entry.
    #[must_use]
    pub(crate) fn mid(&self, h0: usize) -> Option<Digest32> {
        self.mids[h0]
    }

    /// Leaf `(h0, h1)`.
    #[must_use]
    pub fn leaf(&self, h0: usize, h1: usize) -> &Leaf {
        &self.leaves[h0 * FANOUT + h1]
    }

    /// Every entry, leaf by leaf.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.leaves.iter().flat_map(|leaf| leaf.entries.iter())
    }

    /// The entry of that name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Entry> {
        let (h0, h1) = Self::slot(name);
        self.leaf(h0, h1).entries.get(name)
    }

    /// Positions whose leaf differs between `self` and `other` (O(1) per unchanged leaf:
    /// shared leaves compare by pointer, others by id).
    pub(crate) fn changed_leaves<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = (usize, usize)> + 'a {
        (0..FANOUT * FANOUT)
            .filter(move |&i| {
                let (a, b) = (&self.leaves[i], &other.leaves[i]);
                !Arc::ptr_eq(a, b) && (a.entries.is_empty() != b.entries.is_empty() || a.id != b.id)
            })
            .map(|i| (i / FANOUT, i % FANOUT))
    }

    fn mid_digest(&self, h0: usize) -> Option<Digest32> {
        let mut hasher = Sha256::new();
        hasher.update(b"configsnap mid\0");
        let mut any = false;
        for h1 in 0..FANOUT {
            let leaf = self.leaf(h0, h1);
            if !leaf.entries.is_empty() {
                any = true;
                hasher.update([h1 as u8]);
                hasher.update(leaf.id);
            }
        }
        any.then(|| hasher.finalize().into())
    }

    fn root_digest(&self) -> Digest32 {
        let mut hasher = Sha256::new();
        hasher.update(b"configsnap root\0");
        for (h0, mid) in self.mids.iter().enumerate() {
            if let Some(id) = mid {
                hasher.update([h0 as u8]);
                hasher.update(id);
            }
        }
        hasher.finalize().into()
    }
}

// === impl Totals ===

impl Totals {
    /// Adds (or removes) the objects whose primary entry `entry` is: each object once.
    fn count(&mut self, entry: &Entry, add: bool) {
        for member in entry.members.iter().filter(|m| m.primary) {
            let (files, bytes) = (member.object.files.len() as u64, member.object.bytes());
            if add {
                self.objects += 1;
                self.files += files;
                self.bytes += bytes;
            } else {
                self.objects -= 1;
                self.files -= files;
                self.bytes -= bytes;
            }
        }
    }
}

fn leaf_digest(leaf: &Leaf) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(b"configsnap leaf\0");
    for (name, entry) in &leaf.entries {
        hasher.update(name.as_bytes());
        match entry.single_member() {
            Some(only) => hasher.update([0, u8::from(only.whole)]),
            None => hasher.update([0, 2]),
        }
        hasher.update(entry.target_id());
    }
    hasher.finalize().into()
}

/// The id of a merged entry: its name and its members' digests (which cover their keys,
/// hence every link of the node).
fn merged_digest(name: &str, members: &[Member]) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(b"configsnap merged\0");
    hasher.update(name.as_bytes());
    hasher.update([0]);
    for member in members {
        hasher.update(member.object.digest);
    }
    hasher.finalize().into()
}

/// The first 128 bits of a node id: what its name on disk says.
pub(crate) type ShortId = [u8; 16];

/// Letters of the node names: base32 in lower case.
const NAME_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of a node name: 128 bits, 5 per character.
const NAME_LEN: usize = 26;

/// The first 128 bits of `id`.
#[must_use]
pub(crate) fn short(id: &Digest32) -> ShortId {
    let mut out = [0; 16];
    out.copy_from_slice(&id[..16]);
    out
}

/// Name of a node's directory on disk: its id's first 128 bits in 26 base32 letters.
/// Short on purpose: every link to a node then fits in the inode (ext4 stores a symlink
/// target under 60 bytes inline; a longer one costs a data block and its allocation).
#[must_use]
pub fn node_name(id: &Digest32) -> String {
    let value = u128::from_be_bytes(short(id));
    (0..NAME_LEN)
        .map(|i| {
            let shift = 5 * (NAME_LEN - 1 - i);
            char::from(NAME_ALPHABET[((value >> shift) & 0x1f) as usize])
        })
        .collect()
}

/// The [`ShortId`] a node name stands for; `None` unless it is exactly a name made by
/// [`node_name`].
#[must_use]
pub fn parse_node_name(name: &str) -> Option<ShortId> {
    if name.len() != NAME_LEN {
        return None;
    }
    let mut value: u128 = 0;
    for (i, c) in name.bytes().enumerate() {
        let digit = NAME_ALPHABET.iter().position(|&a| a == c)? as u128;
        // The first letter carries the top 3 bits only (26 × 5 = 130).
        if i == 0 && digit >= 8 {
            return None;
        }
        value = (value << 5) | digit;
    }
    Some(value.to_be_bytes())
}

/// The hex digit naming child `index` of the root or of a middle node.
#[must_use]
pub(crate) fn digit(index: usize) -> char {
    char::from_digit(index as u32, 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_short_and_parse_back() {
        for byte in [0_u8, 1, 0x7f, 0xff] {
            let id = [byte; 32];
            let name = node_name(&id);
            assert_eq!(name.len(), 26);
            assert_eq!(parse_node_name(&name), Some(short(&id)), "{name}");
        }
        for bad in
            ["", "a", &"a".repeat(27), &"A".repeat(26), &format!("9{}", "a".repeat(25)), &"z".repeat(26)]
        {
            assert_eq!(parse_node_name(bad), None, "{bad}");
        }
        let link = format!("../../..objects/{}", node_name(&[9; 32]));
        assert!(link.len() < 60, "a leaf's link fits an ext4 inode: {link}");
    }
}
