//! The admin port under hostile clients (issue 13, finding 1): a flood of idle
//! connections plus a slowloris client, and accept failing at the fd limit. Loopback only,
//! every wait bounded; CPU is judged in clock ticks over windows that conditions bound.

use crate::support::{WAIT, Workspace, configmap, free_port, wait_for, wait_until};
use fake_apiserver::FakeApiServer;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Idle connections the flood opens: all of them, or the test fails.
const FLOOD: usize = 5_000;
/// Slowloris clients held open at once during the flood.
const SLOWLORIS: usize = 4;

/// CPU time (user + system, in clock ticks) the process has used, all threads included.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("comm ends with ')'").1.split_whitespace().collect();
    // After the comm: state is field 3, utime field 14 and stime field 15.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Raises this test process's fd limit to at least `want` (the hard limit too: we run as
/// root); fails the test if it cannot, rather than run a smaller flood.
fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < want {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want));
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(soft >= want, "the flood needs a soft fd limit of {want}, have {soft} (run as root or raise it)");
}

/// Opens `n` TCP connections to `port` and keeps them. Every one must open (each within
/// 10 s): a connection that fails to open fails the test.
async fn open_idle(port: u16, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::with_capacity(n);
    let mut failures = Vec::new();
    for batch in 0..n.div_ceil(250) {
        let mut set = tokio::task::JoinSet::new();
        for _ in (batch * 250)..((batch + 1) * 250).min(n) {
            set.spawn(tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            ));
        }
        while let Some(joined) = set.join_next().await {
            match joined.expect("connect task") {
                Ok(Ok(stream)) => held.push(stream),
                Ok(Err(error)) => failures.push(error.to_string()),
                Err(_) => failures.push("no connection within 10 s".into()),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} connections did not open, first: {}",
        failures.len(),
        failures[0]
    );
    held
}

/// A slowloris client: connected, then sending a request head one byte every 200 ms.
struct Slowloris {
    /// True from the moment the server has kept the connection open past its first bytes
    /// until the server hangs up.
    held: Arc<AtomicBool>,
    /// Ends with the number of bytes sent when the server hung up, or `None` if it never
    /// did within 150 bytes (30 s).
    done: tokio::task::JoinHandle<Option<usize>>,
}

/// Connects to `port` (a failed connect fails the test) and starts sending slowly.
async fn slowloris(port: u16) -> Slowloris {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("the slowloris client connects in time")
        .expect("the slowloris client connects");
    let held = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&held);
    let done = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nx-slow: ";
        let mut sent = 0;
        if stream.write_all(head).await.is_err() {
            return Some(sent);
        }
        sent += head.len();
        let mut buf = [0_u8; 64];
        for _ in 0..150 {
            if stream.write_all(b"a").await.is_err() {
                flag.store(false, Ordering::SeqCst);
                return Some(sent);
            }
            sent += 1;
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
            {
                flag.store(false, Ordering::SeqCst);
                return Some(sent);
            }
            // Written and not hung up on: the server holds this connection.
            flag.store(true, Ordering::SeqCst);
        }
        None
    });
    Slowloris { held, done }
}

/// How many of `clients` the server holds right now.
fn held(clients: &[Slowloris]) -> usize {
    clients.iter().filter(|c| c.held.load(Ordering::SeqCst)).count()
}

