//! Tests of the atomic writer on real directories.

use super::*;
use crate::snapshot::tests::{object, snapshot_of};
use crate::snapshot::{Layout, Snapshot};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

pub(super) fn open(dir: &Path) -> Writer {
    Writer::open(dir, Origin::default()).expect("open")
}

pub(super) fn swap(writer: &Writer, snap: &Snapshot) {
    writer.swap(snap).expect("swap succeeds");
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(super) fn snapshot_dirs(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| is_snapshot_dir_name(n)).collect()
}

pub(super) fn many(n: usize, changed: Option<(usize, &[u8])>) -> Snapshot {
    let objects = (0..n).map(|i| {
        let content: &[u8] = match changed {
            Some((at, content)) if at == i => content,
            _ => b"v",
        };
        Arc::new(object(&format!("cm{i:04}"), &[("k", content, 0o644)]))
    });
    Snapshot::from_objects(Layout::ByName, objects)
}

#[test]
fn swap_writes_exact_bytes_and_modes_through_visible_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("web/nginx.conf", b"a", 0o640), ("web/sub/x", b"b", 0o600)]));
    let conf = tmp.path().join("web/nginx.conf");
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), "a");
    assert_eq!(std::fs::metadata(&conf).expect("stat").permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/sub/x")).expect("read"), "b");
    let link = std::fs::read_link(tmp.path().join("web")).expect("link");
    assert_eq!(link, Path::new(&visible_link_target("web")));
    assert!(link.starts_with(DATA_LINK));
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
}

#[test]
fn a_swap_writes_only_what_changed_and_collects_the_rest_after_persist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &many(300, None));
    let objects = tmp.path().join(OBJECTS_DIR);
    let inode = |name: &str| std::fs::metadata(tmp.path().join(name).join("k")).expect("stat").ino();
    let untouched = inode("cm0100");
    let before = names(&objects);
    let next = many(300, Some((7, b"changed")));
    let staged = writer.stage(&next).expect("stage");
    assert_eq!(staged.created.iter().filter(|n| matches!(n, Node::Object(_))).count(), 1);
    assert_eq!(staged.created.len(), 3, "one object, one leaf, one middle node");
    let committed = writer.commit(staged).expect("commit");
    assert_eq!(names(&objects).len(), 301, "the old object stays until the switch is durable");
    writer.persist(committed).expect("persist");
    let after = names(&objects);
    assert_eq!(after.len(), 300);
    assert_eq!(before.iter().filter(|n| !after.contains(n)).count(), 1);
    assert_eq!(inode("cm0100"), untouched, "an unchanged object is not rewritten");
    assert_eq!(std::fs::read_to_string(tmp.path().join("cm0007/k")).expect("read"), "changed");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), next);
}

#[test]
fn a_removed_entry_loses_its_link_and_a_new_one_gets_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("a/k", b"1", 0o644), ("b/k", b"1", 0o644)]));
    let first = snapshot_dirs(tmp.path());
    swap(&writer, &snapshot_of(&[("a/k", b"2", 0o644), ("c/k", b"3", 0o644)]));
    assert_ne!(first, snapshot_dirs(tmp.path()));
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert!(std::fs::symlink_metadata(tmp.path().join("b")).is_err());
    assert_eq!(std::fs::read_to_string(tmp.path().join("a/k")).expect("read"), "2");
    assert_eq!(std::fs::read_to_string(tmp.path().join("c/k")).expect("read"), "3");
}

#[test]
fn load_current_verifies_every_file_against_the_manifests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    assert!(writer.load_current().expect("empty ok").is_none());
    let snap = snapshot_of(&[("web/a", b"x", 0o644)]);
    swap(&writer, &snap);
    let (loaded, origin) = writer.load_current().expect("load").expect("present");
    assert_eq!(loaded, snap);
    assert_eq!(origin, Origin::default());
    let real = std::fs::canonicalize(tmp.path().join("web/a")).expect("resolve");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&real, "tampered").expect("tamper");
    assert!(matches!(writer.load_current(), Err(Error::Damaged { .. })));
}

#[test]
fn strict_durability_writes_and_reads_back_the_same() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_durability(Durability::Strict);
    swap(&writer, &many(80, None));
    swap(&writer, &many(80, Some((3, b"x"))));
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), many(80, Some((3, b"x"))));
}

