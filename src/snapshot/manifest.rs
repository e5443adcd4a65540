//! `..manifest.json`: what a snapshot holds, written next to what it describes, so any
//! reader (an operator, the crash checker, a restart) can tell what it is and verify it.
//!
//! Two documents, so that a change rewrites only what it touches:
//! - the **root manifest** in each snapshot root dir: format, content hash, origin,
//!   creation time and totals ([`RootManifest`]);
//! - an **object manifest** in each object's content-addressed dir: where the object came
//!   from (kind, namespace, name, uid, resourceVersion) and its files with size, mode and
//!   SHA-256 ([`ObjectManifest`]).

use super::object::{Object, ObjectFile};
use super::{ContentHash, Layout, Snapshot, SourceRef};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// File name of a manifest inside a snapshot root dir or an object dir.
pub(crate) const MANIFEST_FILE: &str = "..manifest.json";

/// Current manifest format (2: a root manifest plus one manifest per object dir).
pub(crate) const FORMAT: u32 = 2;

/// What configuration produced a snapshot; a last-good copy from another origin is foreign.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Origin {
    /// Namespace watched (empty for directory sources).
    pub namespace: String,
    /// Label selector.
    pub selector: String,
    /// Layout of paths.
    pub layout: Layout,
}

/// One file's record in an object manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestFile {
    /// Key: the path relative to the object dir.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// The root manifest of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RootManifest {
    /// Format version.
    pub format: u32,
    /// Content hash of the snapshot (its tree's root id).
    pub hash: String,
    /// What produced it.
    pub(crate) origin: Origin,
    /// RFC 3339 creation time.
    pub created: String,
    /// Number of objects.
    pub objects: u64,
    /// Number of files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// The manifest of one object dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectManifest {
    /// Format version.
    pub format: u32,
    /// The object the files came from.
    pub source: SourceRef,
    /// The top-level directory its files go to (`configsnap.io/target-dir`); absent
    /// when it has none, as in manifests written before target dirs existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_dir: Option<String>,
    /// Every file, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// A manifest that does not describe what is next to it.
#[derive(Debug, Error)]
pub(crate) enum Error {
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

// === impl RootManifest ===

impl RootManifest {
    /// Describes a snapshot.
    #[must_use]
    pub(crate) fn describe(snapshot: &Snapshot, origin: &Origin) -> Self {
        Self {
            format: FORMAT,
            hash: snapshot.hash.to_string(),
            origin: origin.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            objects: snapshot.object_count(),
            files: snapshot.file_count(),
            bytes: snapshot.total_bytes(),
        }
    }

    /// Parses a root manifest.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(Error::Parse)?;
        check_format(manifest.format)?;
        Ok(manifest)
    }

    /// Checks the recorded hash against the snapshot read back.
    pub(crate) fn check(&self, snapshot: &Snapshot) -> Result<(), Error> {
        if snapshot.hash.to_string() == self.hash {
            Ok(())
        } else {
            Err(Error::Hash { recorded: self.hash.clone(), actual: snapshot.hash })
        }
    }

    /// Serialises to pretty JSON.
    #[must_use]
    pub(crate) fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

// === impl ObjectManifest ===

impl ObjectManifest {
    /// Describes an object.
    #[must_use]
    pub(crate) fn describe(object: &Object) -> Self {
        let files = object
            .files
            .iter()
            .map(|f| ManifestFile {
                path: f.key.clone(),
                size: f.size,
                mode: f.mode,
                sha256: hex::encode(f.sha256),
            })
            .collect();
        Self { format: FORMAT, source: object.source.clone(), target_dir: object.target.clone(), files }
    }

    /// Parses an object manifest.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(Error::Parse)?;
        check_format(manifest.format)?;
        Ok(manifest)
    }

    /// Checks one file's bytes against its record and returns its description.
    pub(crate) fn check_file(&self, record: &ManifestFile, content: &[u8]) -> Result<ObjectFile, Error> {
        let digest = super::object::sha256(content);
        if content.len() as u64 != record.size
            || hex::encode(digest) != record.sha256
            || record.mode & !0o777 != 0
        {
            return Err(Error::Mismatch(record.path.clone()));
        }
        Ok(ObjectFile { key: record.path.clone(), mode: record.mode, size: record.size, sha256: digest })
    }

    /// Serialises to pretty JSON.
    #[must_use]
    pub(crate) fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

fn check_format(format: u32) -> Result<(), Error> {
    if format == FORMAT { Ok(()) } else { Err(Error::Format(format)) }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("a manifest always serialises");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Input, ObjectId, SourceKind, SourceObject};
    use std::sync::Arc;

    fn object() -> Object {
        let id = ObjectId { kind: SourceKind::ConfigMap, name: "web".into() };
        let source = SourceRef {
            kind: SourceKind::ConfigMap,
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u".into(),
            resource_version: "3".into(),
        };
        let raw = SourceObject {
            id: id.clone(),
            namespace: "ns".into(),
            uid: "u".into(),
            resource_version: "3".into(),
            mode_annotation: None,
            target_annotation: None,
            entries: [("a".to_string(), bytes::Bytes::from_static(b"hello"))].into(),
            duplicate_keys: vec![],
        };
        let file = ObjectFile {
            key: "a".into(),
            mode: 0o640,
            size: 5,
            sha256: super::super::object::sha256(b"hello"),
        };
        Object::new(id, source, vec![file], Input::Object(Arc::new(raw)))
    }

    #[test]
    fn object_manifest_round_trips_and_checks_each_file() {
        let manifest = ObjectManifest::describe(&object());
        let parsed = ObjectManifest::parse(&manifest.to_json()).expect("parses");
        assert_eq!(parsed, manifest);
        let record = &parsed.files[0];
        assert_eq!(parsed.check_file(record, b"hello").expect("intact").mode, 0o640);
        assert!(matches!(parsed.check_file(record, b"hellO"), Err(Error::Mismatch(_))));
    }

    #[test]
    fn root_manifest_checks_the_hash_and_rejects_other_formats() {
        let snapshot = Snapshot::from_objects(Layout::ByName, [Arc::new(object())]);
        let manifest = RootManifest::describe(&snapshot, &Origin::default());
        let parsed = RootManifest::parse(&manifest.to_json()).expect("parses");
        assert!(parsed.check(&snapshot).is_ok());
        assert!(parsed.check(&Snapshot::empty(Layout::ByName)).is_err());
        assert!(matches!(RootManifest::parse(b"{\"format\":1}"), Err(Error::Parse(_) | Error::Format(_))));
        assert_eq!((parsed.objects, parsed.files, parsed.bytes), (1, 1, 5));
    }

    #[test]
    fn the_target_dir_is_recorded_only_when_set_and_old_manifests_still_parse() {
        let plain = ObjectManifest::describe(&object());
        let json = String::from_utf8(plain.to_json()).expect("utf-8");
        assert!(!json.contains("targetDir"), "unannotated objects' manifests are unchanged: {json}");
        let moved = object().with_target(Some("conf.d".into()));
        assert_ne!(moved.digest, object().digest, "the dir name covers the target");
        assert_eq!(object().with_target(None).digest, object().digest);
        let manifest = ObjectManifest::describe(&moved);
        let parsed = ObjectManifest::parse(&manifest.to_json()).expect("parses");
        assert_eq!(parsed.target_dir.as_deref(), Some("conf.d"));
        assert_eq!(ObjectManifest::parse(&plain.to_json()).expect("parses").target_dir, None);
    }
}