// Fake API: Kubernetes is incidental (the admin port under a flood); the fake is an in-process source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_a_slowloris_block_neither_swaps_nor_probes_nor_burn_cpu() {
    raise_fd_limit(FLOOD as u64 + 1_000);
    let api = FakeApiServer::start().await.expect("fake api");
    api.apply("configmaps", configmap("web", &[("a", "0")])).expect("web");
    let ws = Workspace::new(&api);
    // A low fd limit, as in a small container: without a cap the flood would exhaust it.
    let sidecar = ws.start_with_fd_limit(Some(256), &["--debounce=0", "--max-wait=0"]);
    wait_for("first sync", WAIT, || ws.read("web/a").as_deref() == Some("0")).await;
    let before = cpu_ticks(sidecar.pid());

    let _flood = open_idle(sidecar.port, FLOOD).await;
    for n in 1..=3 {
        api.apply("configmaps", configmap("web", &[("a", &n.to_string())])).expect("update");
        let want = n.to_string();
        wait_for("a swap during the flood", WAIT, || ws.read("web/a").as_deref() == Some(want.as_str()))
            .await;
        for path in ["/healthz", "/readyz"] {
            wait_until("a probe answered during the flood", WAIT, || async {
                sidecar.get(path).await.is_some_and(|(code, _)| code == 200)
            })
            .await;
        }
    }
    let quiet_from = cpu_ticks(sidecar.pid());
    let mut clients = Vec::new();
    for _ in 0..SLOWLORIS {
        clients.push(slowloris(sidecar.port).await);
    }
    wait_for("the server holds every slowloris connection", WAIT, || held(&clients) == SLOWLORIS).await;
    for path in ["/healthz", "/readyz"] {
        let answer = sidecar.get(path).await;
        assert_eq!(
            answer.map(|(code, _)| code),
            Some(200),
            "{path} while {SLOWLORIS} slowloris clients are held"
        );
    }
    assert_eq!(
        held(&clients),
        SLOWLORIS,
        "the probes were answered while the slowloris connections were held"
    );
    for client in clients {
        let cut = tokio::time::timeout(Duration::from_secs(40), client.done).await;
        let cut = cut.expect("the slowloris client ends").expect("no panic");
        assert!(cut.is_some(), "the server never hung up on a slowloris client");
    }
    // The header read timeout is 5 s: this phase lasted at least that long, while every
    // flood connection was still held by the client. A loop spinning on accept would use
    // most of a core in it (≥ 250 ticks even on a shared machine).
    let quiet = cpu_ticks(sidecar.pid()) - quiet_from;
    assert!(quiet < 100, "{quiet} ticks of CPU while holding {FLOOD} idle connections");
    let total = cpu_ticks(sidecar.pid()) - before;
    assert!(total < 1_000, "{total} ticks of CPU for the whole flood");
    assert!(sidecar.get("/healthz").await.is_some_and(|(code, _)| code == 200));
    let log = sidecar.log();
    assert!(!log.contains("Too many open files"), "{log}");
    eprintln!(
        "flood: {FLOOD} connections held, 3 swaps landed, {SLOWLORIS} slowloris clients held then cut off, \
         {total} CPU ticks in all, {quiet} while idle"
    );
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// True once the server has closed one of `streams` (EOF or reset).
async fn any_closed_by_server(streams: &mut [tokio::net::TcpStream]) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0_u8; 16];
    for stream in streams {
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await
        {
            return true;
        }
    }
    false
}

// Fake API: none; --from-dir, as the admin port's accept back-off needs no API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_at_the_fd_limit_back_off_instead_of_spinning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (volume, target, port) = (tmp.path().join("app"), tmp.path().join("config"), free_port());
    std::fs::create_dir_all(&volume).expect("volume");
    std::fs::write(volume.join("a"), "1").expect("file");
    let args = [
        format!("--dir={}", target.display()),
        format!("--from-dir={}", volume.display()),
        format!("--listen=127.0.0.1:{port}"),
        "--log-format=json".into(),
    ];
    let sidecar = crate::support::spawn_sidecar(&args, &tmp.path().join("no-kubeconfig"), tmp.path(), port);
    wait_for("first snapshot", WAIT, || target.join("app/a").exists()).await;
    wait_until("admin server up", WAIT, || async { sidecar.get("/healthz").await.is_some() }).await;
    // Leave the running sidecar two or three spare fds: fewer than its connection cap, so
    // accept itself fails with EMFILE (prlimit from util-linux; lowering needs no privilege).
    let limit = fd_count(sidecar.pid()) + 2;
    let status = Command::new("prlimit")
        .args([format!("--pid={}", sidecar.pid()), format!("--nofile={limit}:{limit}")])
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");
    let mut idle = open_idle(port, 12).await;
    let before = cpu_ticks(sidecar.pid());
    // Accepted connections are closed by the 5 s header read timeout: a window of at least
    // 5 s in which every further accept fails with EMFILE.
    let started = Instant::now();
    while !any_closed_by_server(&mut idle).await {
        assert!(started.elapsed() < Duration::from_secs(30), "no idle connection was ever closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spent = cpu_ticks(sidecar.pid()) - before;
    assert!(spent < 50, "{spent} ticks of CPU while accept failed: a spinning accept loop");
    assert!(sidecar.log().contains("backing off"), "{}", sidecar.log());
    drop(idle);
    wait_until("probes answer again once fds are free", WAIT, || async {
        sidecar.get("/healthz").await.is_some_and(|(code, _)| code == 200)
    })
    .await;
}