#[test]
fn a_planted_symlink_is_replaced_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("outside");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("web")).expect("plant");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join(OBJECTS_DIR)).expect("plant");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("web/nginx.conf", b"ours", 0o644)]));
    assert_eq!(std::fs::read_dir(outside.path()).expect("list").count(), 0, "wrote through a planted link");
    assert_eq!(
        std::fs::read_link(tmp.path().join("web")).expect("link"),
        Path::new(&visible_link_target("web"))
    );
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/nginx.conf")).expect("read"), "ours");
}

#[test]
fn a_planted_data_link_to_another_dir_is_never_read_or_deleted_through() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("keep"), "x").expect("write");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join(DATA_LINK)).expect("plant");
    let writer = open(tmp.path());
    assert!(matches!(writer.load_current(), Err(Error::ForeignData(_))));
    swap(&writer, &snapshot_of(&[("web/a", b"ours", 0o644)]));
    assert!(outside.path().join("keep").exists());
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "ours");
}

#[test]
fn a_file_in_the_place_of_an_entry_is_moved_aside_never_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("web"), "app's own file").expect("write");
    std::fs::write(tmp.path().join("..notes"), "x").expect("write");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("web/a", b"ours", 0o644)]));
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "ours");
    let repairs = writer.take_repairs();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    let Found::File(aside) = &repairs[0].found else { panic!("{repairs:?}") };
    assert_eq!(std::fs::read_to_string(tmp.path().join(aside)).expect("kept aside"), "app's own file");
    swap(&writer, &snapshot_of(&[("other/a", b"ours", 0o644)]));
    assert!(!tmp.path().join("web").exists());
    assert_eq!(std::fs::read_to_string(tmp.path().join(aside)).expect("still kept"), "app's own file");
    assert!(tmp.path().join("..notes").exists());
}

#[test]
fn a_link_replaced_between_swaps_is_repaired_at_the_next_swap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &many(20, None));
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("k"), "outside").expect("write");
    std::fs::remove_file(tmp.path().join("cm0003")).expect("remove the link");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("cm0003")).expect("plant");
    swap(&writer, &many(20, Some((9, b"next"))));
    assert_eq!(std::fs::read_to_string(tmp.path().join("cm0003/k")).expect("read"), "v");
    let repairs = writer.take_repairs();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert_eq!(repairs[0].entry, "cm0003");
    assert!(matches!(&repairs[0].found, Found::OtherLink(t) if Path::new(t) == outside.path()));
    assert_eq!(std::fs::read_to_string(outside.path().join("k")).expect("untouched"), "outside");
}

#[tokio::test(start_paused = true)]
async fn a_replaced_generation_stays_readable_for_the_grace_then_goes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_gc_grace(Duration::from_secs(30));
    swap(&writer, &many(10, None));
    // A reader resolves `..data` once, then reads files of that generation.
    let resolved = std::fs::canonicalize(tmp.path().join(DATA_LINK)).expect("resolve");
    let (h0, h1) = crate::snapshot::tree::Tree::slot("cm0004");
    let old_file = resolved.join(format!("{h0:x}/{h1:x}/cm0004/k"));
    for round in 0..5 {
        swap(&writer, &many(10, Some((4, format!("r{round}").as_bytes()))));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(writer.retained(), 5);
    assert_eq!(std::fs::read_to_string(&old_file).expect("the old generation is readable"), "v");
    assert_eq!(snapshot_dirs(tmp.path()).len(), 6, "five kept and the current");
    assert!(writer.next_collection().expect("due") > Instant::now());
    tokio::time::advance(Duration::from_secs(30)).await;
    writer.collect().expect("collect");
    assert_eq!(writer.retained(), 0);
    assert!(!old_file.exists(), "collected after the grace");
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert_eq!(names(&tmp.path().join(OBJECTS_DIR)).len(), 10, "only the current objects stay");
    assert_eq!(std::fs::read_to_string(tmp.path().join("cm0004/k")).expect("read"), "r4");
}

#[tokio::test(start_paused = true)]
async fn a_node_a_kept_generation_uses_again_is_not_collected_with_an_older_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_gc_grace(Duration::from_secs(30));
    let (a, b) = (many(10, None), many(10, Some((4, b"b"))));
    swap(&writer, &a);
    swap(&writer, &b);
    tokio::time::advance(Duration::from_secs(20)).await;
    swap(&writer, &a);
    let resolved_a = std::fs::canonicalize(tmp.path().join(DATA_LINK)).expect("resolve");
    swap(&writer, &b);
    // a's first generation is due; the second use of a (kept) still needs its object.
    tokio::time::advance(Duration::from_secs(15)).await;
    writer.collect().expect("collect");
    let (h0, h1) = crate::snapshot::tree::Tree::slot("cm0004");
    let file = resolved_a.join(format!("{h0:x}/{h1:x}/cm0004/k"));
    assert_eq!(std::fs::read_to_string(file).expect("still readable"), "v");
}

