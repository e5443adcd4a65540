//! Work between swaps: wakes when a top-level name of the target dir is created, removed
//! or renamed by anyone, so a visible link someone replaced is put right at once rather
//! than at the next swap; reports every repair the writer made; removes replaced
//! generations when their grace (`--gc-grace`) runs out; and, while the target dir
//! refuses writes, checks every [`REPROBE`] whether it takes them again.

use super::{Pipeline, blocking};
use crate::outcome::Outcome;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// While the target dir refuses writes, how often to check whether it takes them again
/// (one mkdir and rmdir: the only way to learn it without a pending update).
pub(super) const REPROBE: std::time::Duration = std::time::Duration::from_secs(30);

/// The writer's watch on the target dir, readable when something there changed.
pub(super) struct TargetChanges(Option<AsyncFd<OwnedFd>>);

impl TargetChanges {
    /// Waits on `writer`'s watch; never wakes when it has none (the next swap checks
    /// every link then).
    #[allow(
        deprecated,
        reason = "AsyncFd's safe constructors are deprecated because a borrowed fd could be closed \
                  under it; this one owns its fd (a dup of the writer's), which is what \
                  register_with_interest's safety contract asks"
    )]
    pub(super) fn watch(writer: &crate::writer::Writer) -> Self {
        let fd = writer.changes_fd().and_then(|fd| fd.try_clone_to_owned().ok());
        Self(fd.and_then(|fd| AsyncFd::with_interest(fd, Interest::READABLE).ok()))
    }

    /// Resolves when the target dir changed since the last wake.
    pub(super) async fn next(&self) {
        match &self.0 {
            Some(fd) => match fd.readable().await {
                Ok(mut ready) => ready.clear_ready(),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

impl Pipeline {
    /// Checks the links touched since the last check and reports what was put right.
    pub(super) async fn repair_visible_links(&mut self) {
        let writer = Arc::clone(&self.writer);
        let repairs = blocking(move || writer.repair_visible_links()).await;
        self.reporter.report(Outcome::LinksRepaired(&repairs));
    }

    /// Reports the repairs the writer made during its last step.
    pub(super) fn report_repairs(&self) {
        self.reporter.report(Outcome::LinksRepaired(&self.writer.take_repairs()));
    }
}

/// What woke the idle pipeline.
pub(super) enum Wake {
    /// A top-level name of the target dir changed.
    TargetChanged,
    /// A replaced generation's grace ran out.
    GraceOver,
    /// Time to check whether the target dir takes writes again.
    Reprobe,
    /// The source has a new state.
    SourceChanged,
}

/// When to check the target dir's writability again, from `now`: [`REPROBE`] later
/// while it refuses writes, never while it takes them.
fn reprobe_due(refuses_writes: bool, now: Instant) -> Option<Instant> {
    refuses_writes.then(|| now + REPROBE)
}

/// Resolves at `due`, or never without one.
pub(super) async fn until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

impl Pipeline {
    /// Removes the replaced generations whose grace ran out.
    pub(super) async fn collect_replaced(&mut self) {
        let writer = Arc::clone(&self.writer);
        if let Err(error) = blocking(move || writer.collect()).await {
            tracing::warn!(%error, "removing replaced snapshots failed; retried after the next swap");
        }
    }
}

impl Pipeline {
    /// When to check the target dir's writability again: only while it refuses writes.
    pub(super) fn reprobe_at(&self) -> Option<Instant> {
        reprobe_due(self.target_refuses_writes, Instant::now())
    }

    /// Checks whether the target dir takes writes again, and says so.
    pub(super) async fn reprobe(&mut self) {
        let writer = Arc::clone(&self.writer);
        let probed = blocking(move || writer.probe_writable()).await;
        self.target_refuses_writes = probed.is_err();
        match probed {
            Ok(()) => self.reporter.report(Outcome::TargetWritable),
            Err(error) => self.reporter.report(Outcome::TargetUnwritable(&error)),
        }
    }
}

#[cfg(test)]
#[path = "idle_tests.rs"]
mod tests;
