//! Blocking reads of one mounted directory into a [`SourceObject`]: through the kubelet's
//! `..data` link when there is one (one timestamped dir, never a mix of two), else the
//! regular files of a plain directory.

use super::Error;
use crate::source::{ObjectId, SourceKind, SourceObject};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The kubelet's link to the current timestamped dir.
const DATA_LINK: &str = "..data";
/// Reads that raced a kubelet swap (or a plain-dir edit) are retried this often; a swap
/// takes milliseconds and happens at most every sync period, so two races in a row are
/// already unlikely and five mean something keeps rewriting the directory.
const MAX_ATTEMPTS: usize = 5;
/// Deeper trees are refused: no `ConfigMap` key nests this deep, only a bind-mount loop would.
const MAX_DEPTH: usize = 32;

/// The name a directory's object gets: its last path component.
#[must_use]
pub(crate) fn object_name(dir: &Path) -> String {
    dir.file_name().map_or_else(|| dir.to_string_lossy().into_owned(), |n| n.to_string_lossy().into_owned())
}

/// Reads `dir` into an object named `name`; `None` when the directory does not exist.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<SourceObject>, Error> {
    for _ in 0..MAX_ATTEMPTS {
        match attempt(dir) {
            Ok(Some(entries)) => return Ok(Some(object(name, entries))),
            Ok(None) => return Ok(None),
            Err(Attempt::Raced) => {}
            Err(Attempt::Failed(error)) => return Err(error),
        }
    }
    Err(Error::Unstable { path: dir.to_owned() })
}

/// Why one attempt gave no result.
enum Attempt {
    /// The directory changed under the read (swap, deletion): try again.
    Raced,
    /// A real failure: report it.
    Failed(Error),
}

impl Attempt {
    fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            Self::Raced
        } else {
            Self::Failed(Error::Read { path: path.to_owned(), source })
        }
    }
}

type Entries = BTreeMap<String, Bytes>;

fn attempt(dir: &Path) -> Result<Option<Entries>, Attempt> {
    let contain = match fs::canonicalize(dir) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Attempt::Failed(Error::Read { path: dir.to_owned(), source }));
        }
    };
    if !contain.is_dir() {
        return Err(Attempt::Failed(Error::NotADirectory { path: dir.to_owned() }));
    }
    let mut entries = Entries::new();
    match data_target(dir)? {
        Some(target) => {
            // The timestamped dir is immutable until the kubelet swaps `..data` away from it
            // and deletes it, so a read that still sees the same target afterwards was whole.
            walk(&dir.join(&target), &contain, "", 0, &mut entries)?;
            if data_target(dir)?.as_ref() != Some(&target) {
                return Err(Attempt::Raced);
            }
        }
        None => walk(dir, &contain, "", 0, &mut entries)?,
    }
    Ok(Some(entries))
}

/// The target of `dir/..data`, checked to be a sibling; `None` for a plain directory.
fn data_target(dir: &Path) -> Result<Option<PathBuf>, Attempt> {
    let link = dir.join(DATA_LINK);
    let target = match fs::read_link(&link) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A real directory named `..data` (a copied volume): read it as the data dir.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput && link.is_dir() => {
            return Ok(Some(PathBuf::from(DATA_LINK)));
        }
        Err(source) => return Err(Attempt::io(&link, source)),
    };
    let mut components = target.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(Some(target)),
        _ => Err(Attempt::Failed(Error::DataLink { path: link, target })),
    }
}

/// Reads the regular files under `root` into `entries`, keyed by `prefix` + relative path.
/// Names starting with `..` are skipped (kubelet internals, never valid keys); symlinks are
/// followed only to regular files inside `contain`.
fn walk(
    root: &Path,
    contain: &Path,
    prefix: &str,
    depth: usize,
    entries: &mut Entries,
) -> Result<(), Attempt> {
    if depth > MAX_DEPTH {
        return Err(Attempt::Failed(Error::TooDeep { path: root.to_owned() }));
    }
    let listing = fs::read_dir(root).map_err(|e| Attempt::io(root, e))?;
    for entry in listing {
        let entry = entry.map_err(|e| Attempt::io(root, e))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            tracing::warn!(path = %path.display(), "skipping a file whose name is not UTF-8");
            continue;
        };
        if name.starts_with("..") {
            continue;
        }
        let key = format!("{prefix}{name}");
        let file_type = entry.file_type().map_err(|e| Attempt::io(&path, e))?;
        let bytes = if file_type.is_dir() {
            walk(&path, contain, &format!("{key}/"), depth + 1, entries)?;
            None
        } else if file_type.is_file() {
            read_file(&path)?
        } else if file_type.is_symlink() {
            read_link_target(&path, contain)?
        } else {
            // Sockets, FIFOs and devices are not configuration.
            None
        };
        if let Some(bytes) = bytes {
            entries.insert(key, bytes);
        }
    }
    Ok(())
}

/// The bytes behind a symlink when it resolves to a regular file inside `contain`.
fn read_link_target(link: &Path, contain: &Path) -> Result<Option<Bytes>, Attempt> {
    let resolved = match fs::canonicalize(link) {
        Ok(resolved) => resolved,
        // A dangling link is not a file (a plain read of a volume between kubelet steps).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Attempt::io(link, source)),
    };
    if !resolved.starts_with(contain) {
        tracing::debug!(link = %link.display(), target = %resolved.display(), "skipping a link that leaves the directory");
        return Ok(None);
    }
    read_file(&resolved)
}

/// Reads a regular file without following a link planted at `path` and without blocking
/// on a FIFO; `None` when `path` is not a regular file.
fn read_file(path: &Path) -> Result<Option<Bytes>, Attempt> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let mut file: File = match OpenOptions::new().read(true).custom_flags(flags.bits()).open(path) {
        Ok(file) => file,
        // ELOOP: the file was replaced by a link since it was listed.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Err(Attempt::Raced),
        Err(e) => return Err(Attempt::io(path, e)),
    };
    let metadata = file.metadata().map_err(|e| Attempt::io(path, e))?;
    if !metadata.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(|e| Attempt::io(path, e))?;
    Ok(Some(Bytes::from(bytes)))
}

/// The object for `entries`, versioned by a hash of its content so the token changes
/// exactly when the content does.
fn object(name: &str, entries: Entries) -> SourceObject {
    SourceObject {
        id: ObjectId { kind: SourceKind::Directory, name: name.to_owned() },
        namespace: String::new(),
        uid: String::new(),
        resource_version: content_token(&entries),
        mode_annotation: None,
        target_annotation: None,
        entries,
        duplicate_keys: Vec::new(),
    }
}

fn content_token(entries: &Entries) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in entries {
        // Lengths first, so no two different sets of entries hash the same bytes.
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    let digest = hasher.finalize();
    format!("sha256:{}", hex::encode(&digest[..12]))
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
