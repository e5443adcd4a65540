//! Property tests of what the writer reads back from a directory others may have touched:
//! node names, link targets, and a last-good copy with bytes flipped anywhere. None may
//! panic, and a damaged copy is either refused or read back exactly as it was saved.

use super::{DATA_LINK, Writer};
use crate::snapshot::manifest::Origin;
use crate::snapshot::tests::snapshot_of;
use crate::snapshot::tree::{node_name, parse_node_name};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// Every regular file below `dir`, links not followed.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// `snapshot` and two objects sharing `rules/` (a merged node, manifests with a target).
fn with_shared_dir(snapshot: crate::snapshot::Snapshot) -> crate::snapshot::Snapshot {
    let member = |name: &str, key: &str| {
        let object = crate::snapshot::tests::object(name, &[(key, b"rule", 0o644)]);
        std::sync::Arc::new(object.with_target(Some("rules".into())))
    };
    let objects = snapshot.objects().cloned().chain([member("r1", "one.yaml"), member("r2", "two.yaml")]);
    crate::snapshot::Snapshot::from_objects(snapshot.layout(), objects)
}

proptest! {
    #![proptest_config(crate::fuzz::fs_config())]

    #[test]
    fn node_names_parse_only_as_the_names_made_for_them(text in prop_oneof![any::<String>(), "[a-z2-7A-Z0-9]{24,28}"]) {
        if let Some(id) = parse_node_name(&text) {
            let mut full = [0; 32];
            full[..16].copy_from_slice(&id);
            prop_assert_eq!(node_name(&full), text);
        }
    }

    #[test]
    fn any_data_link_target_neither_panics_nor_blocks_the_next_swap(
        target in prop_oneof![any::<String>(), "(\\.\\.|/|[0-9a-f]|\\.\\.[0-9_.]{0,30}|etc){0,8}"]
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("config");
        std::fs::create_dir(&dir).expect("dir");
        if !target.is_empty() && !target.contains('\0') {
            std::os::unix::fs::symlink(&target, dir.join(DATA_LINK)).expect("plant link");
        }
        let _ = super::read_current(&dir);
        let writer = Writer::open(&dir, Origin::default()).expect("open").without_fsync();
        let _ = writer.load_current();
        writer.swap(&snapshot_of(&[("web/a", b"1", 0o644)])).expect("a swap still lands");
        prop_assert_eq!(std::fs::read(dir.join("web/a")).expect("read"), b"1");
    }

    #[test]
    fn a_copy_with_flipped_bytes_is_refused_or_read_back_exactly(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let saved = with_shared_dir(snapshot_of(&[("web/a.conf", b"worker 1;\n", 0o644), ("db/b", b"\x00\xffbin", 0o600)]));
        let writer = Writer::open(tmp.path(), Origin::default()).expect("open").without_fsync();
        writer.swap(&saved).expect("save");
        drop(writer);
        let files = files_below(tmp.path());
        let file = pick.get(&files);
        let mut bytes = std::fs::read(file).expect("read");
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        std::fs::write(file, &bytes).expect("tamper");
        let reader = Writer::open(tmp.path(), Origin::default()).expect("open").without_fsync();
        if let Ok(Some((snapshot, _))) = reader.load_current() {
            prop_assert_eq!(snapshot, saved);
        }
    }
}
