//! A heap profile of a sidecar while idle (`CONFIGSNAP_BENCH_MASSIF=<unstripped build>`):
//! valgrind's massif, with a detailed snapshot taken through `vgdb` once the first
//! snapshot is on disk and the process has been quiet; every live allocation is put in
//! one category by the first rule that its stack matches. The raw snapshot and `ms_print`'s
//! reading of it go to `<target dir>/bench/heap-<N>.{massif,txt}`.

use crate::support::{Subject, poll, visible_entries};
use fake_apiserver::FakeApiServer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Under valgrind the first snapshot is tens of times slower.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(600);

/// Where a live allocation belongs: the first rule (in this order) whose pattern some
/// frame of its stack contains; else "other".
const RULES: [(&str, &str); 10] = [
    ("watch cache: the ConfigMaps (values until written, metadata)", "k8s_openapi"),
    ("watch cache: its index", "source::kube::cache"),
    ("rendered objects (file lists, digests, source refs)", "snapshot::render"),
    ("snapshot tree (leaves, entries)", "snapshot::tree"),
    ("writer state (nodes on disk, links)", "configsnap::writer"),
    ("HTTP, TLS (hyper, rustls)", "hyper"),
    ("TLS (rustls, ring)", "rustls"),
    ("telemetry (tracing, metrics)", "tracing"),
    ("metrics", "prometheus"),
    ("tokio runtime", "tokio::"),
];

/// Spawns `bin` under massif against `api`, waits for `n` entries and `quiet`, takes the
/// snapshot; the categories' sizes as text.
pub async fn profile(
    api: &FakeApiServer,
    root: &Path,
    bin: &Path,
    n: usize,
    quiet: Duration,
) -> Result<String, String> {
    let wrapper = root.join("massif.sh");
    let script = format!(
        "#!/bin/sh\nexec valgrind --tool=massif --threshold=0.0 --depth=60 --vgdb=yes \
         --massif-out-file={} {} \"$@\"\n",
        root.join("massif.final").display(),
        bin.display()
    );
    std::fs::write(&wrapper, script).map_err(|e| format!("write {}: {e}", wrapper.display()))?;
    let chmod = Command::new("chmod").arg("755").arg(&wrapper).status();
    if !chmod.is_ok_and(|s| s.success()) {
        return Err("chmod of the massif wrapper failed".into());
    }
    let sidecar = Subject::spawn_binary(&wrapper, api, root, "massif", &["--debounce=0".to_owned()]);
    let every = Duration::from_millis(200);
    if poll(FIRST_SNAPSHOT, every, || visible_entries(&sidecar.dir) == n).await.is_none() {
        return Err(format!("no complete snapshot under valgrind within {FIRST_SNAPSHOT:?}"));
    }
    tokio::time::sleep(quiet * 2).await;
    let out = bench_dir().join(format!("heap-{n}.massif"));
    std::fs::create_dir_all(bench_dir()).map_err(|e| e.to_string())?;
    let status = Command::new("timeout")
        .args(["120", "vgdb", &format!("--pid={}", sidecar.pid()), "detailed_snapshot"])
        .arg(&out)
        .output()
        .map_err(|e| format!("vgdb: {e}"))?;
    drop(sidecar);
    if !status.status.success() || !out.exists() {
        return Err(format!("vgdb failed: {}", String::from_utf8_lossy(&status.stderr).trim()));
    }
    if let Ok(printed) = Command::new("ms_print").arg(&out).output() {
        let _ = std::fs::write(out.with_extension("txt"), printed.stdout);
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    Ok(summarise(&text))
}

/// `<target dir>/bench`, as `results.json` finds it.
fn bench_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench")
}

/// The categories' bytes from one detailed massif snapshot.
fn summarise(text: &str) -> String {
    let field =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or(0);
    let (heap, extra) = (field("mem_heap_B="), field("mem_heap_extra_B="));
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    // Each line is `<indent>n<children>: <bytes> <frame>`; a node with no children holds
    // bytes allocated through exactly the stack of its ancestors.
    let mut stack: Vec<String> = Vec::new();
    for line in text.lines().skip_while(|l| !l.starts_with("heap_tree=")).skip(1) {
        let depth = line.len() - line.trim_start().len();
        let Some((head, frame)) = line.trim_start().split_once(": ") else { continue };
        let Some(children) = head.strip_prefix('n').and_then(|c| c.parse::<usize>().ok()) else { continue };
        let Some((bytes, frame)) = frame.split_once(' ') else { continue };
        stack.truncate(depth);
        stack.push(frame.to_owned());
        if children == 0 && depth > 0 {
            let bytes: u64 = bytes.parse().unwrap_or(0);
            let category = RULES
                .iter()
                .find(|(_, pattern)| stack.iter().any(|f| f.contains(pattern)))
                .map_or("other", |(name, _)| name);
            *sums.entry(category).or_default() += bytes;
        }
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut rows: Vec<_> = sums.into_iter().collect();
    rows.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    let mut out = format!("  live heap {:.2} MiB, allocator overhead {:.2} MiB\n", mib(heap), mib(extra));
    for (name, bytes) in rows {
        out.push_str(&format!("  {:>7.2} MiB  {name}\n", mib(bytes)));
    }
    out
}
