//! Hostile clients, objects and operators (issue 13), one test per finding: the admin port
//! (in `hostile_admin.rs`), unsafe modes, hostile names and keys, Secret hashes on disk,
//! planted entries and start-up configuration errors. Loopback only, every wait bounded.

#[path = "hostile_admin.rs"]
mod admin;

use crate::support::{NS, SELECTOR, WAIT, Workspace, configmap, free_port, wait_for};
use fake_apiserver::FakeApiServer;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to its exit (bounded): exit code and stderr.
fn run_to_exit(args: &[String], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_configsnap"));
    command.args(args).env_remove("KUBERNETES_SERVICE_HOST").env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("configsnap {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

// Fake API: Kubernetes is incidental (flag and path checks exit 64); the fake serves the final --once run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_64_with_one_line_before_creating_anything() {
    let api = FakeApiServer::start().await.expect("fake api");
    let ws = Workspace::new(&api);
    let tmp = ws.tmp.path();
    let kubeconfig = tmp.join("kubeconfig");
    let file = tmp.join("a-file");
    std::fs::write(&file, "x").expect("file");
    let open_state = tmp.join("open-state");
    std::fs::create_dir(&open_state).expect("state");
    std::fs::set_permissions(&open_state, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    let fresh = tmp.join("fresh");
    let dir = |p: &Path| format!("--dir={}", p.display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dir(&file)], "not a directory"),
        (vec![dir(&fresh), format!("--state-dir={}", file.display())], "--state-dir"),
        (vec![dir(&fresh), format!("--state-dir={}", open_state.display())], "chmod 0700"),
        (vec![dir(&fresh), format!("--listen={taken}")], "--listen"),
        (vec![dir(&tmp.join("missing/parent/config"))], "--create-dir"),
        (vec![dir(&fresh), "--max-wait=5124095576030432h".into()], "too long"),
        (vec![dir(&fresh), "--max-wait=8785h".into()], "366 days"),
        (vec![dir(&fresh), "--file-mode=0777".into()], "writable by every user"),
    ];
    for (args, needle) in &cases {
        let (code, stderr) = run_to_exit(args, &[("KUBECONFIG", &kubeconfig)]);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr}");
        assert!(stderr.starts_with("configsnap: ") && stderr.contains(needle), "{args:?}: {stderr}");
    }
    let mode = std::fs::metadata(&open_state).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o777, "a refused state dir is left as it was");

    let (code, stderr) = run_to_exit(&[dir(&fresh)], &[("KUBECONFIG", &tmp.join("nope")), ("HOME", tmp)]);
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--kubeconfig") && stderr.contains("--from-dir"), "{stderr}");
    assert!(!stderr.contains("\\\""), "no doubled quoting: {stderr}");
    assert!(!fresh.exists() && !tmp.join("missing").exists(), "nothing is created before the checks pass");

    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let nested = tmp.join("made/by/flag");
    let args = [dir(&nested), "--create-dir".into(), "--once".into(), format!("--selector={SELECTOR}")];
    let (code, stderr) = run_to_exit(&args, &[("KUBECONFIG", &kubeconfig)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(nested.join("web/a")).ok().as_deref(), Some("1"));
}

// Fake API: Kubernetes is incidental (file-mode annotation checks); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_mode_annotations_are_rejected_counted_and_named_while_previous_files_stay() {
    let api = FakeApiServer::start().await.expect("fake api");
    let with_mode = |value: &str, mode: &str| {
        FakeApiServer::configmap(NS, "web")
            .label("configsnap.io/include", "true")
            .annotation("configsnap.io/file-mode", mode)
            .data("a", value)
            .build()
    };
    api.apply("configmaps", with_mode("1", "0640")).expect("web");
    let ws = Workspace::new(&api);
    let sidecar = ws.start(&["--debounce=0", "--max-wait=0"]);
    wait_for("first sync", WAIT, || ws.read("web/a").as_deref() == Some("1")).await;
    for (n, bad) in ["0777", "0666", "0"].iter().enumerate() {
        api.apply("configmaps", with_mode("2", bad)).expect("bad mode");
        let count = f64::from(u32::try_from(n + 1).expect("small"));
        sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"bad_mode\"}", count).await;
    }
    assert_eq!(ws.read("web/a").as_deref(), Some("1"), "the previous files stay");
    let mode = std::fs::metadata(ws.dir().join("web/a")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let log = sidecar.log();
    let warning =
        log.lines().find(|l| l.contains("0777") && l.contains("object rejected")).expect("a warning");
    assert!(warning.contains("web") && warning.contains("configsnap.io/file-mode"), "{warning}");
}

