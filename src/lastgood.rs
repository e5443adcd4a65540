//! The last-good store (`--state-dir`): the last snapshot that was swapped in and
//! reloaded, persisted atomically so a restart without the API can restore it.
//!
//! On disk it is one file, [`FILE`], replaced whole by `rename` (temp file, fsync, rename,
//! fsync the dir), so the store holds at most the current copy plus the one being
//! written. Layout, all integers big-endian:
//!
//! ```text
//! "CSNAPLG1"            8 bytes, magic and format version
//! manifest length       u64
//! manifest              the snapshot's `..manifest.json` (paths, sizes, modes, digests)
//! contents              every file's bytes, concatenated in manifest order
//! ```
//!
//! Binary rather than JSON with base64: bytes are stored exactly, with no 33 % inflation
//! and no decode pass; loading is one read, and each file becomes a zero-copy slice of it.
//! The manifest alone tells where each file starts, and [`Manifest::verify`] checks every
//! size and digest and the overall hash, so a truncated or altered copy is never trusted.

use crate::keypath;
use crate::snapshot::Snapshot;
use crate::snapshot::manifest::{self, Manifest, Origin};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Name of the last-good file inside the state dir.
pub const FILE: &str = "snapshot.v1";
/// Prefix of files being written; any found at open are leftovers of a crash.
const TMP_PREFIX: &str = ".tmp-";
/// Magic and format version at the start of [`FILE`].
const MAGIC: &[u8; 8] = b"CSNAPLG1";
/// Magic plus the manifest length.
const HEADER_LEN: usize = MAGIC.len() + 8;
/// Write buffer: coalesces small files, large ones go straight through.
const WRITE_BUFFER: usize = 64 * 1024;
/// The state dir holds config (and possibly Secrets): only the sidecar reads it.
const DIR_MODE: u32 = 0o700;
/// Mode of state files.
const FILE_MODE: u32 = 0o600;

/// A failed save or load, or a stored copy that cannot be used.
#[derive(Debug, Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done, with the path involved.
        action: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The manifest given to [`Store::save`] does not describe the snapshot or is of
    /// another origin (saving it would store a copy that load rejects).
    #[error("failed to save the last-good snapshot: {0}")]
    Mismatch(String),
    /// The stored bytes are not a complete last-good file.
    #[error("failed to decode the last-good snapshot: {0}")]
    Corrupt(String),
    /// The stored manifest does not parse or does not match the stored contents.
    #[error("failed to verify the last-good snapshot: {0}")]
    Manifest(#[source] manifest::Error),
}

/// The last-good copy in one state dir, for one [`Origin`].
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    origin: Origin,
}

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { action: action.into(), source }
}

// === impl Store ===

impl Store {
    /// Opens (creating, mode 0700) the state dir and removes leftovers of an interrupted
    /// save. Blocking.
    pub fn open(dir: &Path, origin: Origin) -> Result<Self, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io_err(format!("create {}", dir.display())))?;
        let store = Self { dir: dir.to_owned(), origin };
        store.remove_leftovers()?;
        Ok(store)
    }

    /// The state dir.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The origin a stored copy must have to be loaded.
    #[must_use]
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Path of the last-good file.
    #[must_use]
    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Persists `snapshot` with its `manifest` (from [`Manifest::describe`] with this
    /// store's origin), replacing the previous copy atomically: a crash leaves the old
    /// copy or the new one, never a mix. Blocking (fsyncs): call it in `spawn_blocking`.
    pub fn save(&self, snapshot: &Snapshot, manifest: &Manifest) -> Result<(), Error> {
        self.check_describes(snapshot, manifest)?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
        let result = write_file(&tmp, snapshot, manifest).and_then(|()| self.commit(&tmp));
        if result.is_err() {
            // Best effort: open() removes it anyway.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The stored snapshot, verified against its manifest. `Ok(None)` when there is none,
    /// or when it is corrupt or of another origin (logged as a warning, never trusted).
    /// `Err` only when the file exists but cannot be read. Blocking: call it in
    /// `spawn_blocking`.
    pub fn load(&self) -> Result<Option<(Snapshot, Manifest)>, Error> {
        let path = self.file_path();
        let bytes = match read_no_follow(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) => {
                tracing::warn!(path = %path.display(), "ignoring the last-good copy: it is a symlink");
                return Ok(None);
            }
            Err(err) => return Err(io_err(format!("read {}", path.display()))(err)),
        };
        match decode(&Bytes::from(bytes)) {
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "ignoring a corrupt last-good copy");
                Ok(None)
            }
            Ok((_, manifest)) if manifest.origin != self.origin => {
                tracing::warn!(
                    path = %path.display(),
                    namespace = %manifest.origin.namespace,
                    selector = %manifest.origin.selector,
                    layout = %manifest.origin.layout,
                    "ignoring a last-good copy of another origin (namespace, selector or layout)"
                );
                Ok(None)
            }
            Ok(pair) => Ok(Some(pair)),
        }
    }

    fn check_describes(&self, snapshot: &Snapshot, manifest: &Manifest) -> Result<(), Error> {
        let mismatch = |what: String| Err(Error::Mismatch(what));
        if manifest.origin != self.origin {
            return mismatch("the manifest is of another origin than the store".into());
        }
        if manifest.hash != snapshot.hash.to_string() {
            return mismatch(format!("manifest hash {} is not {}", manifest.hash, snapshot.hash));
        }
        if manifest.files.len() != snapshot.files.len() {
            return mismatch("the manifest and the snapshot have different files".into());
        }
        for record in &manifest.files {
            let same = snapshot
                .files
                .get(&record.path)
                .is_some_and(|file| file.content.len() as u64 == record.size && file.mode == record.mode);
            if !same {
                return mismatch(format!("file {:?} does not match the manifest", record.path));
            }
        }
        Ok(())
    }

    /// Renames the written temp file over [`FILE`] and makes the rename durable.
    fn commit(&self, tmp: &Path) -> Result<(), Error> {
        let path = self.file_path();
        std::fs::rename(tmp, &path).map_err(io_err(format!(
            "rename {} over {}",
            tmp.display(),
            path.display()
        )))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err(format!("fsync {}", self.dir.display())))
    }

    fn remove_leftovers(&self) -> Result<(), Error> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_err(format!("list {}", self.dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("list {}", self.dir.display())))?;
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a leftover of an interrupted save");
            std::fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))?;
        }
        Ok(())
    }
}

