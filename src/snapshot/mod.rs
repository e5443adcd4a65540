//! The snapshot: the complete set of files the app should see, with its content hash.
//!
//! Rendering (objects → files, with the key rules) lives in [`render`]; the manifest
//! written next to the files lives in [`manifest`].

pub mod manifest;
pub mod render;

use crate::source::SourceKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use manifest::Manifest;
pub use render::{Reason, Rejection, RenderOptions, Rendered, Renderer};

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

/// One file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Exact bytes.
    pub content: Bytes,
    /// Permission bits (e.g. `0o644`), applied regardless of umask.
    pub mode: u32,
    /// Index into [`Snapshot::sources`] of the object that produced it.
    pub source: usize,
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
    pub resource_version: String,
}

/// SHA-256 over every file's path, mode and bytes (not over source metadata, so a
/// relabel or a no-op update does not count as a change).
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

/// A complete, immutable set of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Relative path → file, sorted.
    pub files: BTreeMap<String, File>,
    /// Objects the files came from.
    pub sources: Vec<SourceRef>,
    /// Content hash of `files`.
    pub hash: ContentHash,
}

impl Snapshot {
    /// Builds a snapshot and computes its hash.
    #[must_use]
    pub fn new(files: BTreeMap<String, File>, sources: Vec<SourceRef>) -> Self {
        let hash = content_hash(&files);
        Self { files, sources, hash }
    }

    /// The entries visible at the top of the target dir (first path elements).
    #[must_use]
    pub fn top_level(&self) -> BTreeSet<&str> {
        self.files.keys().map(|p| top_of(p)).collect()
    }

    /// Sum of all file sizes in bytes.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.content.len() as u64).sum()
    }
}

/// The first element of a relative path.
#[must_use]
pub fn top_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Hash of a file set; see [`ContentHash`].
#[must_use]
pub fn content_hash(files: &BTreeMap<String, File>) -> ContentHash {
    let mut hasher = Sha256::new();
    for (path, file) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(file.mode.to_be_bytes());
        hasher.update((file.content.len() as u64).to_be_bytes());
        hasher.update(&file.content);
    }
    ContentHash(hasher.finalize().into())
}

/// Hex SHA-256 of one file's bytes (for the manifest).
#[must_use]
pub fn file_digest(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &'static str, mode: u32) -> File {
        File { content: Bytes::from_static(content.as_bytes()), mode, source: 0 }
    }

    #[test]
    fn hash_changes_with_content_mode_and_path_but_not_sources() {
        let base: BTreeMap<_, _> = [("a/x".to_string(), file("1", 0o644))].into();
        let h = content_hash(&base);
        let content: BTreeMap<_, _> = [("a/x".to_string(), file("2", 0o644))].into();
        let mode: BTreeMap<_, _> = [("a/x".to_string(), file("1", 0o600))].into();
        let path: BTreeMap<_, _> = [("a/y".to_string(), file("1", 0o644))].into();
        assert_ne!(h, content_hash(&content));
        assert_ne!(h, content_hash(&mode));
        assert_ne!(h, content_hash(&path));
        let snap = Snapshot::new(base.clone(), vec![]);
        assert_eq!(snap.hash, h);
        assert_eq!(snap.hash.to_string().parse::<ContentHash>(), Ok(h));
    }

    #[test]
    fn path_and_content_boundaries_are_unambiguous() {
        let a: BTreeMap<_, _> = [("ab".to_string(), file("c", 0o644))].into();
        let b: BTreeMap<_, _> = [("a".to_string(), file("bc", 0o644))].into();
        assert_ne!(content_hash(&a), content_hash(&b));
    }
}
