//! The view a validation command reads: the staged snapshot laid out at its app-visible
//! paths (`web/nginx.conf`) as real directories and regular files, so that any tool that
//! walks a tree without following links (`grep -r`, `find`, Go's `filepath.WalkDir`,
//! `yamllint DIR`) sees every file.
//!
//! Files are hard links to the content-addressed files of the staged objects: no byte is
//! copied. The view is built once (one `mkdir` per directory and one `link` per file) and
//! then kept: each later stage changes only the entries that differ from the snapshot it
//! shows, so a validated update costs what changed, not the size of the namespace. Only
//! the validation command reads it, between a stage and its commit or discard. It exists
//! only when a validation command is configured; a leftover is removed at start. After a
//! refused stage it goes back to the current snapshot (or away, when there is none), so
//! refused content never lingers; its own directory is 0700. At most one directory per
//! level of the path being filled is open at a time.

use super::{Error, OBJECTS_DIR, State, VIEW_PREFIX, Writer, fsops, io};
use crate::snapshot::{Layout, Snapshot, top_of};
use std::os::fd::OwnedFd;

/// The view's own directory: the sidecar's alone (the app sharing the volume has no
/// business with a snapshot that is not swapped in yet).
const VIEW_ROOT_MODE: u32 = 0o700;
/// Directories inside the view, like the snapshot's own.
const VIEW_DIR_MODE: u32 = 0o755;

/// The view on disk and the snapshot it shows.
#[derive(Debug)]
pub(super) struct View {
    /// Its name in the target dir (`..staged-<hex>`).
    pub(super) name: String,
    shows: Snapshot,
}

impl Writer {
    /// Makes the view show `snapshot` (staged, so its objects are on disk): updates the
    /// entries that changed since the last time, or builds it whole. Returns its name.
    pub(super) fn show_in_view(&self, state: &mut State, snapshot: &Snapshot) -> Result<String, Error> {
        if let Some(view) = state.view.take() {
            match self.update_view(&view, snapshot) {
                Ok(()) => {
                    let name = view.name.clone();
                    state.view = Some(View { name: view.name, shows: snapshot.clone() });
                    return Ok(name);
                }
                Err(error) => {
                    tracing::warn!(%error, "updating the validation view failed; building it anew");
                    let _ = fsops::remove_tree(&self.dir, &view.name);
                }
            }
        }
        let name = self.make_view(snapshot)?;
        state.view = Some(View { name: name.clone(), shows: snapshot.clone() });
        Ok(name)
    }

    /// Puts the view back to the snapshot `..data` points at (or removes it when there is
    /// none), after a stage it showed was refused.
    pub(super) fn unshow_refused(&self, state: &mut State) {
        let Some(view) = state.view.take() else { return };
        if let Some((current, _)) = state.current.as_ref()
            && self.update_view(&view, current).is_ok()
        {
            state.view = Some(View { name: view.name, shows: current.clone() });
            return;
        }
        if let Err(error) = fsops::remove_tree(&self.dir, &view.name) {
            tracing::warn!(%error, name = view.name, "removing the validation view failed; it is cleaned at the next start");
        }
    }

    /// Builds a new view of `snapshot`; a failure removes what was made.
    fn make_view(&self, snapshot: &Snapshot) -> Result<String, Error> {
        let name = format!("{VIEW_PREFIX}{:016x}", rand::random::<u64>());
        let root = fsops::make_dir(&self.dir, &name, VIEW_ROOT_MODE).map_err(io(format!("create {name}")))?;
        let files = snapshot
            .files()
            .map(|(path, object, file)| (path, format!("{}/{}", object.dir_name(), file.key)))
            .collect();
        if let Err(err) = self.link_files(&root, &name, files) {
            drop(root);
            let _ = fsops::remove_tree(&self.dir, &name);
            return Err(err);
        }
        Ok(name)
    }

