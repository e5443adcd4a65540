//! Tests of the last-good store: round trips, and every kind of copy that must not be
//! trusted.

use super::*;
use crate::snapshot::{File as SnapFile, Layout, SourceRef};
use crate::source::SourceKind;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

fn origin() -> Origin {
    Origin { namespace: "shop".into(), selector: "app=web".into(), layout: Layout::ByName }
}

fn snapshot(files: &[(&str, &[u8], u32)]) -> Snapshot {
    let files: BTreeMap<String, SnapFile> = files
        .iter()
        .map(|(path, content, mode)| {
            let file = SnapFile { content: Bytes::copy_from_slice(content), mode: *mode, source: 0 };
            ((*path).to_owned(), file)
        })
        .collect();
    let source = SourceRef {
        kind: SourceKind::ConfigMap,
        namespace: "shop".into(),
        name: "web".into(),
        uid: "uid-1".into(),
        resource_version: "42".into(),
    };
    Snapshot::new(files, vec![source])
}

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect()
}

fn sample() -> Snapshot {
    snapshot(&[
        ("web/nginx.conf", b"worker_processes 1;\n", 0o644),
        ("web/secret.key", b"\x00\xff\x00key", 0o600),
        ("web/empty", b"", 0o755),
        ("web/big.bin", &binary(), 0o640),
    ])
}

fn save(store: &Store, snap: &Snapshot) {
    let manifest = Manifest::describe(snap, store.origin());
    store.save(snap, &manifest).expect("save");
}

fn stored_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(FILE)).expect("read the stored file")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn saved_snapshot_loads_back_with_binary_content_and_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    let snap = sample();
    let manifest = Manifest::describe(&snap, &origin());
    store.save(&snap, &manifest).expect("save");
    let (loaded, loaded_manifest) = store.load().expect("load").expect("a copy");
    assert_eq!(loaded, snap);
    assert_eq!(loaded_manifest, manifest);
    assert_eq!(loaded.files["web/secret.key"].mode, 0o600);
    assert_eq!(loaded.files["web/empty"].mode, 0o755);
}

#[test]
fn empty_store_loads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("a/b"), origin()).expect("open creates the dir");
    assert!(store.load().expect("load").is_none());
}

#[test]
fn state_dir_and_file_are_private_and_only_one_file_remains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let store = Store::open(&state, origin()).expect("open");
    save(&store, &sample());
    let dir_mode = std::fs::metadata(&state).expect("stat dir").mode() & 0o777;
    let file_mode = std::fs::metadata(state.join(FILE)).expect("stat").mode() & 0o777;
    assert_eq!((dir_mode, file_mode), (0o700, 0o600));
    assert_eq!(names(&state), [FILE]);
}

#[test]
fn save_replaces_the_previous_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    save(&store, &sample());
    let newer = snapshot(&[("web/nginx.conf", b"worker_processes 2;\n", 0o644)]);
    save(&store, &newer);
    let (loaded, _) = store.load().expect("load").expect("a copy");
    assert_eq!(loaded, newer);
    assert_eq!(names(dir.path()), [FILE]);
}

#[test]
fn truncated_copies_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    save(&store, &sample());
    let full = stored_bytes(dir.path());
    let manifest_end = HEADER_LEN + 100;
    for len in [0, 5, HEADER_LEN, manifest_end, full.len() - 1_000_000, full.len() - 1] {
        std::fs::write(dir.path().join(FILE), &full[..len]).expect("truncate");
        assert!(store.load().expect("load").is_none(), "length {len}");
    }
}

#[test]
fn tampered_or_extended_copies_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    save(&store, &sample());
    let full = stored_bytes(dir.path());
    let mut flipped = full.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut extended = full.clone();
    extended.extend_from_slice(b"more");
    let mut bad_magic = full.clone();
    bad_magic[0] = b'X';
    let mut bad_json = full.clone();
    bad_json[HEADER_LEN] = b'[';
    for (what, bytes) in [
        ("flipped content byte", flipped),
        ("trailing bytes", extended),
        ("bad magic", bad_magic),
        ("bad manifest JSON", bad_json),
    ] {
        std::fs::write(dir.path().join(FILE), &bytes).expect("write");
        assert!(store.load().expect("load").is_none(), "{what}");
    }
}

