//! Out of memory is not silent: under an address-space limit (`ulimit -v`) too small for
//! what the API serves, configsnap stops with the allocator's error on stderr instead of
//! hanging, and the target dir keeps the complete snapshot it had — read back with plain
//! std (following `..data`), never with configsnap's own reader.

use crate::support::{WAIT, Workspace, configmap, wait_until};
use fake_apiserver::FakeApiServer;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The small state every test run starts from: name → (key, value).
const SMALL: [(&str, &str, &str); 3] = [
    ("web", "nginx.conf", "worker_processes 2;\n"),
    ("api", "app.toml", "port = 8080\n"),
    ("jobs", "cron", "*/5 * * * *\n"),
];
/// ConfigMaps added later, of one value each: far more than the limit leaves room for
/// (188 MiB: more than the 64 MiB a thread arena reserves, which the limit may include).
const BIG_OBJECTS: usize = 200;
/// Size of each added value (under the 1 MiB per-file limit).
const BIG_VALUE: usize = 960 * 1024;
/// Room given above the address space the sidecar used with the small state.
const HEADROOM_KIB: u64 = 24 * 1024;

/// `VmPeak` of `pid` in KiB.
fn vm_peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmPeak:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// Every visible entry of `dir` (names not starting with `..`) with each file under it
/// (again not the `..` names: an object's manifest),
/// read through the visible links and `..data` with std only: relative path → bytes.
fn visible_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = pending.pop() {
        for entry in std::fs::read_dir(&path).expect("list a dir of the snapshot") {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            // `..data`, `..objects` at the top; each object's `..manifest.json` inside.
            if name.starts_with("..") {
                continue;
            }
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            // Follows links, as an app reading the files does.
            let meta = std::fs::metadata(entry.path()).expect("every visible link resolves");
            if meta.is_dir() {
                pending.push((entry.path(), child));
            } else {
                files.insert(child, std::fs::read(entry.path()).expect("read a file of the snapshot"));
            }
        }
    }
    files
}

// Fake API: Kubernetes is incidental (the list the sidecar cannot hold); loopback only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_exits_with_an_error_and_leaves_the_old_snapshot_whole() {
    let api = FakeApiServer::start().await.expect("fake api");
    for (name, key, value) in SMALL {
        api.apply("configmaps", configmap(name, &[(key, value)])).expect("small configmap");
    }
    let expected: BTreeMap<String, Vec<u8>> =
        SMALL.iter().map(|(name, key, value)| (format!("{name}/{key}"), value.as_bytes().to_vec())).collect();
    let ws = Workspace::new(&api);
    let mut first = ws.start(&[]);
    wait_until("the small snapshot on disk", WAIT, || async { visible_files(&ws.dir()) == expected }).await;
    let peak = vm_peak_kib(first.pid()).expect("VmPeak of the first run");
    first.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(first.wait_exit(WAIT).await.code(), Some(0), "{}", first.log());
    let root = std::fs::read_link(ws.dir().join("..data")).expect("..data");

    let big = "x".repeat(BIG_VALUE);
    for i in 0..BIG_OBJECTS {
        api.apply("configmaps", configmap(&format!("big-{i:02}"), &[("blob", &big)])).expect("big configmap");
    }
    let limit = peak + HEADROOM_KIB;
    let mut limited = ws.start_in_shell(Some(format!("ulimit -v {limit}")), &[]);
    let status = limited.wait_exit(Duration::from_secs(120)).await;
    let log = limited.log();
    assert!(!status.success(), "ran out of memory yet exited {status:?}:\n{log}");
    assert!(
        log.contains("memory allocation of") && log.contains("failed"),
        "no allocation error on stderr (limit {limit} KiB, exit {status:?}):\n{log}"
    );
    assert_eq!(
        std::fs::read_link(ws.dir().join("..data")).expect("..data"),
        root,
        "the old snapshot stays current"
    );
    assert_eq!(visible_files(&ws.dir()), expected, "the old snapshot, whole, byte for byte");
}
