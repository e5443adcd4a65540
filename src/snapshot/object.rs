//! One rendered object: its files (keys, modes, sizes, digests) and where their bytes
//! are: in the source's own cached object (borrowed, never copied) until they are on
//! disk, then only on disk (released), read back and verified when needed again.

use super::{Layout, SourceRef, top_of};
use crate::source::{Input, ObjectId, SourceKind};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// A SHA-256 digest.
pub(crate) type Digest32 = [u8; 32];

/// One file of an object: a key (a relative path inside the object) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFile {
    /// The key: a file name, or a relative path for directory sources.
    pub key: String,
    /// Permission bits, applied regardless of umask.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: Digest32,
}

/// One object version, laid out as files.
#[derive(Debug)]
pub struct Object {
    /// Kind and name.
    pub id: ObjectId,
    /// Where it came from.
    pub source: SourceRef,
    /// Its files, sorted by key.
    pub files: Vec<ObjectFile>,
    /// Digest of kind, name and every file (key, mode, size, digest), for a Secret its
    /// uid, and its target dir when it has one: the name of its content-addressed
    /// directory on disk.
    pub digest: Digest32,
    /// The top-level directory its files go to (`configsnap.io/target-dir`), instead of
    /// its name (by-name layout) or the top level (flat layout).
    pub target: Option<String>,
    content: Mutex<Content>,
}

/// Where an object's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// In memory: the source's cached object (or bytes read back from disk).
    Memory(Input),
    /// Only on disk, in `<objects dir>/<dir name>/<key>` (see [`Object::release`]).
    Disk(Arc<Path>),
}

// === impl Object ===

impl Object {
    /// An object whose bytes live in `input` (the source's cache) under each file's key.
    #[must_use]
    pub fn new(id: ObjectId, source: SourceRef, mut files: Vec<ObjectFile>, input: Input) -> Self {
        files.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let digest = object_digest(&id, &source, &files, None);
        Self { id, source, files, digest, target: None, content: Mutex::new(Content::Memory(input)) }
    }

    /// The same object with its files under the top-level directory `target` (already
    /// checked against the key rules); its digest covers the target.
    #[must_use]
    pub(crate) fn with_target(mut self, target: Option<String>) -> Self {
        self.digest = object_digest(&self.id, &self.source, &self.files, target.as_deref());
        self.target = target;
        self
    }

    /// The bytes of `file` (one of [`Object::files`]): from memory, or read back from
    /// disk when released; empty when a released file can no longer be read intact
    /// (product code uses [`Object::read`], which says why).
    #[must_use]
    pub fn content(&self, file: &ObjectFile) -> Vec<u8> {
        self.read(file).unwrap_or_default()
    }

    /// The bytes of `file` (one of [`Object::files`]): from memory, or, once released,
    /// read back from its object dir and checked against its size and digest.
    pub(crate) fn read(&self, file: &ObjectFile) -> std::io::Result<Vec<u8>> {
        match self.payload() {
            Content::Memory(input) => Ok(input.value(&file.key).unwrap_or_default().to_vec()),
            Content::Disk(objects) => read_back(&objects.join(self.dir_name()).join(&file.key), file),
        }
    }

    /// Where its bytes are now.
    pub(crate) fn payload(&self) -> Content {
        self.lock().clone()
    }

    /// The objects dir its bytes were released to, if they were.
    #[must_use]
    pub(crate) fn released_to(&self) -> Option<Arc<Path>> {
        match &*self.lock() {
            Content::Disk(objects) => Some(Arc::clone(objects)),
            Content::Memory(_) => None,
        }
    }

    /// Drops its bytes from memory: they are complete in `<objects>/<dir name>/` (written
    /// there, or verified when read from there), and read back from there when needed.
    pub(crate) fn release(&self, objects: &Arc<Path>) {
        *self.lock() = Content::Disk(Arc::clone(objects));
    }

