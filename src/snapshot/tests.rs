//! Tests of the snapshot model and its tree, and a builder the other modules' tests use.

use super::*;
use crate::source::{Input, ObjectId, SourceObject};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// `(path or key, content, mode)` of one test file.
pub(crate) type TestFile<'a> = (&'a str, &'a [u8], u32);

/// A by-name snapshot of `(path, content, mode)`: the first path element names the
/// object (a ConfigMap, or a Directory when the rest of the path is nested).
pub(crate) fn snapshot_of(files: &[TestFile<'_>]) -> Snapshot {
    let mut objects: BTreeMap<&str, Vec<TestFile<'_>>> = BTreeMap::new();
    for (path, content, mode) in files {
        let (name, key) = path.split_once('/').expect("test paths are <object>/<key>");
        objects.entry(name).or_default().push((key, content, *mode));
    }
    Snapshot::from_objects(
        Layout::ByName,
        objects.into_iter().map(|(name, files)| Arc::new(object(name, &files))),
    )
}

/// One object named `name` with these `(key, content, mode)` files.
pub(crate) fn object(name: &str, files: &[TestFile<'_>]) -> Object {
    let kind = if files.iter().any(|(k, ..)| k.contains('/')) {
        SourceKind::Directory
    } else {
        SourceKind::ConfigMap
    };
    let id = ObjectId { kind, name: name.to_owned() };
    let source = SourceRef {
        kind,
        namespace: "ns".into(),
        name: name.to_owned(),
        uid: format!("uid-{name}"),
        resource_version: "1".into(),
    };
    let entries: BTreeMap<String, Bytes> =
        files.iter().map(|(k, c, _)| ((*k).to_owned(), Bytes::copy_from_slice(c))).collect();
    let described = files
        .iter()
        .map(|(key, content, mode)| ObjectFile {
            key: (*key).to_owned(),
            mode: *mode,
            size: content.len() as u64,
            sha256: object::sha256(content),
        })
        .collect();
    let raw = SourceObject {
        id: id.clone(),
        namespace: "ns".into(),
        uid: source.uid.clone(),
        resource_version: "1".into(),
        mode_annotation: None,
        target_annotation: None,
        entries,
        duplicate_keys: Vec::new(),
    };
    Object::new(id, source, described, Input::Object(Arc::new(raw)))
}

#[test]
fn hash_changes_with_content_mode_and_path_but_not_source_metadata() {
    let base = snapshot_of(&[("a/x", b"1", 0o644)]);
    assert_ne!(base.hash, snapshot_of(&[("a/x", b"2", 0o644)]).hash);
    assert_ne!(base.hash, snapshot_of(&[("a/x", b"1", 0o600)]).hash);
    assert_ne!(base.hash, snapshot_of(&[("a/y", b"1", 0o644)]).hash);
    let mut relabelled = object("a", &[("x", b"1", 0o644)]);
    relabelled.source.resource_version = "99".into();
    assert_eq!(Snapshot::from_objects(Layout::ByName, [Arc::new(relabelled)]).hash, base.hash);
    assert_eq!(base.hash.to_string().parse::<ContentHash>(), Ok(base.hash));
}

#[test]
fn key_and_content_boundaries_are_unambiguous() {
    assert_ne!(snapshot_of(&[("a/ab", b"c", 0o644)]).hash, snapshot_of(&[("a/a", b"bc", 0o644)]).hash);
}

#[test]
fn the_hash_is_the_same_whatever_the_order_objects_arrive_in() {
    let objects: Vec<Arc<Object>> =
        (0..300).map(|i| Arc::new(object(&format!("cm{i}"), &[("k", b"v", 0o644)]))).collect();
    let forward = Snapshot::from_objects(Layout::ByName, objects.iter().cloned());
    let backward = Snapshot::from_objects(Layout::ByName, objects.iter().rev().cloned());
    assert_eq!(forward.hash, backward.hash);
    assert_eq!(forward.object_count(), 300);
    assert_eq!(forward.top_level().count(), 300);
}

#[test]
fn one_change_touches_one_leaf_and_reports_only_that_object() {
    let objects: Vec<Arc<Object>> =
        (0..1000).map(|i| Arc::new(object(&format!("cm{i}"), &[("k", b"v", 0o644)]))).collect();
    let before = Snapshot::from_objects(Layout::ByName, objects.iter().cloned());
    let mut after = before.clone();
    let changed = Arc::new(object("cm7", &[("k", b"new", 0o644)]));
    after.change([(Some(Arc::clone(&objects[7])), Some(Arc::clone(&changed)))]);
    assert_ne!(after.hash, before.hash);
    assert_eq!(after.tree().changed_leaves(before.tree()).count(), 1);
    let reported = after.changed_since(Some(&before));
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].id.name, "cm7");
    assert_eq!(after.read("cm7/k"), Some(b"new".to_vec()));
    assert_eq!(after.read("cm8/k"), Some(b"v".to_vec()));
    let mut removed = after.clone();
    removed.change([(Some(changed), None)]);
    assert_eq!(removed.removed_since(&after), vec!["cm7".to_string()]);
    assert_eq!(removed.object_count(), 999);
}

