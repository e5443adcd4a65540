//! Tests of the last-good store: round trips, incremental saves, and every kind of copy
//! that must not be trusted.

use super::*;
use crate::snapshot::Layout;
use crate::snapshot::tests::snapshot_of;
use crate::writer::{OBJECTS_DIR, TREE_DIR};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

fn origin() -> Origin {
    Origin { namespace: "shop".into(), selector: "app=web".into(), layout: Layout::ByName }
}

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect()
}

fn sample() -> Snapshot {
    snapshot_of(&[
        ("web/nginx.conf", b"worker_processes 1;\n".as_slice(), 0o644),
        ("web/secret.key", b"\x00\xff\x00key", 0o600),
        ("web/empty", b"", 0o755),
        ("big/big.bin", &binary(), 0o640),
    ])
}

fn stored_file(dir: &Path, path: &str) -> PathBuf {
    let snapshot = writer::read_current(dir).expect("read").expect("a copy");
    let object = snapshot.tree().get(path.split('/').next().expect("top")).expect("entry").members()[0]
        .object
        .dir_name();
    dir.join(OBJECTS_DIR).join(object).join(path.split_once('/').expect("key").1)
}

#[test]
fn saved_snapshot_loads_back_with_binary_content_and_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    let snap = sample();
    store.save(&snap).expect("save");
    let loaded = store.load().expect("load").expect("a copy");
    assert_eq!(loaded, snap);
    assert_eq!(loaded.read("big/big.bin"), Some(binary()));
    let modes: Vec<u32> = ["web/secret.key", "web/empty"]
        .iter()
        .map(|p| loaded.files().find(|(path, ..)| path == p).map(|(_, _, f)| f.mode).expect("file"))
        .collect();
    assert_eq!(modes, [0o600, 0o755]);
}

#[test]
fn empty_store_loads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("a/b"), origin()).expect("open creates the dir");
    assert!(store.load().expect("load").is_none());
}

#[test]
fn the_state_dir_is_private_and_has_no_visible_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let store = Store::open(&state, origin()).expect("open");
    store.save(&sample()).expect("save");
    assert_eq!(std::fs::metadata(&state).expect("stat dir").mode() & 0o777, 0o700);
    assert!(std::fs::symlink_metadata(state.join("web")).is_err(), "no visible links in the state dir");
    assert_eq!(std::fs::metadata(stored_file(&state, "web/secret.key")).expect("stat").mode() & 0o777, 0o600);
}

#[test]
fn a_save_replaces_the_previous_copy_and_keeps_unchanged_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    let big = std::fs::metadata(stored_file(dir.path(), "big/big.bin")).expect("stat").ino();
    let newer = snapshot_of(&[
        ("web/nginx.conf", b"worker_processes 2;\n".as_slice(), 0o644),
        ("big/big.bin", &binary(), 0o640),
    ]);
    store.save(&newer).expect("save");
    assert_eq!(store.load().expect("load").expect("a copy"), newer);
    assert_eq!(
        std::fs::metadata(stored_file(dir.path(), "big/big.bin")).expect("stat").ino(),
        big,
        "not rewritten"
    );
    assert_eq!(std::fs::read_dir(dir.path().join(OBJECTS_DIR)).expect("list").count(), 2);
}

#[test]
fn tampered_truncated_or_missing_files_make_the_copy_untrusted() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("flipped byte", |p| {
            let mut bytes = std::fs::read(p).expect("read");
            bytes[0] ^= 1;
            std::fs::write(p, bytes).expect("write");
        }),
        ("truncated", |p| std::fs::write(p, b"").expect("truncate")),
        ("missing", |p| std::fs::remove_file(p).expect("remove")),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), origin()).expect("open");
        store.save(&sample()).expect("save");
        let file = stored_file(dir.path(), "big/big.bin");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        damage(&file);
        assert!(store.load().expect("load").is_none(), "{what}");
    }
}

#[test]
fn a_damaged_manifest_or_link_makes_the_copy_untrusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    let root = std::fs::read_link(dir.path().join(writer::DATA_LINK)).expect("data link");
    std::fs::write(dir.path().join(root).join("..manifest.json"), b"[").expect("break the root manifest");
    assert!(store.load().expect("load").is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    let tree = dir.path().join(TREE_DIR);
    let leaf = std::fs::read_dir(&tree)
        .expect("list")
        .flatten()
        .find(|e| std::fs::read_dir(e.path()).expect("node").flatten().any(|c| c.file_name() == "web"))
        .expect("the leaf holding web");
    std::fs::remove_file(leaf.path().join("web")).expect("unlink");
    std::os::unix::fs::symlink("/etc", leaf.path().join("web")).expect("plant");
    assert!(store.load().expect("load").is_none());
}

