//! What each durability mode syncs, counted call by call on the test's own thread.

use super::fsops::syncs_on_this_thread::{self, Syncs};
use super::tests::open;
use super::{Durability, SYNC_BATCH, Writer};
use crate::snapshot::Snapshot;
use crate::snapshot::tests::snapshot_of;

/// One ConfigMap with `keys` keys: `keys` files plus its manifest plus the root's
/// manifest are the stage's new files.
fn one_object(keys: usize, content: &[u8]) -> Snapshot {
    let paths: Vec<String> = (0..keys).map(|i| format!("big/k{i:03}")).collect();
    let files: Vec<_> = paths.iter().map(|p| (p.as_str(), content, 0o644)).collect();
    snapshot_of(&files)
}

/// The syncs of staging `snapshot`, then of committing and persisting it.
fn syncs_of_swap(writer: &Writer, snapshot: &Snapshot) -> (Syncs, Syncs) {
    syncs_on_this_thread::take();
    let staged = writer.stage(snapshot).expect("stage");
    let staging = syncs_on_this_thread::take();
    writer.persist(writer.commit(staged).expect("commit")).expect("persist");
    (staging, syncs_on_this_thread::take())
}

fn writer(dir: &std::path::Path, durability: Durability) -> Writer {
    open(dir).with_durability(durability)
}

/// Keys that make exactly [`SYNC_BATCH`] new files (still synced one by one), and one
/// more (batched into one `syncfs`).
const UNBATCHED_KEYS: usize = SYNC_BATCH - 2;

#[test]
fn ordered_durability_fdatasyncs_each_new_file_and_then_the_target_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Ordered);
    let (staging, persisting) = syncs_of_swap(&writer, &one_object(UNBATCHED_KEYS, b"a"));
    assert_eq!(staging.filesystems, 0, "{staging:?}: no syncfs at {SYNC_BATCH} new files");
    assert_eq!(staging.dirs, 0, "{staging:?}: ordered metadata needs no directory fsync");
    assert_eq!(staging.files as usize, SYNC_BATCH, "{staging:?}: every key and both manifests");
    assert_eq!(persisting, Syncs { dirs: 1, ..Syncs::default() }, "the target dir after the rename");
}

#[test]
fn more_new_files_than_the_batch_take_one_syncfs_instead() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Ordered);
    let (staging, _) = syncs_of_swap(&writer, &one_object(UNBATCHED_KEYS + 1, b"a"));
    assert_eq!(staging, Syncs { filesystems: 1, ..Syncs::default() }, "one syncfs covers them all");
}

#[test]
fn strict_durability_also_fsyncs_every_new_directory_and_its_parent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Strict);
    let (staging, persisting) = syncs_of_swap(&writer, &one_object(3, b"a"));
    assert_eq!(staging.filesystems, 0, "{staging:?}");
    assert_eq!(staging.files, 5, "{staging:?}: three keys and two manifests");
    // Each new directory (the object's, the root) and each parent that gained an entry
    // (the objects dir, the tree, the target dir, …): 7 for one flat object.
    assert_eq!(staging.dirs, 7, "{staging:?}: new directories and their parents");
    assert_eq!(persisting.dirs, 1, "{persisting:?}");
}

#[test]
fn flush_durability_takes_one_syncfs_whatever_the_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Flush);
    let (staging, persisting) = syncs_of_swap(&writer, &one_object(1, b"a"));
    assert_eq!(staging, Syncs { filesystems: 1, ..Syncs::default() }, "one syncfs, nothing else");
    assert_eq!(persisting.dirs, 1, "{persisting:?}");
}

#[test]
fn durability_off_syncs_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Off);
    for keys in [1, UNBATCHED_KEYS + 1] {
        let (staging, persisting) = syncs_of_swap(&writer, &one_object(keys, format!("{keys}").as_bytes()));
        assert_eq!((staging, persisting), (Syncs::default(), Syncs::default()), "{keys} keys");
    }
}

#[test]
fn a_change_to_one_object_of_a_hundred_writes_and_syncs_only_its_files() {
    // The cost of a swap follows what changed: one key, its object's manifest and the
    // root's manifest are new; the other 99 objects are shared with the live snapshot.
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Ordered);
    syncs_of_swap(&writer, &super::tests::many(100, None));
    let (staging, _) = syncs_of_swap(&writer, &super::tests::many(100, Some((3, b"changed"))));
    assert_eq!(staging, Syncs { files: 3, ..Syncs::default() }, "one key and two manifests");
}

#[test]
fn the_process_wide_sync_counter_counts_every_sync() {
    // `configsnap_sync_calls_total`: other tests sync in parallel, so only a lower bound.
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = writer(tmp.path(), Durability::Flush);
    let before = super::sync_calls().get();
    syncs_of_swap(&writer, &one_object(1, b"a"));
    assert!(super::sync_calls().get() >= before + 2, "the syncfs and the target dir's fsync");
}

#[test]
fn tmpfs_orders_its_metadata_and_an_unknown_filesystem_gets_strict_syncs() {
    use super::fsops::open_dir;
    let open = |path: &str| open_dir(nix::fcntl::AT_FDCWD, path).expect(path);
    let shm = open("/dev/shm");
    let kind = nix::sys::statfs::fstatfs(&shm).expect("statfs").filesystem_type();
    assert_eq!(kind, nix::sys::statfs::TMPFS_MAGIC, "/dev/shm is tmpfs on the test machine");
    assert_eq!(super::names::detect_durability(&shm), Durability::Ordered);
    // procfs stands for any filesystem configsnap knows nothing about.
    assert_eq!(super::names::detect_durability(&open("/proc")), Durability::Strict);
}
