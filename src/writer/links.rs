//! The visible links of the target dir (`<entry> -> ..data/<entry>`) and the clean-up of
//! an interrupted swap's leftovers: the parts of the swap that name entries, not files.

use super::{DATA_LINK, DATA_TMP_LINK, Error, LINK_TMP, Writer, fsops, io, is_snapshot_dir_name};
use crate::snapshot::Snapshot;
use nix::fcntl::{readlinkat, renameat};
use nix::unistd::symlinkat;
use std::collections::BTreeSet;

impl Writer {
    /// Adds `<entry> -> ..data/<entry>` for every top-level entry of `snapshot`, replacing
    /// a planted link of that name (without following it). Called *before* `..data` is
    /// swapped, so at every instant each entry of the current snapshot has its link (a
    /// link to an entry not swapped in yet dangles, like a missing file). A real file or
    /// dir of that name is not ours: it is left alone.
    pub(super) fn add_visible_links(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let wanted: BTreeSet<&str> = snapshot.top_level();
        for entry in &wanted {
            let target = format!("{DATA_LINK}/{entry}");
            match fsops::kind_of(&self.dir, entry).map_err(io(format!("stat {entry}")))? {
                fsops::Kind::Missing => {
                    symlinkat(target.as_str(), &self.dir, *entry).map_err(io(format!("link {entry}")))?
                }
                fsops::Kind::Symlink => {
                    if self.link_target(entry).as_deref() != Some(target.as_str()) {
                        tracing::warn!(entry, "replacing a symlink configsnap did not create");
                        self.replace_link(entry, &target)?;
                    }
                }
                fsops::Kind::Directory | fsops::Kind::Other => {
                    tracing::warn!(
                        entry,
                        dir = %self.path.display(),
                        "a file or directory configsnap did not create has this name; \
                         the entry is reachable only through {DATA_LINK}/{entry}"
                    );
                }
            }
        }
        Ok(())
    }

    fn replace_link(&self, entry: &str, target: &str) -> Result<(), Error> {
        fsops::remove_entry(&self.dir, LINK_TMP).map_err(io(format!("remove {LINK_TMP}")))?;
        symlinkat(target, &self.dir, LINK_TMP).map_err(io(format!("link {LINK_TMP}")))?;
        renameat(&self.dir, LINK_TMP, &self.dir, entry).map_err(io(format!("rename over {entry}")))
    }

    fn link_target(&self, entry: &str) -> Option<String> {
        readlinkat(&self.dir, entry).ok().map(|t| t.to_string_lossy().into_owned())
    }

    /// Removes links `<x> -> ..data/<x>` (ours) whose entry is not wanted.
    pub(super) fn remove_stale_links(&self, wanted: &BTreeSet<&str>) -> Result<(), Error> {
        for name in fsops::list(&self.dir).map_err(io("list the target dir"))? {
            if name.starts_with("..") || wanted.contains(name.as_str()) {
                continue;
            }
            if self.link_target(&name).as_deref() == Some(&format!("{DATA_LINK}/{name}")) {
                fsops::remove_entry(&self.dir, &name).map_err(io(format!("remove link {name}")))?;
            }
        }
        Ok(())
    }

    pub(super) fn clean_leftovers(&self) -> Result<(), Error> {
        let current = match self.current_dir_name() {
            Ok(current) => current,
            Err(Error::ForeignData(target)) => {
                tracing::warn!(target, "{DATA_LINK} is not ours; it will be replaced at the next swap");
                None
            }
            Err(err) => return Err(err),
        };
        for name in fsops::list(&self.dir).map_err(io("list the target dir"))? {
            let orphan = is_snapshot_dir_name(&name) && current.as_deref() != Some(name.as_str());
            if name == DATA_TMP_LINK || name == LINK_TMP || orphan {
                tracing::info!(name, "removing a leftover of an interrupted swap");
                fsops::remove_tree(&self.dir, &name).map_err(io(format!("remove {name}")))?;
            }
        }
        match current {
            Some(_) => Ok(()),
            None => self.remove_stale_links(&BTreeSet::new()),
        }
    }
}
