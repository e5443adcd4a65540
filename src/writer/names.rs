//! Names in the target dir: which snapshot root `..data` names, the visible link of an
//! entry, how roots are named and recognised, and the durability the filesystem allows.

use super::{DATA_LINK, Durability, Error, io};
use nix::errno::Errno;
use nix::fcntl::readlinkat;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Name of the snapshot dir `..data` points at in `dir`, if any.
pub(super) fn current_dir_name(dir: &OwnedFd) -> Result<Option<String>, Error> {
    match readlinkat(dir, DATA_LINK) {
        Ok(target) => {
            let target = target.to_string_lossy().into_owned();
            if is_snapshot_dir_name(&target) { Ok(Some(target)) } else { Err(Error::ForeignData(target)) }
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(io(format!("read link {DATA_LINK}"))(err)),
    }
}

/// Ordered for the filesystems known to commit metadata in order, flush for ext2/3/4
/// known to have no journal, strict elsewhere.
pub(super) fn detect_durability(dir: &OwnedFd) -> Durability {
    use nix::sys::statfs::{EXT4_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC, fstatfs};
    match fstatfs(dir).map(|s| s.filesystem_type()) {
        Ok(kind) if kind == EXT4_SUPER_MAGIC => match ext_journal(dir, Path::new("/")) {
            Some(false) => Durability::Flush,
            Some(true) => Durability::Ordered,
            None => {
                tracing::warn!(
                    "sysfs does not say whether the ext4 filesystem of the target dir has a journal \
                     (/sys not mounted?); assuming it has one, as ext4 does by default: without one a \
                     power loss could leave the snapshot incomplete"
                );
                Durability::Ordered
            }
        },
        Ok(kind) if kind == XFS_SUPER_MAGIC || kind == TMPFS_MAGIC => Durability::Ordered,
        _ => Durability::Strict,
    }
}

/// Whether the ext2/3/4 filesystem holding `dir` has a journal, from sysfs under `root`:
/// `/sys/dev/block/<major>:<minor>` names the device, and
/// `/sys/fs/ext4/<device>/journal_task` is `<none>` without a journal. `None` when
/// sysfs does not say (not mounted in the container, an older kernel): a journal is
/// the default, so callers assume one.
pub(super) fn ext_journal(dir: &OwnedFd, root: &Path) -> Option<bool> {
    let dev = nix::sys::stat::fstat(dir).ok()?.st_dev;
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let device = std::fs::read_link(root.join(format!("sys/dev/block/{major}:{minor}"))).ok()?;
    let task =
        std::fs::read_to_string(root.join("sys/fs/ext4").join(device.file_name()?).join("journal_task"));
    Some(task.ok()?.trim() != "<none>")
}

/// The target of the visible link of a top-level entry: `..data/<h0>/<h1>/<entry>`.
#[must_use]
pub fn visible_link_target(entry: &str) -> String {
    let (h0, h1) = crate::snapshot::tree::Tree::slot(entry);
    format!("{DATA_LINK}/{h0:x}/{h1:x}/{entry}")
}

/// `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN`: UTC time, then nine random digits.
pub(super) fn new_snapshot_dir_name() -> String {
    let now = chrono::Utc::now();
    let random: u32 = rand::random_range(0..1_000_000_000);
    format!("..{}.{random:09}", now.format("%Y_%m_%d_%H_%M_%S"))
}

/// True for names made by [`new_snapshot_dir_name`] (and only those: never delete
/// anything configsnap did not create).
#[must_use]
pub(crate) fn is_snapshot_dir_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let shape = "DDDD_DD_DD_DD_DD_DD.DDDDDDDDD";
    rest.len() == shape.len()
        && rest.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'D' => c.is_ascii_digit(),
            other => c == other,
        })
}
