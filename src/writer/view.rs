//! The view a validation command reads: the staged snapshot laid out at its app-visible
//! paths (`web/nginx.conf`) as real directories and regular files, so that any tool that
//! walks a tree without following links (`grep -r`, `find`, Go's `filepath.WalkDir`,
//! `yamllint DIR`) sees every file.
//!
//! Files are hard links to the content-addressed files of the staged objects: no byte is
//! copied, and building the view costs one `mkdir` per directory and one `link` per file.
//! It is built only when a validation command is configured, and removed at commit or
//! discard. At most one directory per level of the path being filled is open at a time.

use super::{Error, OBJECTS_DIR, VIEW_PREFIX, Writer, fsops, io};
use crate::snapshot::Snapshot;
use std::os::fd::OwnedFd;

/// Directories of the view: read and search for all, like the snapshot's own.
const VIEW_DIR_MODE: u32 = 0o755;

impl Writer {
    /// Creates the view of `snapshot` (staged, so its objects are on disk) and returns its
    /// name inside the target dir. A failure removes what was made.
    pub(super) fn make_view(&self, snapshot: &Snapshot) -> Result<String, Error> {
        let name = format!("{VIEW_PREFIX}{:016x}", rand::random::<u64>());
        let root = fsops::make_dir(&self.dir, &name, VIEW_DIR_MODE).map_err(io(format!("create {name}")))?;
        if let Err(err) = self.fill_view(&root, &name, snapshot) {
            drop(root);
            let _ = fsops::remove_tree(&self.dir, &name);
            return Err(err);
        }
        Ok(name)
    }

    fn fill_view(&self, root: &OwnedFd, name: &str, snapshot: &Snapshot) -> Result<(), Error> {
        let mut files: Vec<(String, String)> = snapshot
            .files()
            .map(|(path, object, file)| (path, format!("{}/{}", object.dir_name(), file.key)))
            .collect();
        // By path elements, so each directory's files come together.
        files.sort_unstable_by(|(a, _), (b, _)| a.split('/').cmp(b.split('/')));
        let mut open = OpenDirs { root, stack: Vec::new() };
        let mut source: Option<(&str, OwnedFd)> = None;
        for (path, content) in &files {
            let (parent, leaf) = match path.rsplit_once('/') {
                Some((parent, leaf)) => (parent, leaf),
                None => ("", path.as_str()),
            };
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

    pub(super) fn remove_view(&self, view: Option<String>) {
        if let Some(name) = view
            && let Err(error) = fsops::remove_tree(&self.dir, &name)
        {
            tracing::warn!(%error, name, "removing the validation view failed; it is cleaned at the next sweep");
        }
    }
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
