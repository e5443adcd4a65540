//! Tests of the atomic writer on real directories.

use super::*;
use crate::snapshot::manifest::Origin;
use crate::snapshot::{File as SnapFile, SourceRef};
use crate::source::SourceKind;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

fn snapshot(files: &[(&str, &str, u32)]) -> Snapshot {
    let files: BTreeMap<_, _> = files
        .iter()
        .map(|(path, content, mode)| {
            let file =
                SnapFile { content: Bytes::copy_from_slice(content.as_bytes()), mode: *mode, source: 0 };
            ((*path).to_string(), file)
        })
        .collect();
    let source = SourceRef {
        kind: SourceKind::ConfigMap,
        namespace: "ns".into(),
        name: "web".into(),
        uid: "u".into(),
        resource_version: "1".into(),
    };
    Snapshot::new(files, vec![source])
}

fn swap(writer: &Writer, snap: &Snapshot) {
    writer.swap(snap, &Manifest::describe(snap, &Origin::default())).expect("swap succeeds");
}

fn snapshot_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| is_snapshot_dir_name(n))
        .collect();
    names.sort();
    names
}

#[test]
fn swap_writes_exact_bytes_and_modes_through_visible_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("web/nginx.conf", "a", 0o640), ("web/sub/x", "b", 0o600)]));
    let conf = tmp.path().join("web/nginx.conf");
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), "a");
    assert_eq!(std::fs::metadata(&conf).expect("stat").permissions().mode() & 0o777, 0o640);
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/sub/x")).expect("read"), "b");
    assert_eq!(std::fs::read_link(tmp.path().join("web")).expect("link"), Path::new("..data/web"));
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
}

#[test]
fn second_swap_replaces_the_dir_removes_stale_links_and_old_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("a/k", "1", 0o644), ("b/k", "1", 0o644)]));
    let first = snapshot_dirs(tmp.path());
    swap(&writer, &snapshot(&[("a/k", "2", 0o644)]));
    let second = snapshot_dirs(tmp.path());
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    assert!(!tmp.path().join("b").exists() && std::fs::symlink_metadata(tmp.path().join("b")).is_err());
    assert_eq!(std::fs::read_to_string(tmp.path().join("a/k")).expect("read"), "2");
}

#[test]
fn load_current_verifies_against_the_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    assert!(writer.load_current().expect("empty ok").is_none());
    let snap = snapshot(&[("web/a", "x", 0o644)]);
    swap(&writer, &snap);
    let (loaded, manifest) = writer.load_current().expect("load").expect("present");
    assert_eq!(loaded, snap);
    assert_eq!(manifest.hash, snap.hash.to_string());
    let real = std::fs::canonicalize(tmp.path().join("web/a")).expect("resolve");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&real, "tampered").expect("tamper");
    assert!(matches!(writer.load_current(), Err(Error::Damaged { .. })));
}

#[test]
fn a_planted_symlink_is_replaced_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("outside");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("web")).expect("plant");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("web/nginx.conf", "ours", 0o644)]));
    assert_eq!(std::fs::read_dir(outside.path()).expect("list").count(), 0, "wrote through the planted link");
    assert_eq!(std::fs::read_link(tmp.path().join("web")).expect("link"), Path::new("..data/web"));
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/nginx.conf")).expect("read"), "ours");
}

#[test]
fn a_planted_data_link_to_another_dir_is_never_read_or_deleted_through() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("keep"), "x").expect("write");
    std::os::unix::fs::symlink(outside.path(), tmp.path().join(DATA_LINK)).expect("plant");
    let writer = Writer::open(tmp.path()).expect("open");
    assert!(matches!(writer.load_current(), Err(Error::ForeignData(_))));
    swap(&writer, &snapshot(&[("web/a", "ours", 0o644)]));
    assert!(outside.path().join("keep").exists());
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "ours");
}

#[test]
fn files_configsnap_did_not_create_are_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("web"), "app's own file").expect("write");
    std::fs::write(tmp.path().join("..notes"), "x").expect("write");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("web/a", "ours", 0o644)]));
    swap(&writer, &snapshot(&[("other/a", "ours", 0o644)]));
    assert_eq!(std::fs::read_to_string(tmp.path().join("web")).expect("read"), "app's own file");
    assert!(tmp.path().join("..notes").exists());
}

#[test]
fn open_clears_leftovers_of_an_interrupted_swap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let writer = Writer::open(tmp.path()).expect("open");
        swap(&writer, &snapshot(&[("web/a", "1", 0o644)]));
    }
    let orphan = tmp.path().join("..2020_01_01_00_00_00.123456789");
    std::fs::create_dir_all(orphan.join("web")).expect("orphan");
    std::fs::write(orphan.join("web/a"), "half").expect("write");
    std::os::unix::fs::symlink("..2020_01_01_00_00_00.123456789", tmp.path().join(DATA_TMP_LINK))
        .expect("tmp link");
    let writer = Writer::open(tmp.path()).expect("reopen");
    assert!(!orphan.exists());
    assert!(std::fs::symlink_metadata(tmp.path().join(DATA_TMP_LINK)).is_err());
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert!(writer.load_current().expect("load").is_some());
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("w/a", "1", 0o777), ("w/b", "1", 0o400)]));
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
fn the_old_dir_stays_until_the_commit_is_persisted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    swap(&writer, &snapshot(&[("web/a", "1", 0o644)]));
    let old = snapshot_dirs(tmp.path());
    let next = snapshot(&[("web/a", "2", 0o644)]);
    let staged = writer.stage(&next, &Manifest::describe(&next, &Origin::default())).expect("stage");
    let committed = writer.commit(staged, &next).expect("commit");
    assert_eq!(std::fs::read_to_string(tmp.path().join("web/a")).expect("read"), "2", "visible at once");
    assert_eq!(snapshot_dirs(tmp.path()).len(), 2, "the old snapshot must survive until persist");
    assert!(snapshot_dirs(tmp.path()).contains(&old[0]));
    writer.persist(committed).expect("persist");
    assert_eq!(snapshot_dirs(tmp.path()).len(), 1);
    assert!(!snapshot_dirs(tmp.path()).contains(&old[0]));
}

#[test]
fn tidy_links_removes_a_link_left_dangling_by_a_crash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let writer = Writer::open(tmp.path()).expect("open");
    let current = snapshot(&[("web/a", "1", 0o644)]);
    swap(&writer, &current);
    // A crash after adding the link for a new entry, before the rename.
    std::os::unix::fs::symlink("..data/extra", tmp.path().join("extra")).expect("dangling link");
    writer.tidy_links(&current).expect("tidy");
    assert!(std::fs::symlink_metadata(tmp.path().join("extra")).is_err());
    assert!(std::fs::symlink_metadata(tmp.path().join("web")).is_ok());
}
