//! Tests of directories several objects share (`configsnap.io/target-dir`) on disk:
//! merged nodes written, read back, updated incrementally and collected.

use super::tests::{names, open, roll_back_before_persisting, swap};
use super::*;
use crate::snapshot::tests::object;
use crate::snapshot::{Layout, Object, Snapshot};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// `members` objects sharing `rules` (member `changed.0` holding `changed.1`), and 30
/// objects in their own dirs.
fn shared(members: usize, changed: Option<(usize, &[u8])>) -> Snapshot {
    let member = |i: usize| {
        let content: &[u8] = match changed {
            Some((at, content)) if at == i => content,
            _ => b"v",
        };
        object(&format!("m{i}"), &[(&format!("m{i}.conf"), content, 0o644)]).with_target(Some("rules".into()))
    };
    let others = (0..30).map(|i| object(&format!("cm{i}"), &[("k", b"v", 0o644)]));
    let objects: Vec<Object> = (0..members).map(member).chain(others).collect();
    Snapshot::from_objects(Layout::ByName, objects.into_iter().map(Arc::new))
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).expect("read")
}

/// A target dir holding `snapshot`, and its writer.
fn swapped(snapshot: &Snapshot) -> (tempfile::TempDir, Writer) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(&writer, snapshot);
    (tmp, writer)
}

fn object_inode(dir: &Path, snapshot: &Snapshot, name: &str, key: &str) -> u64 {
    let object = snapshot.objects().find(|o| o.id.name == name).expect("object");
    std::fs::metadata(dir.join(OBJECTS_DIR).join(object.dir_name()).join(key)).expect("stat").ino()
}

/// Inode numbers of the links in the merged node of `rules`, by name.
fn link_inodes(dir: &Path, snapshot: &Snapshot) -> std::collections::BTreeMap<String, u64> {
    let id = snapshot.tree().get("rules").and_then(crate::snapshot::tree::Entry::merged).expect("merged");
    let node = dir.join(TREE_DIR).join(crate::snapshot::tree::node_name(&id));
    std::fs::read_dir(node)
        .expect("list")
        .map(|e| e.expect("entry"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().expect("lstat").ino()))
        .collect()
}

#[test]
fn a_shared_dir_swaps_in_and_reads_back_equal() {
    let snapshot = shared(3, None);
    let (tmp, _writer) = swapped(&snapshot);
    for i in 0..3 {
        assert_eq!(read(tmp.path(), &format!("rules/m{i}.conf")), "v");
    }
    assert_eq!(read(tmp.path(), "cm4/k"), "v");
    let link = std::fs::read_link(tmp.path().join("rules/m1.conf")).expect("a link in the merged node");
    assert!(link.starts_with(format!("../../{OBJECTS_DIR}/")) && link.ends_with("m1.conf"), "{link:?}");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), snapshot);
    let reopened = open(tmp.path());
    let (loaded, _) = reopened.load_current().expect("load").expect("present");
    assert_eq!(loaded, snapshot);
    assert_eq!(loaded.read("rules/m2.conf"), Some(b"v".to_vec()));
    assert_eq!(loaded.object_count(), 33);
}

#[test]
fn updating_one_member_writes_that_object_the_merged_node_and_the_path_only() {
    let before = shared(20, None);
    let (tmp, writer) = swapped(&before);
    let untouched = object_inode(tmp.path(), &before, "m3", "m3.conf");
    let (objects, nodes) = (names(&tmp.path().join(OBJECTS_DIR)), names(&tmp.path().join(TREE_DIR)));
    let next = shared(20, Some((7, b"changed")));
    let staged = writer.stage(&next).expect("stage");
    assert_eq!(staged.created.iter().filter(|n| matches!(n, Node::Object(_))).count(), 1);
    assert_eq!(staged.created.len(), 4, "one object, the merged node, one leaf, one middle node");
    let (old, new) = (link_inodes(tmp.path(), &before), link_inodes(tmp.path(), &next));
    let shared = new.iter().filter(|(name, ino)| old.get(*name) == Some(ino)).count();
    assert_eq!((new.len(), shared), (20, 19), "the merged node shares its unchanged links");
    writer.persist(writer.commit(staged).expect("commit")).expect("persist");
    assert_eq!(read(tmp.path(), "rules/m7.conf"), "changed");
    assert_eq!(object_inode(tmp.path(), &next, "m3", "m3.conf"), untouched, "other members stay");
    assert_eq!(names(&tmp.path().join(OBJECTS_DIR)).len(), objects.len(), "the old version is collected");
    let after = names(&tmp.path().join(TREE_DIR));
    assert_eq!(after.len(), nodes.len(), "the old merged node, leaf and middle node are collected");
    assert_eq!(after.iter().filter(|n| !nodes.contains(n)).count(), 3);
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), next);
}

#[test]
fn a_shared_dir_that_shrinks_to_one_member_links_straight_to_it_and_the_merged_node_goes() {
    let (tmp, writer) = swapped(&shared(1, None));
    let single_nodes = names(&tmp.path().join(TREE_DIR)).len();
    swap(&writer, &shared(2, None));
    assert_eq!(names(&tmp.path().join(TREE_DIR)).len(), single_nodes + 1, "one merged node more");
    assert_eq!(read(tmp.path(), "rules/m1.conf"), "v");
    swap(&writer, &shared(1, None));
    assert_eq!(names(&tmp.path().join(TREE_DIR)).len(), single_nodes);
    assert!(std::fs::symlink_metadata(tmp.path().join("rules/m1.conf")).is_err());
    assert_eq!(read(tmp.path(), "rules/m0.conf"), "v");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), shared(1, None));
}

#[test]
fn a_rollback_before_the_bad_commit_is_persisted_keeps_the_merged_node() {
    let tmp = roll_back_before_persisting(&shared(5, None), &shared(5, Some((2, b"bad"))));
    assert_eq!(read(tmp.path(), "rules/m2.conf"), "v");
}

#[test]
fn strict_durability_and_the_validation_view_show_a_shared_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path()).with_durability(Durability::Strict);
    swap(&writer, &shared(4, None));
    let mut staged = writer.stage(&shared(4, Some((1, b"x")))).expect("stage");
    let view = writer.staged_view(&mut staged).expect("view");
    assert_eq!(read(&view, "rules/m1.conf"), "x");
    assert_eq!(read(&view, "rules/m0.conf"), "v");
    writer.persist(writer.commit(staged).expect("commit")).expect("persist");
    assert_eq!(read_current(tmp.path()).expect("read").expect("present"), shared(4, Some((1, b"x"))));
}

#[test]
fn a_merged_node_that_does_not_match_its_members_is_damaged() {
    let (tmp, _writer) = swapped(&shared(3, None));
    let node = std::fs::canonicalize(tmp.path().join("rules")).expect("resolve");
    std::fs::remove_file(node.join("m1.conf")).expect("remove a link");
    assert!(matches!(open(tmp.path()).load_current(), Err(Error::Damaged { .. })));
}
