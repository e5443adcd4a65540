//! The writer's error labels (`configsnap_swap_failures_total{reason}`) and what the
//! pipeline reads from them.

use super::Error;
use crate::source::{ObjectId, SourceKind};
use nix::errno::Errno;

fn os(errno: Errno) -> Error {
    Error::Io { action: "write a file".into(), source: std::io::Error::from_raw_os_error(errno as i32) }
}

fn in_object(error: Error) -> Error {
    Error::Object {
        object: ObjectId { kind: SourceKind::ConfigMap, name: "web".into() },
        source: Box::new(error),
    }
}

#[test]
fn each_os_error_has_its_label_and_an_object_carries_its_causes() {
    let table = [
        (Errno::ENOSPC, "no_space"),
        (Errno::EDQUOT, "quota"),
        (Errno::EFBIG, "file_too_large"),
        (Errno::EROFS, "read_only"),
        (Errno::EMFILE, "too_many_files"),
        (Errno::ENFILE, "too_many_files"),
        (Errno::EACCES, "permission"),
        (Errno::EPERM, "permission"),
        (Errno::ENOTDIR, "blocked_path"),
        (Errno::EISDIR, "blocked_path"),
        (Errno::EEXIST, "blocked_path"),
        (Errno::ELOOP, "blocked_path"),
        (Errno::EIO, "io"),
    ];
    for (errno, label) in table {
        assert_eq!(os(errno).label(), label, "{errno}");
        assert_eq!(in_object(os(errno)).label(), label, "{errno} inside an object");
    }
    let other = Error::Io { action: "read".into(), source: std::io::Error::other("no errno") };
    assert_eq!(other.label(), "io");
    assert_eq!(Error::ForeignData("/etc".into()).label(), "foreign_data");
    assert_eq!(Error::Damaged { dir: "..x".into(), reason: "hash".into() }.label(), "damaged");
}

#[test]
fn only_a_read_only_or_forbidden_dir_refuses_writes_altogether() {
    for errno in [Errno::EROFS, Errno::EACCES, Errno::EPERM] {
        assert!(os(errno).target_refuses_writes(), "{errno}");
    }
    for errno in [Errno::ENOSPC, Errno::EDQUOT, Errno::EFBIG, Errno::EEXIST, Errno::EMFILE, Errno::EIO] {
        assert!(!os(errno).target_refuses_writes(), "{errno}");
    }
}

#[test]
fn only_an_object_that_ran_out_of_room_can_be_left_behind() {
    for errno in [Errno::ENOSPC, Errno::EDQUOT, Errno::EFBIG] {
        let error = in_object(os(errno));
        assert_eq!(error.object_without_room().map(|o| o.name.as_str()), Some("web"), "{errno}");
        assert!(os(errno).object_without_room().is_none(), "{errno}: no object named");
    }
    for errno in [Errno::EROFS, Errno::EACCES, Errno::EMFILE, Errno::ELOOP, Errno::EIO] {
        assert!(in_object(os(errno)).object_without_room().is_none(), "{errno}");
    }
}