#[test]
fn loading_sweeps_what_an_interrupted_swap_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let writer = open(tmp.path());
        swap(&writer, &snapshot_of(&[("web/a", b"1", 0o644)]));
    }
    let orphan = tmp.path().join("..2020_01_01_00_00_00.123456789");
    std::fs::create_dir_all(&orphan).expect("orphan");
    let half_object = tmp.path().join(OBJECTS_DIR).join("ab".repeat(32));
    std::fs::create_dir_all(&half_object).expect("half object");
    std::fs::write(half_object.join("k"), "half").expect("write");
    std::os::unix::fs::symlink("..2020_01_01_00_00_00.123456789", tmp.path().join(DATA_TMP_LINK))
        .expect("tmp");
    std::os::unix::fs::symlink(visible_link_target("gone"), tmp.path().join("gone")).expect("dangling link");
    // A validation view and a writability probe the crash interrupted.
    std::fs::create_dir_all(tmp.path().join(format!("{}1", VIEW_PREFIX)).join("web")).expect("view");
    std::fs::create_dir(tmp.path().join("..probe-1")).expect("probe");
    // A visible link being made when the crash came.
    std::os::unix::fs::symlink(visible_link_target("web"), tmp.path().join(LINK_TMP)).expect("link tmp");
    let writer = open(tmp.path());
    assert!(std::fs::symlink_metadata(tmp.path().join(DATA_TMP_LINK)).is_err());
    assert!(std::fs::symlink_metadata(tmp.path().join(LINK_TMP)).is_err(), "{LINK_TMP} left behind");
    assert!(!tmp.path().join(format!("{}1", VIEW_PREFIX)).exists(), "an interrupted view left behind");
    assert!(!tmp.path().join("..probe-1").exists(), "an interrupted probe left behind");
    assert!(writer.load_current().expect("load").is_some());
    assert!(!orphan.exists());
    assert!(!half_object.exists());
    assert!(std::fs::symlink_metadata(tmp.path().join("gone")).is_err());
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "1");
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("w/a", b"1", 0o777), ("w/b", b"1", 0o400)]));
    for (name, mode) in [("w/a", 0o777), ("w/b", 0o400)] {
        let meta = std::fs::metadata(tmp.path().join(name)).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
}

#[test]
fn snapshot_dir_names_are_recognised_exactly() {
    assert!(is_snapshot_dir_name(&new_snapshot_dir_name()));
    for name in [
        "..data",
        "..data_tmp",
        "..2020_01_01",
        "2020_01_01_00_00_00.123456789",
        "..2020_01_01_00_00_00.12345678x",
    ] {
        assert!(!is_snapshot_dir_name(name), "{name}");
    }
}

#[test]
fn the_old_root_stays_until_the_commit_is_persisted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("web/a", b"1", 0o644)]));
    let old = snapshot_dirs(tmp.path());
    let staged = writer.stage(&snapshot_of(&[("web/a", b"2", 0o644)])).expect("stage");
    let committed = writer.commit(staged).expect("commit");
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "2", "visible at once");
    assert_eq!(snapshot_dirs(tmp.path()).len(), 2, "the old snapshot must survive until persist");
    assert!(snapshot_dirs(tmp.path()).contains(&old[0]));
    writer.persist(committed).expect("persist");
    assert_eq!(
        snapshot_dirs(tmp.path()),
        snapshot_dirs(tmp.path()).into_iter().filter(|d| *d != old[0]).collect::<Vec<_>>()
    );
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
}

#[test]
fn a_discarded_stage_removes_what_it_created_and_nothing_shared() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &many(50, None));
    let objects_before = names(&tmp.path().join(OBJECTS_DIR));
    let tree_before = names(&tmp.path().join(TREE_DIR));
    let mut staged = writer.stage(&many(50, Some((1, b"refused")))).expect("stage");
    let view = writer.staged_view(&mut staged).expect("view");
    assert_eq!(std::fs::read_to_string(view.join("cm0001/k")).expect("read view"), "refused");
    assert_eq!(std::fs::read_to_string(view.join("cm0002/k")).expect("read view"), "v");
    writer.discard(staged).expect("discard");
    assert_eq!(names(&tmp.path().join(OBJECTS_DIR)), objects_before);
    assert_eq!(names(&tmp.path().join(TREE_DIR)), tree_before);
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert_eq!(std::fs::read_to_string(tmp.path().join("cm0001/k")).expect("read"), "v");
}

