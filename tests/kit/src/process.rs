//! Child processes that never outlive the test or benchmark: each is registered, killed
//! and reaped on drop, and [`kill_all`] (for a panic hook: with `panic = "abort"` no Drop
//! runs) kills every one still registered.

use std::process::{Child, Command};
use std::sync::Mutex;

/// Pids of every live child.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// SIGKILLs every registered child.
pub fn kill_all() {
    let pids = std::mem::take(&mut *registry());
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A registered child process; SIGKILLed and reaped on drop.
pub struct Tracked(Child);

impl Tracked {
    /// Spawns `command` and registers the child.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        let child = command.spawn()?;
        registry().push(child.id());
        Ok(Self(child))
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The child, e.g. for `try_wait`.
    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = self.0.kill();
        let _ = self.0.wait();
        registry().retain(|p| *p != pid);
    }
}

fn registry() -> std::sync::MutexGuard<'static, Vec<u32>> {
    CHILDREN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
