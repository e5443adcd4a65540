//! What a swap leaves unused: the nodes only the replaced generation referenced, and
//! whether a later generation uses one again before it is removed.

use super::Node;
use crate::snapshot::Snapshot;
use crate::snapshot::tree::{Entry, FANOUT, Leaf};
use std::collections::{HashMap, HashSet};

/// Nodes `old` uses that `new` does not: the old tree's nodes at every position whose
/// id changed (leaves, middle nodes) and the objects only those old leaves referenced.
pub(super) fn garbage(old: &Snapshot, new: &Snapshot) -> Vec<Garbage> {
    let (before, after) = (old.tree(), new.tree());
    let mut nodes = Vec::new();
    for h0 in 0..FANOUT {
        if let Some(mid) = before.mid(h0)
            && after.mid(h0) != Some(mid)
        {
            nodes.push(Garbage { node: Node::Tree(mid), slot: (h0, None) });
        }
    }
    let mut old_objects = HashMap::new();
    let mut kept_objects = HashSet::new();
    for (h0, h1) in after.changed_leaves(before) {
        let (was, is) = (before.leaf(h0, h1), after.leaf(h0, h1));
        if !was.entries.is_empty() {
            nodes.push(Garbage { node: Node::Tree(was.id), slot: (h0, Some(h1)) });
        }
        let kept_merged: HashSet<_> = is.entries.values().filter_map(Entry::merged).collect();
        let old_merged = was.entries.values().filter_map(Entry::merged);
        nodes.extend(
            old_merged
                .filter(|id| !kept_merged.contains(id))
                .map(|id| Garbage { node: Node::Tree(id), slot: (h0, Some(h1)) }),
        );
        let members = |leaf: &'_ Leaf| {
            leaf.entries.values().flat_map(|e| e.members()).map(|m| m.object.digest).collect::<Vec<_>>()
        };
        old_objects.extend(members(was).into_iter().map(|digest| (digest, (h0, h1))));
        kept_objects.extend(members(is));
    }
    nodes.extend(
        old_objects
            .into_iter()
            .filter(|(digest, _)| !kept_objects.contains(digest))
            .map(|(digest, (h0, h1))| Garbage { node: Node::Object(digest), slot: (h0, Some(h1)) }),
    );
    nodes
}

/// A node an earlier generation used, with the position it had there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Garbage {
    pub(super) node: Node,
    /// The middle node (and leaf) it sat in.
    slot: (usize, Option<usize>),
}

impl Garbage {
    /// True when `current` uses the node again (a rollback to content seen before, while
    /// the swap away from it was not persisted yet): it must stay.
    pub(super) fn in_use(&self, current: &Snapshot) -> bool {
        let tree = current.tree();
        match (self.node, self.slot) {
            (Node::Tree(id), (h0, None)) => tree.mid(h0) == Some(id),
            (Node::Tree(id), (h0, Some(h1))) => {
                let leaf = tree.leaf(h0, h1);
                !leaf.entries.is_empty()
                    && (leaf.id == id || leaf.entries.values().any(|e| e.merged() == Some(id)))
            }
            (Node::Object(digest), (h0, Some(h1))) => {
                tree.leaf(h0, h1).entries.values().any(|e| e.has(&digest))
            }
            (Node::Object(_), (_, None)) => false,
        }
    }
}