#[test]
fn going_back_to_an_earlier_content_rebuilds_collected_nodes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    let (a, b) = (many(20, None), many(20, Some((5, b"b"))));
    swap(&writer, &a);
    swap(&writer, &b);
    swap(&writer, &a);
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), a);
    assert_eq!(names(&tmp.path().join(OBJECTS_DIR)).len(), 20);
}

/// Swaps `good`, commits `bad`, swaps `good` back, and only then persists `bad`'s commit:
/// `good` must read back whole. Returns the target dir.
pub(super) fn roll_back_before_persisting(good: &Snapshot, bad: &Snapshot) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, good);
    let committed_bad = writer.commit(writer.stage(bad).expect("stage")).expect("commit");
    swap(&writer, good);
    writer.persist(committed_bad).expect("persist the bad commit after the rollback");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), *good);
    tmp
}

#[test]
fn a_rollback_before_the_bad_commit_is_persisted_keeps_the_good_nodes() {
    let tmp = roll_back_before_persisting(&many(30, None), &many(30, Some((4, b"bad"))));
    assert_eq!(std::fs::read_to_string(tmp.path().join("cm0004/k")).expect("read"), "v");
    assert_eq!(names(&tmp.path().join(OBJECTS_DIR)).len(), 30);
}

#[test]
fn real_directories_at_reserved_names_are_moved_aside_not_followed_or_deleted() {
    for reserved in [DATA_TMP_LINK, DATA_LINK, LINK_TMP] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let planted = tmp.path().join(reserved);
        std::fs::create_dir(&planted).expect("planted dir");
        std::fs::write(planted.join("keep"), "theirs").expect("planted file");
        let writer = open(tmp.path());
        let _ = writer.load_current();
        swap(&writer, &snapshot_of(&[("web/a", b"1", 0o644)]));
        // A planted dir appearing while running is moved aside at the next swap too.
        std::fs::create_dir(tmp.path().join(DATA_TMP_LINK)).expect("planted again while running");
        swap(&writer, &snapshot_of(&[("web/a", b"2", 0o644)]));
        assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "2", "{reserved}");
        assert!(std::fs::symlink_metadata(tmp.path().join(DATA_LINK)).expect("data").is_symlink());
        let aside: Vec<String> =
            names(tmp.path()).into_iter().filter(|n| n.starts_with(ASIDE_PREFIX)).collect();
        assert_eq!(aside.len(), 2, "{reserved}: {aside:?}");
        let kept = aside.iter().filter_map(|n| std::fs::read_to_string(tmp.path().join(n).join("keep")).ok());
        assert_eq!(kept.collect::<Vec<_>>(), ["theirs"], "{reserved}: their content is kept");
    }
}

#[test]
fn a_replaced_visible_link_moves_a_planted_link_tmp_dir_aside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    std::os::unix::fs::symlink("/etc", tmp.path().join("web")).expect("planted link");
    std::fs::create_dir(tmp.path().join(LINK_TMP)).expect("planted dir");
    swap(&writer, &snapshot_of(&[("web/a", b"1", 0o644)]));
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "1");
    assert!(names(tmp.path()).iter().any(|n| n.starts_with(ASIDE_PREFIX)));
}

/// Inode numbers of the links in the staged root and in the live root, by name.
fn root_link_inodes(dir: &Path, root: &str) -> std::collections::BTreeMap<String, u64> {
    std::fs::read_dir(dir.join(root))
        .expect("list root")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("type").is_symlink())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().expect("lstat").ino()))
        .collect()
}

#[test]
fn a_new_node_shares_the_unchanged_links_of_the_one_it_replaces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &many(100, None));
    let live = writer.current_dir_name().expect("read").expect("live");
    let staged = writer.stage(&many(100, Some((3, b"changed")))).expect("stage");
    let (old, new) = (root_link_inodes(tmp.path(), &live), root_link_inodes(tmp.path(), staged.name()));
    assert_eq!(old.len(), crate::snapshot::tree::FANOUT);
    let shared = new.iter().filter(|(name, ino)| old.get(*name) == Some(ino)).count();
    assert_eq!(
        shared,
        crate::snapshot::tree::FANOUT - 1,
        "every root link but the changed one is the old inode"
    );
    writer.persist(writer.commit(staged).expect("commit")).expect("persist");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), many(100, Some((3, b"changed"))));
}

