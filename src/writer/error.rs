//! The writer's error: what failed, with the OS error, and a metric label for it.

use super::DATA_LINK;
use crate::source::ObjectId;
use nix::errno::Errno;
use thiserror::Error;

/// A failed filesystem step; the current snapshot is left as it was.
#[derive(Debug, Error)]
pub enum Error {
    /// A system call failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done, with the name involved.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing one object's files failed.
    #[error("{object}: {source}")]
    Object {
        /// The object.
        object: ObjectId,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// `..data` exists but does not point at a snapshot dir of ours.
    #[error("{DATA_LINK} points at {0:?}, which is not a configsnap snapshot directory")]
    ForeignData(String),
    /// The snapshot on disk does not match its manifests.
    #[error("snapshot {dir} is damaged: {reason}")]
    Damaged {
        /// The snapshot root dir.
        dir: String,
        /// What does not match.
        reason: String,
    },
}

impl Error {
    /// Short label for metrics: what kind of failure, by the OS error when there is one.
    #[must_use]
    pub fn label(&self) -> &'static str {
        let Self::Io { source, .. } = self else {
            return match self {
                Self::Object { source, .. } => source.label(),
                Self::ForeignData(_) => "foreign_data",
                _ => "damaged",
            };
        };
        match source.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOSPC) => "no_space",
            Some(Errno::EDQUOT) => "quota",
            Some(Errno::EFBIG) => "file_too_large",
            Some(Errno::EROFS) => "read_only",
            Some(Errno::EMFILE | Errno::ENFILE) => "too_many_files",
            Some(Errno::EACCES | Errno::EPERM) => "permission",
            Some(Errno::ENOTDIR | Errno::EISDIR | Errno::EEXIST | Errno::ELOOP) => "blocked_path",
            _ => "io",
        }
    }
}

impl Error {
    /// True when the target dir refuses writes altogether (read-only, no permission),
    /// as opposed to a full volume or a blocked path.
    #[must_use]
    pub(crate) fn target_refuses_writes(&self) -> bool {
        matches!(self.label(), "read_only" | "permission")
    }

    /// The object whose new files did not fit (no space, quota, or larger than a file
    /// may be): the rest of a change can go ahead without it.
    #[must_use]
    pub(crate) fn object_without_room(&self) -> Option<&ObjectId> {
        match self {
            Self::Object { object, source }
                if matches!(source.label(), "no_space" | "quota" | "file_too_large") =>
            {
                Some(object)
            }
            _ => None,
        }
    }
}

pub(super) fn io(action: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Io { action: action.into(), source: errno.into() }
}

pub(super) fn io_std(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { action: action.into(), source }
}
