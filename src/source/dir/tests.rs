//! Tests of the directory source on real temporary directories with real inotify, and a
//! kubelet volume writer shared with the read tests.

use super::watch;
use crate::source::{Change, Notifier, SharedInventory, SourceObject};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch as channel;
use tokio_util::sync::CancellationToken;

/// Upper bound of every wait (the re-check interval is 2 s; inotify takes milliseconds).
const WAIT: Duration = Duration::from_secs(10);

/// Writes `files` the way the kubelet updates a `ConfigMap` volume: a new timestamped dir,
/// `..data_tmp` created then renamed over `..data`, visible links, the old dir removed.
pub(super) fn kubelet_write(dir: &Path, stamp: &str, files: &[(&str, &str)]) {
    let stamp = format!("..{stamp}");
    let old = fs::read_link(dir.join("..data")).ok();
    for (key, value) in files {
        let path = dir.join(&stamp).join(key);
        fs::create_dir_all(path.parent().expect("a key has a parent")).expect("create key dir");
        fs::write(path, value).expect("write key");
    }
    symlink(&stamp, dir.join("..data_tmp")).expect("create ..data_tmp");
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    for (key, _) in files {
        let top = key.split('/').next().expect("a key has a first element");
        if fs::symlink_metadata(dir.join(top)).is_err() {
            symlink(format!("..data/{top}"), dir.join(top)).expect("create visible link");
        }
    }
    if let Some(old) = old {
        fs::remove_dir_all(dir.join(old)).expect("remove old dir");
    }
}

/// Version `n` of a volume: three keys, all with the value `vN`.
fn write_version(dir: &Path, n: usize) {
    let v = format!("v{n}");
    kubelet_write(dir, &format!("2026_11_22_11_45_12.{n}"), &[("a", &v), ("conf.d/b", &v), ("c", &v)]);
}

struct Harness {
    inventory: SharedInventory,
    rx: channel::Receiver<Change>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(dirs: Vec<PathBuf>) -> Self {
        let (notifier, mut rx) = Notifier::new(1);
        let cancel = CancellationToken::new();
        let (inventory, task) =
            watch(dirs, notifier, crate::source::HealthReporter::discard(), cancel.clone());
        let task = tokio::spawn(task);
        tokio::time::timeout(WAIT, rx.wait_for(Change::ready))
            .await
            .expect("the source is ready in time")
            .expect("the source is running");
        Self { inventory, rx, cancel, task }
    }

    fn objects(&self) -> BTreeMap<String, SourceObject> {
        self.inventory.current().iter().map(|input| (input.id().name, input.to_object())).collect()
    }

    /// Waits until the objects satisfy `done`, checking every state the source publishes
    /// with `each` on the way; returns the final objects.
    async fn wait_until(
        &mut self,
        what: &str,
        each: impl Fn(&BTreeMap<String, SourceObject>),
        done: impl Fn(&BTreeMap<String, SourceObject>) -> bool,
    ) -> BTreeMap<String, SourceObject> {
        let waiting = async {
            loop {
                self.rx.borrow_and_update();
                let objects = self.objects();
                each(&objects);
                if done(&objects) {
                    return objects;
                }
                self.rx.changed().await.expect("the source is running");
            }
        };
        match tokio::time::timeout(WAIT, waiting).await {
            Ok(objects) => objects,
            Err(elapsed) => panic!("{elapsed} waiting for {what}; objects: {:?}", self.objects()),
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the task ends on cancel")
            .expect("the task does not panic");
    }
}

fn text(object: &SourceObject, key: &str) -> Option<String> {
    object.entries.get(key).map(|b| String::from_utf8_lossy(b).into_owned())
}

fn has(objects: &BTreeMap<String, SourceObject>, name: &str, key: &str, value: &str) -> bool {
    objects.get(name).and_then(|o| text(o, key)).as_deref() == Some(value)
}

#[tokio::test]
async fn the_initial_state_of_a_kubelet_volume_is_read_with_nested_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("web");
    fs::create_dir(&dir).expect("mkdir");
    kubelet_write(&dir, "2026_11_22_11_45_12.1", &[("nginx.conf", "a"), ("conf.d/app.conf", "b")]);
    let harness = Harness::start(vec![dir]).await;
    let objects = harness.objects();
    let web = &objects["web"];
    assert_eq!(web.id.kind, crate::source::SourceKind::Directory);
    assert_eq!((web.namespace.as_str(), web.uid.as_str()), ("", ""));
    let keys: Vec<&str> = web.entries.keys().map(String::as_str).collect();
    assert_eq!(keys, ["conf.d/app.conf", "nginx.conf"]);
    assert_eq!(text(web, "conf.d/app.conf").as_deref(), Some("b"));
    harness.stop().await;
}

