//! Scratch filesystems for the scale scenario besides the bench's temp dir: a dir on
//! tmpfs, and an ext4 image *with* a journal on a loop device (the temp dir's disk may be
//! ext4 without one, which configsnap must sync differently; the journaled case is what
//! most Kubernetes nodes run).

use crate::report::Report;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of the sparse ext4 image (blocks are allocated as used).
const IMAGE_BYTES: u64 = 2 << 30;

/// True when `path` is on tmpfs.
pub fn is_tmpfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// A scratch dir under `/dev/shm` (removed on drop), or a note saying why not.
pub fn tmpfs(report: &mut Report) -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if !is_tmpfs(shm) {
        report.note("scale: /dev/shm is not tmpfs; the tmpfs runs are skipped");
        return None;
    }
    match tempfile::Builder::new().prefix("configsnap-bench-").tempdir_in(shm) {
        Ok(dir) => Some(dir),
        Err(e) => {
            report.note(format!("scale: no scratch dir under /dev/shm ({e}); the tmpfs runs are skipped"));
            None
        }
    }
}

/// A journaled ext4 filesystem mounted from an image file; unmounted on drop.
pub struct JournaledExt4 {
    mount_point: PathBuf,
}

impl JournaledExt4 {
    /// Makes and mounts the image under `scratch`, or notes why the runs are skipped
    /// (it needs root, `mkfs.ext4` and a loop device).
    pub fn mount(scratch: &Path, report: &mut Report) -> Option<Self> {
        let image = scratch.join("ext4j.img");
        let mount_point = scratch.join("mnt");
        let made = std::fs::File::create(&image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .and_then(|()| std::fs::create_dir_all(&mount_point))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                run(Command::new("mkfs.ext4")
                    .args(["-q", "-F", "-i", "8192", "-O", "has_journal"])
                    .arg(&image))
            })
            .and_then(|()| run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount_point)));
        match made {
            Ok(()) => Some(Self { mount_point }),
            Err(why) => {
                report.note(format!(
                    "scale: no journaled ext4 scratch filesystem ({why}); the ext4j runs are skipped \
                     (they need root, mkfs.ext4 from e2fsprogs and a loop device)"
                ));
                None
            }
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for JournaledExt4 {
    fn drop(&mut self) {
        if let Err(why) = run(Command::new("umount").arg("-l").arg(&self.mount_point)) {
            eprintln!("scale: unmounting {} failed: {why}", self.mount_point.display());
        }
    }
}

/// Runs `command`; its stderr (or the spawn error) when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("{:?}: {}", command.get_program(), String::from_utf8_lossy(&output.stderr).trim()))
}
