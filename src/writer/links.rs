//! The visible links of the target dir (`<entry> -> ..data/<h0>/<h1>/<entry>`) and the clean-up of what an interrupted or refused swap leaves: the
//! parts of the writer that name entries rather than write content.

use super::guard::{Found, Repair};
use super::{
    ASIDE_PREFIX, DATA_LINK, DATA_TMP_LINK, Error, LINK_TMP, Node, OBJECTS_DIR, PROBE_PREFIX, State,
    TREE_DIR, VIEW_PREFIX, Writer, fsops, io, is_snapshot_dir_name, visible_link_target,
};
use crate::snapshot::Snapshot;
use crate::snapshot::tree::{ShortId, short};
use nix::fcntl::renameat;
use std::collections::BTreeSet;
use std::collections::HashSet;
use std::os::fd::OwnedFd;

impl Writer {
    /// Adds the visible link of every entry `snapshot` has and `previous` has not (all of
    /// them when there is no previous), putting right whatever else has that name without
    /// following it (see [`super::guard`]). Called *before* `..data` is swapped, so at
    /// every instant each entry of the current snapshot has its link (a link to an entry
    /// not swapped in yet dangles, like a missing file). Returns what had to be repaired.
    pub(super) fn add_visible_links(
        &self,
        snapshot: &Snapshot,
        previous: Option<&Snapshot>,
    ) -> Result<Vec<Repair>, Error> {
        let mut repairs = Vec::new();
        if !self.visible_links {
            return Ok(repairs);
        }
        for entry in new_entries(snapshot, previous) {
            match self.repair_link(entry)? {
                None | Some(Found::Missing) => {}
                Some(found) => repairs.push(Repair { entry: entry.to_owned(), found }),
            }
        }
        Ok(repairs)
    }

    /// Removes the visible links of entries `previous` had and `snapshot` has not.
    pub(super) fn remove_stale_links(
        &self,
        snapshot: &Snapshot,
        previous: Option<&Snapshot>,
    ) -> Result<(), Error> {
        let Some(previous) = previous.filter(|_| self.visible_links) else {
            return Ok(());
        };
        for entry in new_entries(previous, Some(snapshot)) {
            if self.is_our_link(entry) {
                fsops::remove_entry(&self.dir, entry).map_err(io(format!("remove link {entry}")))?;
            }
        }
        Ok(())
    }

    /// A link configsnap made for `entry`: to its slot, or (older versions) `..data/<entry>`.
    fn is_our_link(&self, entry: &str) -> bool {
        fsops::read_link(&self.dir, entry)
            .is_some_and(|t| t == visible_link_target(entry) || t == format!("{DATA_LINK}/{entry}"))
    }

