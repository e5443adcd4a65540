//! `..manifest.json`: what a snapshot directory holds, written inside it, so any reader
//! (the app, an operator, the crash checker, a restart) can tell what it is and verify it.

use super::{ContentHash, File, Layout, Snapshot, SourceRef, file_digest};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// File name of the manifest inside a snapshot directory.
pub const MANIFEST_FILE: &str = "..manifest.json";

/// Current manifest format.
pub const FORMAT: u32 = 1;

/// What configuration produced a snapshot; a last-good copy from another origin is foreign.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// Namespace watched (empty for directory sources).
    pub namespace: String,
    /// Label selector.
    pub selector: String,
    /// Layout of paths.
    pub layout: Layout,
}

/// One file's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Index into `sources`.
    pub source: usize,
}

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// Content hash of all files.
    pub hash: String,
    /// What produced it.
    pub origin: Origin,
    /// RFC 3339 creation time.
    pub created: String,
    /// Objects the files came from.
    pub sources: Vec<SourceRef>,
    /// Every file.
    pub files: Vec<ManifestFile>,
}

/// A manifest that does not describe the files next to it.
#[derive(Debug, Error)]
pub enum Error {
    /// Not valid JSON or not a manifest.
    #[error("failed to parse manifest: {0}")]
    Parse(#[source] serde_json::Error),
    /// Written by an unknown version.
    #[error("unsupported manifest format {0}")]
    Format(u32),
    /// A file is missing or differs from its record.
    #[error("file {0:?} does not match the manifest")]
    Mismatch(String),
    /// The recorded hash is not the hash of the files.
    #[error("manifest hash {recorded} does not match the files ({actual})")]
    Hash {
        /// What the manifest says.
        recorded: String,
        /// What the files hash to.
        actual: ContentHash,
    },
}

// === impl Manifest ===

impl Manifest {
    /// Describes a snapshot.
    #[must_use]
    pub fn describe(snapshot: &Snapshot, origin: &Origin) -> Self {
        let files = snapshot
            .files
            .iter()
            .map(|(path, file)| ManifestFile {
                path: path.clone(),
                size: file.content.len() as u64,
                mode: file.mode,
                sha256: file_digest(&file.content),
                source: file.source,
            })
            .collect();
        Self {
            format: FORMAT,
            hash: snapshot.hash.to_string(),
            origin: origin.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            sources: snapshot.sources.clone(),
            files,
        }
    }

    /// Parses a manifest file.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(Error::Parse)?;
        if manifest.format != FORMAT {
            return Err(Error::Format(manifest.format));
        }
        Ok(manifest)
    }

    /// Serialises to pretty JSON.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        out.push(b'\n');
        out
    }

    /// Rebuilds the snapshot from file contents read from disk, checking every size,
    /// digest and the overall hash. `read` returns the bytes of a relative path.
    pub fn verify<E>(&self, mut read: impl FnMut(&str) -> Result<Bytes, E>) -> Result<Snapshot, Error> {
        let mut files = BTreeMap::new();
        for record in &self.files {
            let content = read(&record.path).map_err(|_| Error::Mismatch(record.path.clone()))?;
            let intact = content.len() as u64 == record.size
                && record.source < self.sources.len()
                && file_digest(&content) == record.sha256;
            if !intact {
                return Err(Error::Mismatch(record.path.clone()));
            }
            let file = File { content, mode: record.mode, source: record.source };
            files.insert(record.path.clone(), file);
        }
        let snapshot = Snapshot::new(files, self.sources.clone());
        if snapshot.hash.to_string() != self.hash {
            return Err(Error::Hash { recorded: self.hash.clone(), actual: snapshot.hash });
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceKind;

    fn sample() -> Snapshot {
        let files =
            [("web/a".to_string(), File { content: Bytes::from_static(b"hello"), mode: 0o640, source: 0 })]
                .into();
        let source = SourceRef {
            kind: SourceKind::ConfigMap,
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u".into(),
            resource_version: "3".into(),
        };
        Snapshot::new(files, vec![source])
    }

    #[test]
    fn manifest_round_trips_and_verifies_the_files() {
        let snap = sample();
        let manifest = Manifest::describe(&snap, &Origin::default());
        let parsed = Manifest::parse(&manifest.to_json()).expect("parses");
        let rebuilt = parsed.verify(|_| Ok::<_, ()>(Bytes::from_static(b"hello"))).expect("verifies");
        assert_eq!(rebuilt, snap);
    }

    #[test]
    fn a_changed_or_missing_file_fails_verification() {
        let manifest = Manifest::describe(&sample(), &Origin::default());
        let changed = manifest.verify(|_| Ok::<_, ()>(Bytes::from_static(b"hellO")));
        assert!(matches!(changed, Err(Error::Mismatch(_))));
        let missing = manifest.verify(|_| Err::<Bytes, _>(()));
        assert!(matches!(missing, Err(Error::Mismatch(_))));
        assert!(Manifest::parse(b"{\"format\":1").is_err());
    }
}