/// Creates `path` (0600, never following a link), writes the container and fsyncs it.
fn write_file(path: &Path, snapshot: &Snapshot, manifest: &Manifest) -> Result<(), Error> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(format!("create {}", path.display())))?;
    let written = (|| {
        // Exactly 0600 whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, &file);
        encode(&mut out, snapshot, manifest)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })();
    written.map_err(io_err(format!("write {}", path.display())))
}

/// Writes the container; `manifest` must describe `snapshot` (see `check_describes`).
fn encode(out: &mut impl Write, snapshot: &Snapshot, manifest: &Manifest) -> io::Result<()> {
    let json = manifest.to_json();
    out.write_all(MAGIC)?;
    out.write_all(&(json.len() as u64).to_be_bytes())?;
    out.write_all(&json)?;
    for record in &manifest.files {
        let file = snapshot.files.get(&record.path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a manifest file is not in the snapshot")
        })?;
        out.write_all(&file.content)?;
    }
    Ok(())
}

/// Parses and verifies a container; every file is a slice of `bytes` (no copy).
fn decode(bytes: &Bytes) -> Result<(Snapshot, Manifest), Error> {
    let corrupt = |what: &str| Error::Corrupt(what.to_owned());
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a configsnap last-good file"));
    }
    let mut length = [0; 8];
    length.copy_from_slice(&bytes[MAGIC.len()..HEADER_LEN]);
    let manifest_end = usize::try_from(u64::from_be_bytes(length))
        .ok()
        .and_then(|len| HEADER_LEN.checked_add(len))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| corrupt("the manifest is truncated"))?;
    let manifest = Manifest::parse(&bytes[HEADER_LEN..manifest_end]).map_err(Error::Manifest)?;
    let ranges = content_ranges(&manifest, manifest_end, bytes.len())?;
    let snapshot = manifest
        .verify(|path| ranges.get(path).map(|range| bytes.slice(range.clone())).ok_or(()))
        .map_err(Error::Manifest)?;
    drop(ranges);
    for (path, file) in &snapshot.files {
        keypath::validate_path(path).map_err(|err| Error::Corrupt(format!("unsafe path: {err}")))?;
        if file.mode & !0o7777 != 0 {
            return Err(Error::Corrupt(format!("file {path:?} has mode {:o}", file.mode)));
        }
    }
    Ok((snapshot, manifest))
}

/// Where each file's bytes are, from the manifest's sizes; the contents must fill the
/// rest of the file exactly.
fn content_ranges(
    manifest: &Manifest,
    start: usize,
    total: usize,
) -> Result<HashMap<&str, std::ops::Range<usize>>, Error> {
    let mut ranges = HashMap::with_capacity(manifest.files.len());
    let mut offset = start;
    for record in &manifest.files {
        let end = usize::try_from(record.size)
            .ok()
            .and_then(|size| offset.checked_add(size))
            .filter(|&end| end <= total)
            .ok_or_else(|| Error::Corrupt("the contents are truncated".into()))?;
        if ranges.insert(record.path.as_str(), offset..end).is_some() {
            return Err(Error::Corrupt(format!("file {:?} is listed twice", record.path)));
        }
        offset = end;
    }
    if offset != total {
        return Err(Error::Corrupt("extra bytes after the contents".into()));
    }
    Ok(ranges)
}

/// Reads a whole regular file, refusing a symlink at `path` (and never blocking on a fifo).
fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
#[path = "lastgood/tests.rs"]
mod tests;