#[tokio::test]
async fn a_kubelet_swap_delivers_the_new_content_and_never_a_mixed_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("web");
    fs::create_dir(&dir).expect("mkdir");
    write_version(&dir, 0);
    let mut harness = Harness::start(vec![dir.clone()]).await;
    let first_version = harness.objects()["web"].resource_version.clone();
    let writer = std::thread::spawn(move || (1..=20).for_each(|n| write_version(&dir, n)));
    let uniform = |objects: &BTreeMap<String, SourceObject>| {
        let web = &objects["web"];
        let values: Vec<&[u8]> = web.entries.values().map(AsRef::as_ref).collect();
        assert_eq!(values.len(), 3, "every key is read: {web:?}");
        assert!(values.iter().all(|v| *v == values[0]), "a mixed read: {web:?}");
    };
    let objects = harness.wait_until("the last version", uniform, |o| has(o, "web", "conf.d/b", "v20")).await;
    writer.join().expect("the writer does not panic");
    assert_ne!(objects["web"].resource_version, first_version);
    harness.stop().await;
}

#[tokio::test]
async fn an_edit_in_a_plain_directory_is_delivered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("plain");
    fs::create_dir_all(dir.join("sub")).expect("mkdir");
    fs::write(dir.join("app.yaml"), "old").expect("write");
    let mut harness = Harness::start(vec![dir.clone()]).await;
    assert!(has(&harness.objects(), "plain", "app.yaml", "old"));
    fs::write(dir.join("app.yaml"), "new").expect("write");
    fs::write(dir.join("sub/extra.yaml"), "x").expect("write");
    harness
        .wait_until(
            "the edit",
            |_| {},
            |o| has(o, "plain", "app.yaml", "new") && has(o, "plain", "sub/extra.yaml", "x"),
        )
        .await;
    harness.stop().await;
}

#[tokio::test]
async fn a_directory_created_after_start_is_picked_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("later");
    let mut harness = Harness::start(vec![dir.clone()]).await;
    assert!(harness.objects().is_empty(), "a missing directory is no object");
    fs::create_dir_all(dir.join("conf.d")).expect("mkdir");
    fs::write(dir.join("conf.d/app.conf"), "hello").expect("write");
    harness.wait_until("the new directory", |_| {}, |o| has(o, "later", "conf.d/app.conf", "hello")).await;
    harness.stop().await;
}

#[tokio::test]
async fn a_directory_whose_parent_appears_later_is_picked_up_by_the_recheck() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("mnt/volume");
    let mut harness = Harness::start(vec![dir.clone()]).await;
    fs::create_dir_all(&dir).expect("mkdir");
    kubelet_write(&dir, "2026_11_22_11_45_12.1", &[("k", "v")]);
    harness.wait_until("the new volume", |_| {}, |o| has(o, "volume", "k", "v")).await;
    harness.stop().await;
}

#[tokio::test]
async fn removing_a_directory_removes_its_object_and_recreating_it_restores_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("gone");
    let other = tmp.path().join("stays");
    for d in [&dir, &other] {
        fs::create_dir(d).expect("mkdir");
        fs::write(d.join("k"), "v").expect("write");
    }
    let mut harness = Harness::start(vec![dir.clone(), other]).await;
    assert_eq!(harness.objects().len(), 2);
    fs::remove_dir_all(&dir).expect("rmdir");
    harness.wait_until("the removal", |_| {}, |o| !o.contains_key("gone") && o.contains_key("stays")).await;
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("k"), "again").expect("write");
    harness.wait_until("the new directory", |_| {}, |o| has(o, "gone", "k", "again")).await;
    fs::write(dir.join("k"), "edited").expect("write");
    harness.wait_until("an edit in it", |_| {}, |o| has(o, "gone", "k", "edited")).await;
    harness.stop().await;
}

#[tokio::test]
async fn no_directories_is_a_complete_empty_state() {
    let harness = Harness::start(Vec::new()).await;
    assert!(harness.objects().is_empty());
    harness.stop().await;
}
