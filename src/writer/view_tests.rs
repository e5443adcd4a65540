//! Tests of the validation view: every file of the staged snapshot at its app-visible
//! path, as a regular file inside real directories, seen by a walk that follows no link.

use super::tests::{open, swap};
use super::*;
use crate::snapshot::tests::object;
use crate::snapshot::{Layout, Snapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every regular file below `dir` with its text; panics on a symlink (a walker that
/// follows no link would miss what is behind it).
fn walk_without_links(dir: &Path) -> BTreeMap<String, String> {
    configsnap_kit::fs::tree(dir)
        .into_iter()
        .map(|(path, entry)| match entry {
            configsnap_kit::fs::Entry::File(bytes) => (path, String::from_utf8(bytes).expect("utf-8")),
            configsnap_kit::fs::Entry::Link(target) => panic!("{path} is a link to {target}"),
        })
        .collect()
}

fn staged_view_files(snapshot: &Snapshot) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    swap(
        &writer,
        &Snapshot::from_objects(snapshot.layout(), [Arc::new(object("old", &[("k", b"v", 0o644)]))]),
    );
    let mut staged = writer.stage(snapshot).expect("stage");
    let view = writer.staged_view(&mut staged).expect("view");
    let files = walk_without_links(&view);
    writer.discard(staged).expect("discard");
    files
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn the_view_shows_every_file_by_name_as_a_regular_file() {
    let snapshot = Snapshot::from_objects(
        Layout::ByName,
        [
            Arc::new(object("web", &[("nginx.conf", b"BAD", 0o644), ("sub/inner.conf", b"deep", 0o600)])),
            Arc::new(object("api", &[("a.yaml", b"a: 1", 0o644)])),
        ],
    );
    let files = staged_view_files(&snapshot);
    assert_eq!(
        files,
        expected(&[("api/a.yaml", "a: 1"), ("web/nginx.conf", "BAD"), ("web/sub/inner.conf", "deep")])
    );
}

#[test]
fn the_view_shows_flat_and_shared_dirs_at_their_visible_paths() {
    let flat = Snapshot::from_objects(
        Layout::Flat,
        [
            Arc::new(object("one", &[("a.conf", b"1", 0o644)])),
            Arc::new(object("two", &[("b.conf", b"2", 0o644), ("d/c.conf", b"3", 0o644)])),
        ],
    );
    assert_eq!(staged_view_files(&flat), expected(&[("a.conf", "1"), ("b.conf", "2"), ("d/c.conf", "3")]));
    let shared = Snapshot::from_objects(
        Layout::ByName,
        (0..3).map(|i| {
            let member = object(&format!("m{i}"), &[(&format!("m{i}.conf"), b"r", 0o644)]);
            Arc::new(member.with_target(Some("rules".into())))
        }),
    );
    assert_eq!(
        staged_view_files(&shared),
        expected(&[("rules/m0.conf", "r"), ("rules/m1.conf", "r"), ("rules/m2.conf", "r")])
    );
}

#[test]
fn the_view_of_many_objects_shows_each_of_them() {
    let snapshot = Snapshot::from_objects(
        Layout::ByName,
        (0..2000).map(|i| Arc::new(object(&format!("cm{i:04}"), &[("k", b"v", 0o644)]))),
    );
    let files = staged_view_files(&snapshot);
    assert_eq!(files.len(), 2000);
    assert_eq!(files.get("cm1999/k").map(String::as_str), Some("v"));
}

#[test]
fn the_view_is_kept_and_changes_only_what_changed() {
    use std::os::unix::fs::MetadataExt;
    let version = |changed: &[u8], with_gone: bool| {
        let mut objects = vec![
            Arc::new(object("web", &[("nginx.conf", changed, 0o644)])),
            Arc::new(object("api", &[("a.yaml", b"same", 0o644)])),
        ];
        if with_gone {
            objects.push(Arc::new(object("gone", &[("g", b"g", 0o644)])));
        }
        Snapshot::from_objects(Layout::ByName, objects)
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    writer.load_current().expect("start as the sidecar does");
    let mut first = writer.stage(&version(b"v1", true)).expect("stage");
    let view = writer.staged_view(&mut first).expect("view");
    let api_dir = std::fs::metadata(view.join("api")).expect("api").ino();
    writer.persist(writer.commit(first).expect("commit")).expect("persist");

    let mut refused = writer.stage(&version(b"BAD", false)).expect("stage");
    assert_eq!(writer.staged_view(&mut refused).expect("view"), view, "the same view, updated");
    assert_eq!(
        walk_without_links(&view),
        expected(&[("api/a.yaml", "same"), ("web/nginx.conf", "BAD")]),
        "changed and removed entries follow; the rest stays"
    );
    assert_eq!(
        std::fs::metadata(view.join("api")).expect("api").ino(),
        api_dir,
        "an unchanged entry is not rebuilt"
    );
    writer.discard(refused).expect("discard");
    assert_eq!(
        walk_without_links(&view),
        expected(&[("api/a.yaml", "same"), ("gone/g", "g"), ("web/nginx.conf", "v1")]),
        "after a refusal the view shows the current snapshot again, not the refused one"
    );

    let mut next = writer.stage(&version(b"v2", true)).expect("stage");
    writer.staged_view(&mut next).expect("view");
    assert_eq!(
        walk_without_links(&view),
        expected(&[("api/a.yaml", "same"), ("gone/g", "g"), ("web/nginx.conf", "v2")])
    );
    writer.persist(writer.commit(next).expect("commit")).expect("persist");
}

#[test]
fn a_view_removed_under_the_writer_is_built_anew() {
    let snapshot =
        |v: &[u8]| Snapshot::from_objects(Layout::ByName, [Arc::new(object("web", &[("k", v, 0o644)]))]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = open(tmp.path());
    writer.load_current().expect("start as the sidecar does");
    let mut first = writer.stage(&snapshot(b"1")).expect("stage");
    let view = writer.staged_view(&mut first).expect("view");
    writer.persist(writer.commit(first).expect("commit")).expect("persist");
    std::fs::remove_dir_all(&view).expect("someone removes it");
    let mut second = writer.stage(&snapshot(b"2")).expect("stage");
    let rebuilt = writer.staged_view(&mut second).expect("view");
    assert_eq!(walk_without_links(&rebuilt), expected(&[("web/k", "2")]));
    writer.discard(second).expect("discard");
}