#[test]
fn copies_of_another_origin_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    let others = [
        Origin { namespace: "other".into(), ..origin() },
        Origin { selector: "app=api".into(), ..origin() },
        Origin { layout: Layout::Flat, ..origin() },
    ];
    for other in others {
        let foreign = Store::open(dir.path(), other.clone()).expect("open");
        assert!(foreign.load().expect("load").is_none(), "{other:?}");
    }
    assert!(Store::open(dir.path(), origin()).expect("open").load().expect("load").is_some());
}

#[test]
fn open_removes_an_old_format_copy_and_leaves_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(OLD_FILE), b"CSNAPLG1...").expect("write");
    std::fs::write(dir.path().join("operator-notes"), b"keep me").expect("write");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    assert!(!dir.path().join(OLD_FILE).exists());
    assert!(dir.path().join("operator-notes").exists());
    assert_eq!(store.load().expect("load").expect("a copy"), sample());
}

#[test]
fn a_symlink_in_place_of_the_data_link_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let real = Store::open(elsewhere.path(), origin()).expect("open");
    real.save(&sample()).expect("save");
    let store = Store::open(dir.path(), origin()).expect("open");
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(writer::DATA_LINK)).expect("link");
    assert!(store.load().expect("load").is_none());
    assert!(real.load().expect("load").is_some(), "the other dir is untouched");
}

#[test]
fn a_group_or_world_writable_state_dir_is_refused_and_a_readable_one_made_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [0o777, 0o770, 0o1777] {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
        let err = Store::open(dir.path(), origin()).expect_err("must refuse");
        assert!(matches!(err, Error::Unsafe { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains("--state-dir"), "{err}");
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Store::open(dir.path(), origin()).expect("a dir only we write is fine");
    assert_eq!(std::fs::metadata(dir.path()).expect("stat").mode() & 0o7777, 0o700);
}

#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = nix::unistd::geteuid().as_raw().wrapping_add(4242);
    if std::os::unix::fs::chown(dir.path(), Some(other), None).is_err() {
        // Not root: nobody can give a dir away, so the case cannot arise here.
        return;
    }
    let err = Store::open(dir.path(), origin()).expect_err("must refuse");
    assert!(err.to_string().contains("owned by uid"), "{err}");
}

#[test]
fn a_copy_in_dirs_others_may_write_is_not_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    store.save(&sample()).expect("save");
    let objects = dir.path().join(OBJECTS_DIR);
    std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    assert!(store.load().expect("load").is_none(), "a dir others may write is not trusted");
    std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(store.load().expect("load"), Some(sample()));
}

#[test]
fn junk_and_leftovers_in_the_state_dir_never_stop_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), origin()).expect("open");
        store.save(&sample()).expect("save");
    }
    let tmp_dir = dir.path().join(".tmp-12345");
    std::fs::create_dir_all(tmp_dir.join("nested")).expect("tmp dir");
    std::fs::write(tmp_dir.join("nested/x"), "half").expect("tmp file");
    std::fs::write(dir.path().join(".tmp-file"), "half").expect("tmp file");
    std::os::unix::fs::symlink("/etc", dir.path().join(".tmp-link")).expect("tmp link");
    std::fs::create_dir(dir.path().join(writer::DATA_TMP_LINK)).expect("planted dir");
    std::fs::write(dir.path().join(TREE_DIR).join("junk"), "x").expect("junk node");
    std::fs::write(dir.path().join("..2020_01_01_00_00_00.123456789"), "not a dir").expect("junk root");
    let store = Store::open(dir.path(), origin()).expect("junk never fails open");
    for gone in [".tmp-12345", ".tmp-file", ".tmp-link"] {
        assert!(std::fs::symlink_metadata(dir.path().join(gone)).is_err(), "{gone}");
    }
    assert!(Path::new("/etc/passwd").exists(), "a link is removed, never followed");
    assert_eq!(store.load().expect("load"), Some(sample()));
    store.save(&snapshot_of(&[("web/a", b"new", 0o644)])).expect("saves still land");
}

#[test]
fn a_shared_target_dir_round_trips_through_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    let member = |name: &str, key: &str| {
        let object = crate::snapshot::tests::object(name, &[(key, b"x", 0o644)]);
        std::sync::Arc::new(object.with_target(Some("rules".into())))
    };
    let snap = Snapshot::from_objects(Layout::ByName, [member("a", "a.conf"), member("b", "b.conf")]);
    store.save(&snap).expect("save");
    let loaded = store.load().expect("load").expect("a copy");
    assert_eq!(loaded, snap);
    assert_eq!(loaded.read("rules/b.conf"), Some(b"x".to_vec()));
}

#[test]
fn a_state_dir_path_that_cannot_be_looked_at_is_refused_not_created() {
    // Only a state dir that does not exist is created: a path through a regular file
    // (ENOTDIR) is the operator's to fix, and the error names the stat that failed.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"not a dir").expect("write");
    let error = Store::open(&file.join("state"), origin()).expect_err("refused");
    assert!(matches!(&error, Error::Io { action, .. } if action.starts_with("stat ")), "{error}");
}