// Fake API: serves names and keys ("a/b", newline, NUL, ESC, 4097 chars) a real server refuses to store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_keys_are_rejected_without_forging_text_log_lines() {
    let api = FakeApiServer::start().await.expect("fake api");
    let object = |name: &str, key: &str| {
        FakeApiServer::configmap(NS, name).label("configsnap.io/include", "true").data(key, "v").build()
    };
    let long_key = "k".repeat(4097);
    for (name, key) in [
        ("evil\nFORGED level=ERROR message=forged", "a"),
        ("a/b", "a"),
        ("newline-key", "bad\nkey"),
        ("esc-key", "\u{1b}[31mred"),
        ("nul-key", "a\0b"),
        ("long-key", long_key.as_str()),
        ("web", "a"),
    ] {
        api.apply_unvalidated("configmaps", object(name, key));
    }
    let tmp = &Workspace::new(&api).tmp;
    let (target, port) = (tmp.path().join("config"), free_port());
    let args = [
        format!("--dir={}", target.display()),
        format!("--selector={SELECTOR}"),
        format!("--listen=127.0.0.1:{port}"),
        "--log-format=text".into(),
    ];
    let sidecar = crate::support::spawn_sidecar(&args, &tmp.path().join("kubeconfig"), tmp.path(), port);
    wait_for("the valid object", WAIT, || target.join("web/a").exists()).await;
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"invalid_name\"}", 2.0).await;
    sidecar.wait_metric("configsnap_rejected_objects_total{reason=\"invalid_key\"}", 4.0).await;
    let log = sidecar.log();
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "a name forged a log line:\n{log}");
    assert!(!log.contains('\u{1b}'), "a raw ESC reached the log");
    let rejected = |name: &str| log.lines().find(|l| l.contains("object rejected") && l.contains(name));
    assert!(rejected("nul-key").is_some_and(|l| l.contains(r"a\0b")), "{log}");
    assert!(
        rejected("long-key").is_some_and(|l| l.contains("kkkk") && l.contains("4097") && l.len() < 1_000)
    );
    assert!(rejected("newline-key").is_some_and(|l| l.contains(r"bad\nkey")), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    names.sort();
    assert_eq!(names, ["web"]);
}

/// What anyone who can read the volume sees under `dir` (links not followed): the
/// world-readable regular files, and every entry name and link target.
fn visible_to_all(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let (mut files, mut names) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            names.push(entry.file_name().to_string_lossy().into_owned());
            let meta = std::fs::symlink_metadata(entry.path()).expect("stat");
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_symlink() {
                names.push(std::fs::read_link(entry.path()).expect("link").to_string_lossy().into_owned());
            } else if meta.is_file() && meta.permissions().mode() & 0o004 != 0 {
                files.push(entry.path());
            }
        }
    }
    (files, names)
}

/// The name of an object's directory under `..objects`, computed apart from the product
/// (Python's `hashlib`) from its definition: SHA-256 over `configsnap object\0`, kind,
/// `\0`, name, `\0`, for a Secret `uid\0<uid>\0` (the salt), then per file its key,
/// `\0`, mode (u32) and size (u64) big-endian and the SHA-256 of its content; named by the
/// first 128 bits in 26 letters of `a-z2-7`, 5 bits each, from the top. Everything but the
/// uid is visible to who can list the volume, so the unsalted name is what an attacker
/// would compute for a guess.
fn object_dir_name(kind: &str, name: &str, uid: Option<&str>, key: &str, mode: u32, content: &str) -> String {
    const SCRIPT: &str = r#"
import hashlib, struct, sys
kind, name, uid, key, mode, content = sys.argv[1:7]
h = hashlib.sha256(b"configsnap object\0" + kind.encode() + b"\0" + name.encode() + b"\0")
if uid:
    h.update(b"uid\0" + uid.encode() + b"\0")
data = content.encode()
h.update(key.encode() + b"\0" + struct.pack(">IQ", int(mode, 8), len(data)) + hashlib.sha256(data).digest())
n = int.from_bytes(h.digest()[:16], "big")
print("".join("abcdefghijklmnopqrstuvwxyz234567"[(n >> (5 * (25 - i))) & 31] for i in range(26)))
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT, kind, name, uid.unwrap_or_default(), key, &format!("{mode:o}"), content])
        .output()
        .expect("run python3");
    assert!(output.status.success(), "python3: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("ascii").trim().to_owned()
}