#[test]
fn a_donor_link_that_differs_or_strict_durability_gets_a_new_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_durability(Durability::Strict);
    swap(&writer, &many(100, None));
    let live = writer.current_dir_name().expect("read").expect("live");
    let staged = writer.stage(&many(100, Some((3, b"changed")))).expect("stage");
    let (old, new) = (root_link_inodes(tmp.path(), &live), root_link_inodes(tmp.path(), staged.name()));
    assert!(new.iter().all(|(name, ino)| old.get(name) != Some(ino)), "strict: no shared inode");
    writer.discard(staged).expect("discard");

    let writer = open(tmp.path());
    writer.load_current().expect("load");
    let live = writer.current_dir_name().expect("read").expect("live");
    let tampered = tmp.path().join(&live).join("0");
    std::fs::remove_file(&tampered).expect("remove");
    std::os::unix::fs::symlink("../elsewhere", &tampered).expect("plant");
    let staged = writer.stage(&many(100, Some((3, b"again")))).expect("stage");
    let target = std::fs::read_link(tmp.path().join(staged.name()).join("0")).expect("link");
    assert!(target.starts_with(format!("../{TREE_DIR}")), "a planted link is never copied: {target:?}");
    writer.discard(staged).expect("discard");
}

#[test]
fn ext_without_a_journal_is_told_by_sysfs_and_unknown_means_a_journal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = fsops::open_dir(nix::fcntl::AT_FDCWD, tmp.path().to_str().expect("utf-8")).expect("open");
    let dev = nix::sys::stat::fstat(&dir).expect("stat").st_dev;
    let sys = tempfile::tempdir().expect("sys");
    let block = sys.path().join("sys/dev/block");
    std::fs::create_dir_all(&block).expect("block");
    let link = block.join(format!("{}:{}", nix::sys::stat::major(dev), nix::sys::stat::minor(dev)));
    std::os::unix::fs::symlink("../../devices/pci0/virtio1/block/vdz", &link).expect("link");
    assert_eq!(names::ext_journal(&dir, sys.path()), None, "no ext4 entry: unknown");
    let ext4 = sys.path().join("sys/fs/ext4/vdz");
    std::fs::create_dir_all(&ext4).expect("ext4");
    std::fs::write(ext4.join("journal_task"), "<none>\n").expect("none");
    assert_eq!(names::ext_journal(&dir, sys.path()), Some(false));
    std::fs::write(ext4.join("journal_task"), "24579\n").expect("pid");
    assert_eq!(names::ext_journal(&dir, sys.path()), Some(true));
    assert_eq!(names::ext_journal(&dir, Path::new("/nonexistent")), None);
}

#[test]
fn flush_durability_writes_shares_links_and_reads_back_the_same() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_durability(Durability::Flush);
    swap(&writer, &many(100, None));
    let live = writer.current_dir_name().expect("read").expect("live");
    let next = many(100, Some((3, b"changed")));
    let staged = writer.stage(&next).expect("stage");
    let (old, new) = (root_link_inodes(tmp.path(), &live), root_link_inodes(tmp.path(), staged.name()));
    assert_eq!(new.iter().filter(|(name, ino)| old.get(*name) == Some(ino)).count(), old.len() - 1);
    writer.persist(writer.commit(staged).expect("commit")).expect("persist");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), next);
}

#[test]
fn a_configmap_object_manifest_is_world_readable_and_never_executable() {
    // The manifests of ConfigMap objects are 0644 (Secrets' are 0600): an app or a tool
    // reading the target dir may check its files against them.
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, &snapshot_of(&[("web/nginx.conf", b"a", 0o640), ("api/app.yaml", b"b", 0o600)]));
    let mut modes = Vec::new();
    for object in std::fs::read_dir(tmp.path().join(OBJECTS_DIR)).expect("objects dir") {
        let manifest = object.expect("entry").path().join(crate::snapshot::manifest::MANIFEST_FILE);
        modes.push(std::fs::symlink_metadata(&manifest).expect("manifest").mode() & 0o7777);
    }
    assert_eq!(modes, [0o644, 0o644], "one manifest per object, 0644");
}