    /// Removes what an interrupted swap may leave that is never part of a snapshot, and
    /// moves aside what someone else left under the names the swap needs. Best effort: a
    /// failure is logged, and the swap that needs the name reports it.
    pub(super) fn remove_temporaries(&self) {
        let names = match fsops::list(&self.dir) {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "listing the target dir failed; leftovers stay for now");
                return;
            }
        };
        for name in names {
            let result = if name == DATA_TMP_LINK || name == LINK_TMP || name == DATA_LINK {
                self.clear_reserved(&name, name != DATA_LINK)
            } else if name.starts_with(VIEW_PREFIX) || name.starts_with(PROBE_PREFIX) {
                tracing::info!(name, "removing a leftover of an interrupted swap");
                fsops::remove_tree(&self.dir, &name).map_err(io(format!("remove {name}")))
            } else {
                Ok(())
            };
            if let Err(error) = result {
                tracing::warn!(%error, name, "could not clear a leftover; the next swap retries");
            }
        }
    }

    /// Makes way for a link of ours named `name`: a symlink there is ours (or harmless)
    /// and is removed when `remove_links`; a real file or directory there is not ours,
    /// so it is renamed aside (never followed, never deleted), with a warning.
    pub(super) fn clear_reserved(&self, name: &str, remove_links: bool) -> Result<(), Error> {
        match fsops::kind_of(&self.dir, name).map_err(io(format!("stat {name}")))? {
            fsops::Kind::Missing => Ok(()),
            fsops::Kind::Symlink if remove_links => {
                tracing::debug!(name, "removing a leftover link");
                fsops::remove_entry(&self.dir, name).map_err(io(format!("remove {name}")))
            }
            fsops::Kind::Symlink => Ok(()),
            fsops::Kind::Directory | fsops::Kind::Other => {
                let aside =
                    format!("{ASIDE_PREFIX}{}-{:016x}", name.trim_start_matches('.'), rand::random::<u64>());
                renameat(&self.dir, name, &self.dir, aside.as_str())
                    .map_err(io(format!("move {name} aside to {aside}")))?;
                tracing::warn!(
                    name,
                    aside,
                    dir = %self.path.display(),
                    "a file or directory configsnap did not create had a name the swap needs; \
                     moved it aside (remove it when it is not needed)"
                );
                Ok(())
            }
        }
    }

    /// Removes everything of ours that the current snapshot does not use: roots other
    /// than the current one, nodes it does not reference, visible links of entries it
    /// does not have. O(what is on disk): at start, and after a swap that left garbage.
    pub(super) fn sweep(&self, state: &mut State) -> Result<(), Error> {
        // The validation view goes with the other temporaries; the next stage rebuilds it.
        state.view = None;
        self.remove_temporaries();
        let current = state.current.as_ref();
        let root = current.map(|(_, r)| r.as_str());
        let entries: BTreeSet<&str> = current.map(|(s, _)| s.top_level().collect()).unwrap_or_default();
        for name in fsops::list(&self.dir).map_err(io("list the target dir"))? {
            let orphan_root = is_snapshot_dir_name(&name)
                && Some(name.as_str()) != root
                && !Self::is_retained_root(state, &name);
            if orphan_root {
                tracing::info!(name, "removing a snapshot root nothing points at");
                fsops::remove_tree(&self.dir, &name).map_err(io(format!("remove {name}")))?;
            } else if self.visible_links
                && !name.starts_with("..")
                && !entries.contains(name.as_str())
                && self.is_our_link(&name)
            {
                fsops::remove_entry(&self.dir, &name).map_err(io(format!("remove link {name}")))?;
            }
        }
        let (mut objects, mut nodes) = (HashSet::new(), HashSet::new());
        for node in &state.present {
            match node {
                Node::Object(id) => objects.insert(short(id)),
                Node::Tree(id) => nodes.insert(short(id)),
            };
        }
        self.sweep_nodes(&objects, &self.objects, OBJECTS_DIR)?;
        self.sweep_nodes(&nodes, &self.tree, TREE_DIR)
    }

    /// Removes every entry of `parent` that is not the name of a node in `present`.
    fn sweep_nodes(&self, present: &HashSet<ShortId>, parent: &OwnedFd, label: &str) -> Result<(), Error> {
        for name in fsops::list(parent).map_err(io(format!("list {label}")))? {
            let used = crate::snapshot::tree::parse_node_name(&name).is_some_and(|id| present.contains(&id));
            if !used {
                tracing::debug!(name, "removing an unused node");
                fsops::remove_tree(parent, &name).map_err(io(format!("remove {label}/{name}")))?;
            }
        }
        Ok(())
    }
}

/// Entries of `snapshot` that `previous` lacks (all when there is none), from the leaves
/// that differ only.
fn new_entries<'a>(snapshot: &'a Snapshot, previous: Option<&'a Snapshot>) -> Vec<&'a str> {
    let Some(previous) = previous else {
        return snapshot.top_level().collect();
    };
    let (now, before) = (snapshot.tree(), previous.tree());
    now.changed_leaves(before)
        .flat_map(|(h0, h1)| {
            let old = &before.leaf(h0, h1).entries;
            now.leaf(h0, h1).entries.keys().filter(move |name| !old.contains_key(*name)).map(String::as_str)
        })
        .collect()
}
