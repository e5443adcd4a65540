//! Tests of the blocking directory reads.

use super::{object_name, read};
use crate::source::dir::Error;
use crate::source::dir::tests::kubelet_write;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn keys(dir: &Path) -> Vec<String> {
    let object = read(dir, "x").expect("readable").expect("present");
    object.entries.keys().cloned().collect()
}

#[test]
fn a_missing_directory_is_no_object() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(read(&tmp.path().join("nope"), "nope").expect("no error").is_none());
}

#[test]
fn reads_during_kubelet_swaps_are_never_mixed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    kubelet_write(&dir, "0", &[("a", "0"), ("conf.d/b", "0"), ("c", "0")]);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, done) = (dir.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for n in 1..=300 {
                let v = n.to_string();
                kubelet_write(&dir, &n.to_string(), &[("a", &v), ("conf.d/b", &v), ("c", &v)]);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) {
        match read(&dir, "web") {
            Ok(Some(object)) => {
                let values: Vec<&[u8]> = object.entries.values().map(AsRef::as_ref).collect();
                assert_eq!(values.len(), 3, "every key is read: {object:?}");
                assert!(values.iter().all(|v| *v == values[0]), "a mixed read: {object:?}");
                reads += 1;
            }
            Ok(None) => panic!("the volume never disappears"),
            // Five races in a row are possible under this load; never a wrong result.
            Err(Error::Unstable { .. }) => {}
            Err(error) => panic!("unexpected error: {error}"),
        }
    }
    writer.join().expect("the writer does not panic");
    assert!(reads > 0);
}

#[test]
fn a_plain_directory_skips_dot_dot_names_and_links_that_leave_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("plain");
    fs::create_dir_all(dir.join("sub/..hidden")).expect("mkdir");
    fs::write(dir.join(".dotfile"), "d").expect("write");
    fs::write(dir.join("..skipped"), "s").expect("write");
    fs::write(dir.join("sub/inner"), "i").expect("write");
    fs::write(dir.join("sub/..hidden/x"), "x").expect("write");
    fs::write(tmp.path().join("secret"), "outside").expect("write");
    symlink("../secret", dir.join("escape")).expect("symlink");
    symlink("sub/inner", dir.join("alias")).expect("symlink");
    symlink("nowhere", dir.join("dangling")).expect("symlink");
    assert_eq!(keys(&dir), [".dotfile", "alias", "sub/inner"]);
}

#[test]
fn a_data_link_pointing_outside_the_directory_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("vol");
    fs::create_dir_all(tmp.path().join("elsewhere")).expect("mkdir");
    fs::create_dir(&dir).expect("mkdir");
    symlink("../elsewhere", dir.join("..data")).expect("symlink");
    assert!(matches!(read(&dir, "vol"), Err(Error::DataLink { .. })));
}

#[test]
fn the_content_token_changes_exactly_when_the_content_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    fs::write(dir.join("k"), "v").expect("write");
    let version = || read(dir, "x").expect("readable").expect("present").resource_version;
    let first = version();
    assert_eq!(version(), first);
    fs::write(dir.join("k"), "w").expect("write");
    assert_ne!(version(), first);
}

#[test]
fn the_object_name_is_the_last_path_element() {
    assert_eq!(object_name(Path::new("/etc/config/web/")), "web");
    assert_eq!(object_name(Path::new("/")), "/");
}