    /// Brings `view` from the snapshot it shows to `snapshot`: every entry whose content
    /// changed is removed and laid out again; entries that went are removed.
    fn update_view(&self, view: &View, snapshot: &Snapshot) -> Result<(), Error> {
        let root = fsops::open_dir(&self.dir, &view.name).map_err(io(format!("open {}", view.name)))?;
        let (before, after) = (view.shows.tree(), snapshot.tree());
        for (h0, h1) in after.changed_leaves(before) {
            let (old, new) = (&before.leaf(h0, h1).entries, &after.leaf(h0, h1).entries);
            let names = old.keys().chain(new.keys().filter(|n| !old.contains_key(*n)));
            for entry in names {
                let (was, is) = (old.get(entry), new.get(entry));
                if was.map(|e| e.target_id()) == is.map(|e| e.target_id()) {
                    continue;
                }
                fsops::remove_tree(&root, entry).map_err(io(format!("remove {}/{entry}", view.name)))?;
                if let Some(is) = is {
                    let files = entry_files(entry, is, snapshot.layout());
                    self.link_files(&root, &view.name, files)?;
                }
            }
        }
        Ok(())
    }

    /// Hard-links each `(visible path, content path below ..objects)` into the view.
    fn link_files(&self, root: &OwnedFd, name: &str, mut files: Vec<(String, String)>) -> Result<(), Error> {
        // By path elements, so each directory's files come together.
        files.sort_unstable_by(|(a, _), (b, _)| a.split('/').cmp(b.split('/')));
        let mut open = OpenDirs { root, stack: Vec::new() };
        let mut source: Option<(&str, OwnedFd)> = None;
        for (path, content) in &files {
            let (parent, leaf) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            let dir = open.at(parent).map_err(io(format!("create {name}/{parent}")))?;
            let (content_dir, content_leaf) = content.rsplit_once('/').unwrap_or(("", content));
            if source.as_ref().is_none_or(|(open, _)| *open != content_dir) {
                let fd = fsops::walk(&self.objects, content_dir)
                    .map_err(io(format!("open {OBJECTS_DIR}/{content_dir}")))?;
                source = Some((content_dir, fd));
            }
            let (_, from) = source.as_ref().expect("the content dir was just opened");
            fsops::hard_link(from, content_leaf, dir, leaf).map_err(io(format!("link {name}/{path}")))?;
        }
        Ok(())
    }
}

/// The files of one top-level entry: (visible path, content path below `..objects`).
fn entry_files(name: &str, entry: &crate::snapshot::tree::Entry, layout: Layout) -> Vec<(String, String)> {
    entry
        .members()
        .iter()
        .flat_map(|member| {
            let object = &member.object;
            object.files.iter().filter_map(move |file| {
                let path = object.path_of(&file.key, layout);
                (top_of(&path) == name).then(|| (path, format!("{}/{}", object.dir_name(), file.key)))
            })
        })
        .collect()
}

/// The chain of directories from the view's root to the one being filled; paths come in
/// sorted order, so a directory is left for good once a path outside it comes.
struct OpenDirs<'a> {
    root: &'a OwnedFd,
    /// (element, its fd) for each level below the root.
    stack: Vec<(String, OwnedFd)>,
}

impl OpenDirs<'_> {
    /// The directory at `parent` (`a/b`, or "" for the root), created on first use.
    fn at(&mut self, parent: &str) -> Result<&OwnedFd, nix::errno::Errno> {
        let wanted: Vec<&str> = if parent.is_empty() { Vec::new() } else { parent.split('/').collect() };
        let common = self.stack.iter().zip(&wanted).take_while(|((have, _), want)| have == *want).count();
        self.stack.truncate(common);
        for element in &wanted[common..] {
            let at = self.stack.last().map_or(self.root, |(_, fd)| fd);
            let fd = match fsops::kind_of(at, element)? {
                fsops::Kind::Directory => fsops::open_dir(at, element)?,
                _ => fsops::make_dir(at, element, VIEW_DIR_MODE)?,
            };
            self.stack.push(((*element).to_owned(), fd));
        }
        Ok(self.stack.last().map_or(self.root, |(_, fd)| fd))
    }
}
