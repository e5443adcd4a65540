//! Reading what the sidecar left on disk with plain std, independently of the product's
//! own reader.

use std::collections::BTreeMap;
use std::path::Path;

/// Every entry below `dir` that is not a directory, by relative path: a regular file's
/// bytes, a symlink's target (links are never followed), found as a walker that follows
/// no link sees them.
#[must_use]
pub fn tree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("list {}: {e}", at.display())) {
            let entry = entry.expect("a directory entry");
            let kind = entry.file_type().expect("its type");
            let rel = entry.path().strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_symlink() {
                found.insert(
                    rel,
                    Entry::Link(std::fs::read_link(entry.path()).expect("a link").display().to_string()),
                );
            } else {
                found.insert(rel, Entry::File(std::fs::read(entry.path()).expect("a file")));
            }
        }
    }
    found
}

/// What [`tree`] found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file (or anything else that is not a link) and its bytes.
    File(Vec<u8>),
    /// A symlink and its target.
    Link(String),
}

/// The names in `dir` that start with `prefix`, sorted.
#[must_use]
pub fn names_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}
