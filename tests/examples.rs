//! Runs every cargo example as a user would (`cargo run --example NAME`) and checks what it
//! prints: the examples are documentation, and documentation that stopped working is a bug.
//!
//! The example binaries are built by a plain `cargo test` (it builds examples), next to the
//! `configsnap` binary in `target/<profile>/examples/`. A target filter such as
//! `cargo test --test examples` builds only this file: run `cargo build --examples` first, or
//! the tests fail saying so (also when a binary is older than its sources). A test cannot
//! build them itself: cargo holds the build lock while it runs the tests.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kill an example that runs longer than this (each of its own waits is at most 10 s).
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished example did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Panics unless the example exited 0 and printed each of `lines` (substrings of stdout).
    fn assert_printed(&self, lines: &[&str]) {
        let Self { success, stdout, stderr } = self;
        assert!(success, "the example failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        for line in lines {
            assert!(
                stdout.contains(line),
                "missing {line:?} in stdout\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
        }
    }
}

/// `target/<profile>/examples/<name>`, built by `cargo test` (see the module doc). Fails
/// when it is missing, or older than a source it is built from (a stale binary would test
/// old code).
fn example_binary(name: &str) -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_configsnap")).parent().expect("the binary is in a directory");
    let path = bin_dir.join("examples").join(name);
    let rebuild = "run `cargo test` (it builds the examples) or `cargo build --examples` first";
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|_| panic!("{} is not built: {rebuild}", path.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join(format!("examples/{name}.rs")),
        root.join("src"),
        root.join("tests/fake-apiserver/src"),
        root.join("tests/kit/src"),
    ];
    if let Some(newer) = sources.iter().find_map(|source| newer_than(source, built)) {
        panic!("{} is older than {}: {rebuild}", path.display(), newer.display());
    }
    path
}

/// A file at or under `path` modified after `time`.
fn newer_than(path: &Path, time: std::time::SystemTime) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).ok()?;
        return entries.flatten().find_map(|entry| newer_than(&entry.path(), time));
    }
    meta.modified().ok().filter(|m| *m > time).map(|_| path.to_owned())
}

/// Runs example `name` in a process group of its own; after [`TIMEOUT`] the whole group
/// (the example and anything it started, e.g. nginx) is killed and the test fails.
fn run_example(name: &str) -> Run {
    let mut child = Command::new(example_binary(name))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn the example");
    // Drain both pipes on threads so a chatty example never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        status.is_some(),
        "{name} was killed after {TIMEOUT:?}\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    run
}

#[test]
fn demo_shows_an_update_swapped_in_and_a_bad_key_rejected() {
    run_example("demo").assert_printed(&[
        "web/index.html = \"<h1>Hello from v1</h1>\\n\"",
        "== update: ..data swapped from",
        "web/index.html = \"<h1>Hello from v2</h1>\\n\"",
        "== a ConfigMap with key \"../escape\" was rejected; the previous files stay:",
        "== Event on ConfigMap web (what `kubectl describe configmap web` shows): Warning Rejected: ConfigMap web rejected by configsnap: invalid key",
        "configsnap_rejected_objects_total{reason=\"invalid_key\"} 1",
        "== done",
    ]);
}

#[test]
fn nginx_hot_reload_serves_page_v2_after_one_sighup() {
    if !["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().any(|p| Path::new(p).exists()) {
        assert!(
            std::env::var_os("CONFIGSNAP_ALLOW_SKIP").is_some(),
            "nginx is not installed: apt-get install nginx-light (or set CONFIGSNAP_ALLOW_SKIP=1 to skip this test)"
        );
        eprintln!("SKIPPED (CONFIGSNAP_ALLOW_SKIP): nginx is not installed (apt-get install nginx-light)");
        return;
    }
    let run = run_example("nginx_hot_reload");
    run.assert_printed(&[
        "-> \"page v1\\n\" (X-Config-Version: v1)",
        "== ConfigMap web updated",
        "-> \"page v2\\n\" (X-Config-Version: v2)",
        "== nginx serves page v2 with config v2 after one SIGHUP",
    ]);
}

#[test]
fn webhook_reload_reloads_the_app_once_with_the_new_config() {
    let run = run_example("webhook_reload");
    run.assert_printed(&[
        "== app serves: greeting = \"hello v1\"",
        "== ConfigMap app updated",
        "app: POST /-/reload (x-configsnap-hash: sha256:",
        "== app reloaded 1 time and serves: greeting = \"hello v2\"",
    ]);
    assert_eq!(run.stdout.matches("app: POST /-/reload").count(), 1, "{}", run.stdout);
}