#[test]
fn flat_layout_shows_each_key_at_the_top() {
    let two = Arc::new(object("a", &[("x.conf", b"1", 0o644), ("y.conf", b"2", 0o644)]));
    let snapshot = Snapshot::from_objects(Layout::Flat, [two]);
    assert_eq!(snapshot.top_level().collect::<BTreeSet<_>>(), BTreeSet::from(["x.conf", "y.conf"]));
    assert_eq!(snapshot.object_count(), 1);
    assert_eq!(snapshot.file_count(), 2);
    assert_eq!(snapshot.read("y.conf"), Some(b"2".to_vec()));
}

#[test]
fn the_rest_of_a_change_keeps_one_object_as_it_was() {
    let before = snapshot_of(&[("web/a", b"1", 0o644), ("api/b", b"1", 0o644)]);
    let after = snapshot_of(&[("web/a", b"big", 0o644), ("api/b", b"2", 0o644), ("new/c", b"1", 0o644)]);
    let web = ObjectId { kind: SourceKind::ConfigMap, name: "web".into() };
    let rest = after.with_object_as_in(&web, &before).expect("no collision");
    assert_eq!(rest.read("web/a"), Some(b"1".to_vec()), "web as it was");
    assert_eq!(rest.read("api/b"), Some(b"2".to_vec()), "every other change");
    assert_eq!(rest.read("new/c"), Some(b"1".to_vec()));
    let added = ObjectId { kind: SourceKind::ConfigMap, name: "new".into() };
    let without = after.with_object_as_in(&added, &before).expect("no collision");
    assert_eq!(without.read("new/c"), None, "a new object that does not fit stays out");
    assert_eq!(without.object_count(), 2);
}

#[test]
fn an_object_whose_old_entries_were_taken_cannot_go_back() {
    let key = |name: &str, key: &str| Arc::new(object(name, &[(key, b"v", 0o644)]));
    let before = Snapshot::from_objects(Layout::Flat, [key("one", "a.conf")]);
    let after = Snapshot::from_objects(Layout::Flat, [key("one", "b.conf"), key("two", "a.conf")]);
    let one = ObjectId { kind: SourceKind::ConfigMap, name: "one".into() };
    assert!(after.with_object_as_in(&one, &before).is_none(), "a.conf is two's now");
}

#[test]
fn an_object_goes_back_into_a_shared_dir_unless_another_member_took_its_name() {
    let member = |name: &str, key: &str, content: &[u8]| {
        Arc::new(object(name, &[(key, content, 0o644)]).with_target(Some("rules".into())))
    };
    let before = Snapshot::from_objects(
        Layout::ByName,
        [member("one", "a.conf", b"1"), member("two", "b.conf", b"1")],
    );
    let after = Snapshot::from_objects(
        Layout::ByName,
        [member("one", "a.conf", b"big"), member("two", "b.conf", b"2")],
    );
    let one = ObjectId { kind: SourceKind::ConfigMap, name: "one".into() };
    let rest = after.with_object_as_in(&one, &before).expect("a.conf is free");
    assert_eq!(rest.read("rules/a.conf"), Some(b"1".to_vec()));
    assert_eq!(rest.read("rules/b.conf"), Some(b"2".to_vec()));
    let taken = Snapshot::from_objects(
        Layout::ByName,
        [member("one", "c.conf", b"1"), member("two", "a.conf", b"2")],
    );
    assert!(taken.with_object_as_in(&one, &before).is_none(), "rules/a.conf is two's now");
}