#[test]
fn decode_rejects_each_kind_of_damage_with_its_reason() {
    let snap = sample();
    let manifest = Manifest::describe(&snap, &origin());
    let mut good = Vec::new();
    encode(&mut good, &snap, &manifest).expect("encode");
    let mut huge_length = good.clone();
    huge_length[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    let not_json = [MAGIC.as_slice(), &1u64.to_be_bytes(), b"{"].concat();
    // (case, bytes, reason expected in the message)
    let cases = [
        ("empty", Vec::new(), "not a configsnap last-good file"),
        ("huge manifest length", huge_length, "manifest is truncated"),
        ("short manifest", good[..HEADER_LEN + 10].to_vec(), "manifest is truncated"),
        ("short contents", good[..good.len() - 1].to_vec(), "contents are truncated"),
        ("extra bytes", [good.as_slice(), b"x"].concat(), "extra bytes"),
        ("manifest not JSON", not_json, "failed to parse manifest"),
    ];
    for (what, bytes, reason) in cases {
        let err = decode(&Bytes::from(bytes)).expect_err(what);
        let text = format!(
            "{err}: {}",
            std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default()
        );
        assert!(text.contains(reason), "{what}: {text}");
    }
    let (decoded, _) = decode(&Bytes::from(good)).expect("the good copy decodes");
    assert_eq!(decoded, snap);
    // A path that would escape the target dir is refused even when the digests agree.
    let evil = snapshot(&[("../etc/passwd", b"root::0:0", 0o644)]);
    let mut bytes = Vec::new();
    encode(&mut bytes, &evil, &Manifest::describe(&evil, &origin())).expect("encode");
    let err = decode(&Bytes::from(bytes)).expect_err("unsafe path");
    assert!(matches!(&err, Error::Corrupt(m) if m.contains("unsafe path")), "{err}");
}

#[test]
fn copies_of_another_origin_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    save(&store, &sample());
    let others = [
        Origin { namespace: "other".into(), ..origin() },
        Origin { selector: "app=api".into(), ..origin() },
        Origin { layout: Layout::Flat, ..origin() },
    ];
    for other in others {
        let foreign = Store::open(dir.path(), other.clone()).expect("open");
        assert!(foreign.load().expect("load").is_none(), "{other:?}");
    }
    assert!(store.load().expect("load").is_some());
}

#[test]
fn save_refuses_a_manifest_that_does_not_describe_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    let snap = sample();
    let other = snapshot(&[("web/x", b"x", 0o644)]);
    let foreign_origin = Origin { namespace: "other".into(), ..origin() };
    let manifests = [Manifest::describe(&other, &origin()), Manifest::describe(&snap, &foreign_origin)];
    for manifest in manifests {
        let err = store.save(&snap, &manifest).expect_err("mismatch");
        assert!(matches!(err, Error::Mismatch(_)), "{err}");
    }
    assert!(names(dir.path()).is_empty());
}

#[test]
fn open_removes_leftover_temp_files_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), origin()).expect("open");
    save(&store, &sample());
    std::fs::write(dir.path().join(".tmp-0123456789abcdef"), b"half written").expect("write");
    std::fs::write(dir.path().join("operator-notes"), b"keep me").expect("write");
    let store = Store::open(dir.path(), origin()).expect("reopen");
    assert_eq!(names(dir.path()), ["operator-notes", FILE]);
    assert_eq!(store.load().expect("load").expect("a copy").0, sample());
}

#[test]
fn a_symlink_in_place_of_the_copy_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let real = Store::open(elsewhere.path(), origin()).expect("open");
    save(&real, &sample());
    let store = Store::open(dir.path(), origin()).expect("open");
    std::os::unix::fs::symlink(elsewhere.path().join(FILE), dir.path().join(FILE)).expect("link");
    assert!(store.load().expect("load").is_none());
}