    /// Reads its released bytes back into memory, checked (before the dir they were
    /// released to may be removed while they are still needed: a rollback target).
    pub(crate) fn hold(&self) -> std::io::Result<()> {
        let Content::Disk(objects) = self.payload() else { return Ok(()) };
        let dir = objects.join(self.dir_name());
        let mut entries = std::collections::BTreeMap::new();
        for file in &self.files {
            entries.insert(file.key.clone(), bytes::Bytes::from(read_back(&dir.join(&file.key), file)?));
        }
        let raw = crate::source::SourceObject {
            id: self.id.clone(),
            namespace: self.source.namespace.clone(),
            uid: self.source.uid.clone(),
            resource_version: self.source.resource_version.clone(),
            mode_annotation: None,
            target_annotation: self.target.clone(),
            entries,
            duplicate_keys: Vec::new(),
        };
        *self.lock() = Content::Memory(Input::Object(Arc::new(raw)));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Content> {
        self.content.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Total bytes of its files.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Name of its directory on disk (see [`super::tree::node_name`]).
    #[must_use]
    pub(crate) fn dir_name(&self) -> String {
        super::tree::node_name(&self.digest)
    }

    /// The path of one of its keys in the snapshot.
    #[must_use]
    pub(crate) fn path_of(&self, key: &str, layout: Layout) -> String {
        match self.dir(layout) {
            Some(dir) => format!("{dir}/{key}"),
            None => key.to_owned(),
        }
    }

    /// The top-level directory holding all its files: its target dir, else its name in
    /// by-name layout; `None` when its keys are top-level entries (flat layout).
    #[must_use]
    pub fn dir(&self, layout: Layout) -> Option<&str> {
        match (&self.target, layout) {
            (Some(target), _) => Some(target),
            (None, Layout::ByName) => Some(&self.id.name),
            (None, Layout::Flat) => None,
        }
    }

    /// The entries it shows at the top of the target dir (none when it has no files).
    #[must_use]
    pub(crate) fn tops(&self, layout: Layout) -> BTreeSet<&str> {
        if self.files.is_empty() {
            return BTreeSet::new();
        }
        match self.dir(layout) {
            Some(dir) => BTreeSet::from([dir]),
            None => self.components().collect(),
        }
    }

    /// The first element of each key, once each, in order: the names it shows inside
    /// its directory (or at the top level in flat layout).
    pub(crate) fn components(&self) -> impl Iterator<Item = &str> {
        let mut last = None;
        self.files.iter().map(|f| top_of(&f.key)).filter(move |c| last.replace(*c) != Some(*c))
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.source == other.source
    }
}

impl Eq for Object {}

/// The file at `path`, not followed if a link, checked against `file`'s size and digest.
fn read_back(path: &Path, file: &ObjectFile) -> std::io::Result<Vec<u8>> {
    let mut opened = std::fs::File::options().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path)?;
    let mut out = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
    opened.read_to_end(&mut out)?;
    if out.len() as u64 != file.size || sha256(&out) != file.sha256 {
        let what = format!("{} does not hold the bytes it was written with", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, what));
    }
    Ok(out)
}

/// SHA-256 of `content`.
#[must_use]
pub(crate) fn sha256(content: &[u8]) -> Digest32 {
    Sha256::digest(content).into()
}

/// The digest names the object's dir, which anyone who can list the volume sees. For a
/// Secret, kind, name, keys, mode and sizes are visible too, so an unsalted digest would
/// let them test guesses of a weak value offline. The Secret's uid (random, from the API;
/// on disk only in its 0600 manifest) salts it; it is stable across updates, so unchanged
/// Secrets still share their dir.
/// An object without a target dir hashes as it did before target dirs existed, so its
/// directory keeps its name.
fn object_digest(id: &ObjectId, source: &SourceRef, files: &[ObjectFile], target: Option<&str>) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update(b"configsnap object\0");
    hasher.update(id.kind.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(id.name.as_bytes());
    hasher.update([0]);
    if id.kind == SourceKind::Secret {
        hasher.update(b"uid\0");
        hasher.update(source.uid.as_bytes());
        hasher.update([0]);
    }
    for file in files {
        hasher.update(file.key.as_bytes());
        hasher.update([0]);
        hasher.update(file.mode.to_be_bytes());
        hasher.update(file.size.to_be_bytes());
        hasher.update(file.sha256);
    }
    if let Some(target) = target {
        hasher.update(b"target\0");
        hasher.update(target.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceObject;

    fn object(value: &'static [u8]) -> Object {
        let id = ObjectId { kind: SourceKind::ConfigMap, name: "web".into() };
        let raw = SourceObject {
            id: id.clone(),
            namespace: "ns".into(),
            uid: "u".into(),
            resource_version: "1".into(),
            mode_annotation: None,
            target_annotation: None,
            entries: [("k".to_string(), bytes::Bytes::from_static(value))].into(),
            duplicate_keys: vec![],
        };
        let source = SourceRef {
            kind: id.kind,
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u".into(),
            resource_version: "1".into(),
        };
        let file =
            ObjectFile { key: "k".into(), mode: 0o644, size: value.len() as u64, sha256: sha256(value) };
        Object::new(id, source, vec![file], Input::Object(Arc::new(raw)))
    }

    #[test]
    fn released_bytes_are_read_back_checked_and_held_again_before_their_files_go() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let objects: Arc<Path> = Arc::from(tmp.path());
        let object = object(b"hello");
        let path = tmp.path().join(object.dir_name()).join("k");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, b"hello").expect("write");
        object.release(&objects);
        assert_eq!(object.released_to().as_deref(), Some(tmp.path()));
        assert_eq!(object.read(&object.files[0]).expect("read back"), b"hello");
        std::fs::write(&path, b"HELLO").expect("tamper");
        let error = object.read(&object.files[0]).expect_err("altered bytes are refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(object.hold().is_err(), "nothing altered is taken back into memory");
        std::fs::write(&path, b"hello").expect("restore");
        object.hold().expect("hold");
        std::fs::remove_file(&path).expect("the old generation's files go");
        assert_eq!(object.read(&object.files[0]).expect("from memory"), b"hello");
        assert!(object.released_to().is_none());
    }
}
