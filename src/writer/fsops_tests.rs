//! The file primitives refuse what a hostile neighbour in the shared volume could plant.

use super::fsops::{create_file, open_dir, read_file};
use nix::fcntl::{AT_FDCWD, FcntlArg, FdFlag, fcntl};
use std::os::fd::AsFd;
use std::time::Duration;

fn target() -> (tempfile::TempDir, std::os::fd::OwnedFd) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = open_dir(AT_FDCWD, tmp.path().to_str().expect("utf-8")).expect("open");
    (tmp, dir)
}

#[test]
fn a_new_file_never_replaces_or_follows_what_is_at_its_name() {
    let (tmp, dir) = target();
    std::fs::write(tmp.path().join("taken"), "old").expect("plant a file");
    let err = create_file(&dir, "taken", b"new", 0o644).expect_err("an existing name");
    assert_eq!(err.raw_os_error(), Some(nix::libc::EEXIST), "{err}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("taken")).expect("read"), "old");

    let outside = tempfile::tempdir().expect("outside");
    let victim = outside.path().join("victim");
    std::os::unix::fs::symlink(&victim, tmp.path().join("planted")).expect("plant a dangling link");
    assert!(create_file(&dir, "planted", b"new", 0o644).is_err(), "a planted link is not followed");
    assert!(!victim.exists(), "nothing was created outside");
}

#[test]
fn a_new_file_gets_exactly_its_mode_and_is_not_inherited_by_children() {
    let (tmp, dir) = target();
    let file = create_file(&dir, "secret", b"s", 0o600).expect("create");
    let flags = FdFlag::from_bits_truncate(fcntl(file.as_fd(), FcntlArg::F_GETFD).expect("F_GETFD"));
    assert!(flags.contains(FdFlag::FD_CLOEXEC), "a reload command would inherit it");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tmp.path().join("secret")).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o7777, 0o600);
}

#[test]
fn reading_a_planted_fifo_is_refused_instead_of_waiting_for_a_writer() {
    let (tmp, dir) = target();
    nix::unistd::mkfifo(&tmp.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644))
        .expect("mkfifo");
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(read_file(&dir, "fifo").map_err(|e| e.to_string()));
    });
    // Bounded only to report a hang: the read returns at once when it refuses.
    let read = result.recv_timeout(Duration::from_secs(60)).expect("read_file blocked on a fifo");
    assert!(read.expect_err("a fifo is not a regular file").contains("not a regular file"));
}

#[test]
fn reading_a_planted_link_is_refused_instead_of_following_it() {
    let (tmp, dir) = target();
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret"), "not ours").expect("outside file");
    std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("leaf")).expect("plant");
    let err = read_file(&dir, "leaf").expect_err("a link is never followed");
    assert_eq!(err.raw_os_error(), Some(nix::libc::ELOOP), "{err}");
}

#[test]
fn the_link_watch_sees_a_name_created_removed_or_renamed_away_or_in() {
    // On its own thread: a watch that blocks instead of saying "nothing more" fails the
    // test rather than hanging it.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (tmp, dir) = target();
        let watch = super::guard::LinkWatch::open(&dir);
        let touched = || -> Vec<String> { watch.touched().expect("a watch").into_iter().collect() };
        std::fs::write(tmp.path().join("made"), "").expect("create");
        std::fs::write(tmp.path().join("from"), "").expect("create");
        let created = touched();
        std::fs::remove_file(tmp.path().join("made")).expect("remove");
        let removed = touched();
        std::fs::rename(tmp.path().join("from"), tmp.path().join("to")).expect("rename");
        let renamed = touched();
        let _ = done.send([created, removed, renamed, touched()]);
    });
    let [created, removed, renamed, since] =
        result.recv_timeout(Duration::from_secs(60)).expect("reading the link watch blocked");
    assert_eq!(created, ["from", "made"]);
    assert_eq!(removed, ["made"], "a removal");
    assert_eq!(renamed, ["from", "to"], "a rename, both names");
    assert!(since.is_empty(), "nothing since: {since:?}");
}
