//! Running a shell command with a time limit, its output sent to the log.

use super::Failure;
use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Longest output kept for the log, per stream.
const OUTPUT_LIMIT: usize = 4096;

/// Runs `sh -c command` with extra environment, killing it after `timeout`.
/// Returns its (truncated) combined output on exit 0; a readable cause otherwise, marked
/// refused when the command ran and exited non-zero (it said no), not when it could not
/// start, timed out or was killed.
pub async fn run(
    purpose: &'static str,
    command: &str,
    env: &[(&str, OsString)],
    timeout: Duration,
) -> Result<String, Failure> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout or a newer snapshot ends the command's
        // children too, not only `sh`.
        .process_group(0)
        .kill_on_drop(true);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child =
        cmd.spawn().map_err(|e| Failure::unreachable(format!("{purpose} command could not start: {e}")))?;
    let mut group = child.id().map(ProcessGroup);
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => {
            // Finished: its pid may be reused from now on, so never signal that group.
            std::mem::forget(group.take());
            output
        }
        Ok(Err(e)) => return Err(Failure::unreachable(format!("{purpose} command failed: {e}"))),
        Err(_) => {
            return Err(Failure::unreachable(format!(
                "{purpose} command timed out after {timeout:?} and was killed"
            )));
        }
    };
    let text = combine(&output.stdout, &output.stderr);
    let code = output.status.code();
    tracing::info!(purpose, exit_code = ?code, output = %text, "command finished");
    match code {
        Some(0) => Ok(text),
        Some(code) => {
            Err(Failure::refused(format!("{purpose} command exited with {code}: {}", last_line(&text))))
        }
        None => Err(Failure::unreachable(format!(
            "{purpose} command was killed by a signal: {}",
            last_line(&text)
        ))),
    }
}

/// Kills a whole process group when dropped: on timeout, or when a newer snapshot cancels
/// the command while it runs.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.0) {
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn combine(stdout: &[u8], stderr: &[u8]) -> String {
    let clip = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(OUTPUT_LIMIT)]).trim().to_owned();
    match (clip(stdout), clip(stderr)) {
        (out, err) if err.is_empty() => out,
        (out, err) if out.is_empty() => err,
        (out, err) => format!("{out}\n{err}"),
    }
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_is_passed_and_output_returned() {
        let env = [("CONFIGSNAP_HASH", OsString::from("sha256:abc"))];
        let out = run("exec", "echo hash=$CONFIGSNAP_HASH", &env, Duration::from_secs(5)).await;
        assert_eq!(out.as_deref(), Ok("hash=sha256:abc"));
    }

    #[tokio::test]
    async fn non_zero_exit_is_an_error_with_the_code_and_last_line() {
        let err = run("exec", "echo first; echo oops >&2; exit 3", &[], Duration::from_secs(5))
            .await
            .expect_err("exit 3");
        assert!(err.message.contains("exited with 3") && err.message.contains("oops"), "{err}");
        assert!(err.refused, "a command that ran and said no refuses the content");
    }

    #[tokio::test]
    async fn timeout_kills_the_command_and_its_children() {
        let started = tokio::time::Instant::now();
        let tmp = tempfile::tempdir().expect("tempdir");
        let pid_file = tmp.path().join("child.pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let err = run("exec", &command, &[], Duration::from_millis(300)).await.expect_err("timeout");
        assert!(err.message.contains("timed out"), "{err}");
        assert!(!err.refused, "a timeout says nothing about the content");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = std::fs::read_to_string(&pid_file).expect("child pid").trim().to_owned();
        // Gone, or a zombie waiting for its new parent to reap it: not running either way.
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z'))
            })
        };
        for _ in 0..200 {
            if !running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the command's child {pid} outlived the timeout");
    }
}
