//! Counting a running process's sync system calls with `strace -f -c`, attached for a
//! while: a cross-check of the sidecar's own `configsnap_sync_calls_total`.

use crate::support::Tracked;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where strace is expected.
pub const STRACE: &str = "/usr/bin/strace";
/// The system calls counted.
pub const SYNC_CALLS: [&str; 4] = ["fsync", "fdatasync", "syncfs", "sync_file_range"];

/// A `strace -f -c` attached to a process; detach with [`Strace::finish`] (SIGKILLed on drop).
pub struct Strace {
    child: Tracked,
    out: PathBuf,
    err: PathBuf,
}

impl Strace {
    /// Attaches to `pid` (all its threads, and new ones), writing the summary to
    /// `<scratch>/strace.out`; returns once every thread shows strace as its tracer (5 s bound).
    pub fn attach(pid: u32, scratch: &Path) -> Result<Self, String> {
        if !Path::new(STRACE).is_file() {
            return Err(format!("{STRACE} not found"));
        }
        let out = scratch.join("strace.out");
        let err = scratch.join("strace.err");
        let stderr = std::fs::File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?;
        let child = Tracked::spawn(
            Command::new(STRACE)
                .args(["-f", "-c", "-e"])
                .arg(format!("trace={}", SYNC_CALLS.join(",")))
                .arg("-o")
                .arg(&out)
                .arg("-p")
                .arg(pid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        )
        .map_err(|e| format!("spawn {STRACE}: {e}"))?;
        let mut strace = Self { child, out, err };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !traced_by(pid, strace.child.pid()) {
            if Instant::now() >= deadline || !matches!(strace.child.child().try_wait(), Ok(None)) {
                return Err(format!("strace did not attach: {}", strace.stderr()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(strace)
    }

    /// Detaches (SIGINT, 10 s bound) and returns the number of sync calls counted.
    pub fn finish(mut self) -> Result<u64, String> {
        let _ = kill(Pid::from_raw(self.child.pid() as i32), Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.child().try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return Err("strace did not exit after SIGINT".to_owned()),
            }
        }
        let summary = std::fs::read_to_string(&self.out).map_err(|e| format!("strace summary: {e}"))?;
        parse_summary(&summary).ok_or_else(|| format!("unreadable strace summary: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default().trim().replace('\n', "; ")
    }
}

/// True when every thread of `pid` has `tracer` as its `TracerPid`.
fn traced_by(pid: u32, tracer: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    let want = tracer.to_string();
    let mut any = false;
    for task in tasks.filter_map(Result::ok) {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let tracer_pid = status.lines().find_map(|l| l.strip_prefix("TracerPid:")).map(str::trim);
        if tracer_pid != Some(want.as_str()) {
            return false;
        }
        any = true;
    }
    any
}

/// The calls of [`SYNC_CALLS`] in a `strace -c` table: per-syscall rows are
/// `% time, seconds, usecs/call, calls, [errors], syscall`. strace writes nothing when no
/// traced call happened, so an empty summary is 0; text without the table is `None`.
fn parse_summary(text: &str) -> Option<u64> {
    if text.trim().is_empty() {
        return Some(0);
    }
    if !text.contains("syscall") {
        return None;
    }
    let mut calls = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 5 && fields.last().is_some_and(|name| SYNC_CALLS.contains(name)) {
            calls += fields[3].parse::<u64>().ok()?;
        }
    }
    Some(calls)
}