// Fake API: Kubernetes is incidental (what the volume shows of a Secret); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_world_readable_file_holds_a_hash_of_secret_data() {
    use sha2::Digest;
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let secret = FakeApiServer::secret(NS, "creds")
        .label("configsnap.io/include", "true")
        .data("password", "hunter2")
        .build();
    api.apply("secrets", secret).expect("secret");
    let ws = Workspace::new(&api);
    let state = ws.state();
    let sidecar = ws.start(&["--secrets", &format!("--state-dir={}", state.display())]);
    wait_for("secret written", WAIT, || ws.read("creds/password").is_some()).await;
    wait_for("last-good saved", WAIT, || state.join("..data").exists()).await;
    let digest = sha2::Sha256::digest(b"hunter2");
    let (hex, b64) =
        (hex::encode(digest), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest));
    let (public, names) = visible_to_all(&ws.dir());
    assert!(!public.is_empty(), "the ConfigMap's files and the manifests are public");
    for file in public {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        assert!(!text.contains(&hex) && !text.contains(&b64), "{} holds the Secret's hash", file.display());
    }
    // The independent digest is right: the ConfigMap's dir has the unsalted name, the
    // Secret's the name salted with its uid.
    let objects = ws.dir().join("..objects");
    let configmap_dir = object_dir_name("ConfigMap", "web", None, "a", 0o644, "1");
    assert!(objects.join(&configmap_dir).is_dir(), "no ..objects/{configmap_dir}: {names:?}");
    let secret = api.get("secrets", NS, "creds").expect("the Secret is stored");
    let uid = secret["metadata"]["uid"].as_str().expect("a uid");
    let salted = object_dir_name("Secret", "creds", Some(uid), "password", 0o600, "hunter2");
    assert!(objects.join(&salted).is_dir(), "no ..objects/{salted}: {names:?}");
    // And no one can test a guess of the value offline.
    let guessable = object_dir_name("Secret", "creds", None, "password", 0o600, "hunter2");
    assert!(!names.iter().any(|n| n.contains(&guessable)), "a dir name or link target is a guessable hash");
    let mode = std::fs::metadata(&state).expect("state").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the state dir holds Secrets in plain text: private");
    drop(sidecar);
}

// Fake API: Kubernetes is incidental (planted entries in --dir, --state-dir); in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_directories_and_state_dir_junk_block_neither_start_nor_swaps() {
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "1")])).expect("web");
    let ws = Workspace::new(&api);
    for name in ["..data", "..data_tmp", "..link_tmp"] {
        std::fs::create_dir(ws.dir().join(name)).expect("planted dir");
        std::fs::write(ws.dir().join(name).join("theirs"), "keep").expect("planted file");
    }
    let state = ws.state();
    std::fs::create_dir_all(state.join(".tmp-4242/nested")).expect("tmp dir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::write(state.join(".tmp-4242/nested/half"), "half").expect("tmp file");
    std::fs::create_dir(state.join("..data_tmp")).expect("planted state dir");
    let mut sidecar =
        ws.start(&["--debounce=0", "--max-wait=0", &format!("--state-dir={}", state.display())]);
    wait_for("first sync", WAIT, || ws.read("web/a").as_deref() == Some("1")).await;
    api.apply("configmaps", configmap("web", &[("a", "2")])).expect("update");
    wait_for("a later swap", WAIT, || ws.read("web/a").as_deref() == Some("2")).await;
    assert!(sidecar.running(), "{}", sidecar.log());
    crate::support::assert_complete_snapshot(&ws.dir());
    let aside: Vec<PathBuf> = std::fs::read_dir(ws.dir())
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("..aside-")))
        .collect();
    assert_eq!(aside.len(), 3, "{aside:?}");
    assert!(aside.iter().all(|p| std::fs::read_to_string(p.join("theirs")).is_ok_and(|t| t == "keep")));
    assert!(!state.join(".tmp-4242").exists(), "stale leftovers in the state dir are removed");
    assert!(sidecar.log_count("a file or directory configsnap did not create had a name the swap needs; moved it aside (remove it when it is not needed)") >= 3);
}
