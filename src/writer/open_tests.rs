//! The writer's handles on the target dir, and the figures it reports for a swap.

use super::tests::{names, open, swap};
use super::{OBJECTS_DIR, SwapTimings, TREE_DIR};
use crate::snapshot::tests::snapshot_of;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

#[test]
fn the_target_dir_handles_are_directories_closed_on_exec() {
    // A validator, an --exec command or a reload command must inherit no descriptor of
    // the target dir (it could write through it, and it would pin the mount).
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    for (name, fd) in
        [(".", writer.dir.as_fd()), (OBJECTS_DIR, writer.objects.as_fd()), (TREE_DIR, writer.tree.as_fd())]
    {
        let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD"));
        assert!(flags.contains(FdFlag::FD_CLOEXEC), "{name}: fd {} is inherited by children", fd.as_raw_fd());
        let stat = nix::sys::stat::fstat(fd).expect("fstat");
        assert_eq!(stat.st_mode & nix::libc::S_IFMT, nix::libc::S_IFDIR, "{name} is a directory");
    }
}

#[test]
fn a_swaps_total_time_is_its_three_parts() {
    let timings = SwapTimings {
        write: Duration::from_millis(3),
        fsync: Duration::from_millis(20),
        rename: Duration::from_micros(400),
    };
    assert_eq!(timings.total(), Duration::from_micros(23_400));
}

#[test]
fn a_writer_that_never_read_the_dir_clears_what_an_earlier_process_left_after_its_first_swap() {
    // The last-good store saves without loading first: the objects an earlier process
    // wrote there must not stay on disk for ever.
    let tmp = tempfile::tempdir().expect("tempdir");
    swap(&open(tmp.path()), &snapshot_of(&[("earlier/a.conf", b"1", 0o644)]));
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("now/b.conf", b"2", 0o644)]));
    let objects = names(&tmp.path().join(OBJECTS_DIR));
    assert_eq!(objects.len(), 1, "only the object of the live snapshot: {objects:?}");
}

#[test]
fn a_swap_that_changes_no_node_still_removes_the_replaced_root() {
    // Swapping the same content again makes a new root and no garbage node: the old root
    // must still go (with no grace, at once).
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    let snapshot = snapshot_of(&[("web/a", b"1", 0o644)]);
    swap(&writer, &snapshot);
    let first = super::tests::snapshot_dirs(tmp.path());
    swap(&writer, &snapshot);
    let roots = super::tests::snapshot_dirs(tmp.path());
    assert_eq!(roots.len(), 1, "one root: {roots:?}");
    assert_ne!(roots, first, "the new one");
}

#[test]
fn a_root_entry_that_is_not_one_lowercase_hex_digit_makes_the_snapshot_damaged() {
    // A planted "A" or "0a" beside the real "a" would be read as slot 10 again.
    for planted in ["A", "0a"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let writer = open(tmp.path());
        swap(&writer, &super::tests::many(100, None));
        let live = writer.current_dir_name().expect("read").expect("live");
        let root = tmp.path().join(&live);
        let target = std::fs::read_link(root.join("a")).expect("slot a exists with 100 objects");
        std::os::unix::fs::symlink(&target, root.join(planted)).expect("plant");
        let read = super::read_current(tmp.path());
        assert!(matches!(read, Err(super::Error::Damaged { .. })), "{planted}: {read:?}");
    }
}
