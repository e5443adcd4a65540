//! Signal reload: find the app's main process in the shared process namespace (by name,
//! the top of the matching tree, or by pidfile) and send it a signal with `kill(2)`.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::Path;

/// Where the reload signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    /// The top process whose name matches.
    ProcessName(String),
    /// The pid in this file.
    PidFile(std::path::PathBuf),
}

/// Finds the target and signals it. Blocking `/proc` reads run off the async threads.
pub(crate) async fn send(target: SignalTarget, signal: Signal) -> Result<(), String> {
    tokio::task::spawn_blocking(move || send_blocking(&target, signal, Path::new("/proc")))
        .await
        .map_err(|e| format!("signal task failed: {e}"))?
}

/// True when the target still exists (a process of that name, or the pid in the file).
pub(crate) async fn alive(target: &SignalTarget) -> bool {
    let target = target.clone();
    tokio::task::spawn_blocking(move || match &target {
        SignalTarget::PidFile(path) => {
            read_pid_file(path).is_ok_and(|pid| kill(Pid::from_raw(pid), None).is_ok())
        }
        SignalTarget::ProcessName(name) => {
            !find_top_processes(Path::new("/proc"), name, std::process::id()).is_empty()
        }
    })
    .await
    .unwrap_or(false)
}

fn send_blocking(target: &SignalTarget, signal: Signal, proc_root: &Path) -> Result<(), String> {
    let pids = match target {
        SignalTarget::PidFile(path) => vec![read_pid_file(path)?],
        SignalTarget::ProcessName(name) => {
            let tops = find_top_processes(proc_root, name, std::process::id());
            if tops.is_empty() {
                return Err(format!(
                    "no process named {name:?} is visible; the pod needs \
                     `shareProcessNamespace: true` and the app must be running"
                ));
            }
            tops
        }
    };
    for pid in pids {
        kill(Pid::from_raw(pid), signal).map_err(|errno| explain(errno, pid, signal))?;
        tracing::debug!(pid, ?signal, "signal sent");
    }
    Ok(())
}

fn explain(errno: Errno, pid: i32, signal: Signal) -> String {
    match errno {
        Errno::EPERM => format!(
            "permission denied sending {signal} to pid {pid}: run configsnap with the app's \
             UID (runAsUser) or grant CAP_KILL"
        ),
        Errno::ESRCH => format!("pid {pid} does not exist (the app exited or restarted)"),
        other => format!("sending {signal} to pid {pid} failed: {other}"),
    }
}

fn read_pid_file(path: &Path) -> Result<i32, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read pid file {}: {e}", path.display()))?;
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("pid file {} does not hold a pid: {:?}", path.display(), text.trim())),
    }
}

/// Pids of processes named `name` whose parent is not also named `name` (nginx's master,
/// not its workers), excluding `own_pid`. Sorted.
#[must_use]
pub(crate) fn find_top_processes(proc_root: &Path, name: &str, own_pid: u32) -> Vec<i32> {
    let mut parents: HashMap<i32, i32> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 != own_pid && process_matches(&entry.path(), name) {
            parents.insert(pid, parent_of(&entry.path()).unwrap_or(0));
        }
    }
    let mut tops: Vec<i32> =
        parents.iter().filter(|(_, parent)| !parents.contains_key(parent)).map(|(pid, _)| *pid).collect();
    tops.sort_unstable();
    tops
}

/// Matches `comm` (the kernel truncates it to 15 bytes) or the basename of argv[0].
fn process_matches(dir: &Path, name: &str) -> bool {
    let comm_name = &name.as_bytes()[..name.len().min(15)];
    if let Ok(comm) = std::fs::read(dir.join("comm"))
        && comm.strip_suffix(b"\n").unwrap_or(&comm) == comm_name
    {
        return true;
    }
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    base == name.as_bytes()
}

/// PPid from `/proc/<pid>/stat` (field 4, after the parenthesised comm).
fn parent_of(dir: &Path) -> Option<i32> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(root: &Path, pid: i32, ppid: i32, comm: &str, argv0: &str) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
        std::fs::write(dir.join("cmdline"), format!("{argv0}\0-g\0")).expect("cmdline");
        std::fs::write(dir.join("stat"), format!("{pid} ({comm}) S {ppid} 1 1 0")).expect("stat");
    }

    #[test]
    fn the_master_is_chosen_not_its_workers_nor_ourselves() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fake_proc(tmp.path(), 1, 0, "pause", "/pause");
        fake_proc(tmp.path(), 10, 1, "nginx", "nginx: master process /usr/sbin/nginx");
        fake_proc(tmp.path(), 11, 10, "nginx", "nginx: worker process");
        fake_proc(tmp.path(), 12, 10, "nginx", "nginx: worker process");
        fake_proc(tmp.path(), 20, 1, "configsnap", "/configsnap");
        fake_proc(tmp.path(), 30, 1, "my-long-daemon-", "/usr/bin/my-long-daemon-name");
        assert_eq!(find_top_processes(tmp.path(), "nginx", 20), vec![10]);
        assert_eq!(find_top_processes(tmp.path(), "configsnap", 20), Vec::<i32>::new());
        assert_eq!(find_top_processes(tmp.path(), "my-long-daemon-name", 20), vec![30]);
        assert_eq!(find_top_processes(tmp.path(), "haproxy", 20), Vec::<i32>::new());
    }

    #[test]
    fn missing_target_explains_share_process_namespace() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = send_blocking(&SignalTarget::ProcessName("nope".into()), Signal::SIGHUP, tmp.path())
            .expect_err("no such process");
        assert!(err.contains("shareProcessNamespace"), "{err}");
    }

    #[test]
    fn pid_file_must_hold_a_positive_pid() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("app.pid");
        std::fs::write(&path, "garbage").expect("write");
        assert!(read_pid_file(&path).expect_err("invalid").contains("does not hold a pid"));
        std::fs::write(&path, "4242\n").expect("write");
        assert_eq!(read_pid_file(&path), Ok(4242));
    }
}
