//! The pipeline: one task that turns source changes into rendered, validated, atomically
//! swapped and reloaded snapshots, and that keeps the last good one.
//!
//! What to do at each step is decided by the pure [`policy`]; this module carries it out.
//! Start-up (keep what is on disk, or restore last-good when the source is late) is in
//! [`startup`]; the swap step in [`swap`]; telling the app, verifying and rolling back in
//! [`reload`].

pub(crate) mod debounce;
mod idle;
pub(crate) mod policy;
mod reload;
mod startup;
mod swap;

use crate::lastgood;
use crate::outcome::{Outcome, Reporter};
use crate::reload::Reloader;
use crate::reload::verify::Verify;
use crate::snapshot::{Renderer, Snapshot};
use crate::source::{Change, SharedInventory};
use crate::validate::Validator;
use crate::writer::{self, Writer};
use debounce::Debounce;
use policy::{Decision, Hold, Policy};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First delay before retrying a failed write or an unreachable app; doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest delay between two retries.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The delay before the next retry: twice the last one, at most [`MAX_RETRY`].
fn next_retry_delay(last: Duration) -> Duration {
    (last * 2).min(MAX_RETRY)
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Debounce window.
    pub debounce: Debounce,
    /// How long to wait for the source before restoring the last-good copy.
    pub(crate) startup_timeout: Duration,
    /// The decision rules.
    pub rules: policy::Rules,
    /// After a reload, this URL must answer 2xx within the timeout, or roll back.
    pub verify: Option<Verify>,
}

/// Why a sync did not complete.
#[derive(Debug, Error)]
pub enum Error {
    /// Writing the target dir failed; the previous snapshot stays.
    #[error("failed to write the snapshot: {0}")]
    Write(#[from] writer::Error),
    /// Validation refused the snapshot; the previous one stays.
    #[error("failed to validate the snapshot: {0}")]
    Refused(#[from] crate::validate::Error),
    /// The app refused the snapshot or could not be told.
    #[error("failed to reload the app: {message}")]
    Reload {
        /// The causes.
        message: String,
        /// The app could not be reached: worth retrying.
        retry: bool,
    },
    /// One object's new files do not fit on the volume; every other change was applied.
    #[error("{object}'s new files do not fit on the volume (every other change is applied): {error}")]
    NoRoom {
        /// The object left at its previous version.
        object: crate::source::ObjectId,
        /// The write error.
        error: writer::Error,
    },
    /// The snapshot was held (an emptied selection).
    #[error("the snapshot was held: {0}")]
    Held(String),
    /// `--once` found neither the source nor a snapshot to fall back on.
    #[error("failed to get a first state from the source within {waited:?} and no last-good copy exists")]
    NoSource {
        /// How long it waited.
        waited: Duration,
    },
}

impl Error {
    /// True when the same sync is worth trying again later with no new change.
    fn retryable(&self) -> bool {
        matches!(self, Self::Write(_) | Self::NoRoom { .. } | Self::Reload { retry: true, .. })
    }
}

/// The pipeline task's state.
pub(crate) struct Pipeline {
    settings: Settings,
    inventory: SharedInventory,
    changes: watch::Receiver<Change>,
    renderer: Renderer,
    writer: Arc<Writer>,
    validator: Validator,
    store: Option<Arc<lastgood::Store>>,
    reloader: Reloader,
    reporter: Reporter,
    /// The target dir refused writes at the last probe (re-probed while it does).
    target_refuses_writes: bool,
    policy: Policy,
    /// The snapshot `..data` points at.
    current: Option<Snapshot>,
    /// The last snapshot the app accepted (the rollback target).
    last_good: Option<Snapshot>,
    /// Source generation last rendered.
    seen: u64,
    /// A full render (or a read of a whole snapshot) freed a lot: trim the heap after it.
    trim_due: bool,
    /// Object versions already reported as not fitting on the volume.
    without_room: HashSet<crate::snapshot::object::Digest32>,
}

/// Everything a [`Pipeline`] works with.
pub(crate) struct Parts {
    /// The objects to render.
    pub(crate) inventory: SharedInventory,
    /// Source changes.
    pub changes: watch::Receiver<Change>,
    /// Renderer (with its options).
    pub(crate) renderer: Renderer,
    /// The target dir.
    pub writer: Arc<Writer>,
    /// Checks before a swap.
    pub validator: Validator,
    /// The last-good store, when `--state-dir` is set.
    pub store: Option<Arc<lastgood::Store>>,
    /// Reload methods.
    pub(crate) reloader: Reloader,
    /// Where outcomes go.
    pub(crate) reporter: Reporter,
    /// The target dir refused writes when it was opened.
    pub(crate) target_refuses_writes: bool,
}

// === impl Pipeline ===

impl Pipeline {
    /// A pipeline that has not looked at the target dir yet.
    #[must_use]
    pub(crate) fn new(settings: Settings, parts: Parts) -> Self {
        // The pipeline keeps the process's memory in check (trims after full syncs).
        crate::memory::tune_allocator();
        Self {
            policy: Policy::new(settings.rules),
            settings,
            inventory: parts.inventory,
            changes: parts.changes,
            renderer: parts.renderer,
            writer: parts.writer,
            validator: parts.validator,
            store: parts.store,
            reloader: parts.reloader,
            reporter: parts.reporter,
            target_refuses_writes: parts.target_refuses_writes,
            current: None,
            last_good: None,
            seen: 0,
            trim_due: true,
            without_room: HashSet::new(),
        }
    }

    /// Runs until `cancel`: start-up, then one sync per settled burst of changes.
    /// A step in progress (a swap, a reload) completes before it returns.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        if self.start(&cancel, true).await != startup::Started::Ready {
            return;
        }
        self.sync_with_retries(None, &cancel).await;
        let target_changes = idle::TargetChanges::watch(&self.writer);
        loop {
            let seen = self.seen;
            let mut changes = self.changes.clone();
            let (collection, reprobe) = (self.writer.next_collection(), self.reprobe_at());
            let woke = tokio::select! {
                () = cancel.cancelled() => return,
                () = target_changes.next() => idle::Wake::TargetChanged,
                () = idle::until(collection) => idle::Wake::GraceOver,
                () = idle::until(reprobe) => idle::Wake::Reprobe,
                changed = changes.wait_for(|c| c.ready() && c.generation > seen) => {
                    if changed.is_err() {
                        return;
                    }
                    idle::Wake::SourceChanged
                }
            };
            match woke {
                idle::Wake::TargetChanged => {
                    self.repair_visible_links().await;
                    continue;
                }
                idle::Wake::GraceOver => {
                    self.collect_replaced().await;
                    continue;
                }
                idle::Wake::Reprobe => {
                    self.reprobe().await;
                    continue;
                }
                idle::Wake::SourceChanged => {}
            }
            let first_change = Instant::now();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.settings.debounce.settle(&mut changes, first_change) => {}
            }
            self.sync_with_retries(Some(first_change), &cancel).await;
        }
    }

    /// `--once`: start-up, one sync, done.
    pub(crate) async fn once(mut self) -> Result<(), Error> {
        if self.start(&CancellationToken::new(), false).await != startup::Started::Ready {
            if self.current.is_some() {
                tracing::warn!("the source did not answer in time; keeping the snapshot on disk");
                return Ok(());
            }
            return Err(Error::NoSource { waited: self.settings.startup_timeout });
        }
        self.sync(None).await
    }

    /// Syncs; a write error or an unreachable app is retried with backoff until it
    /// succeeds or a newer change comes (which the next sync carries anyway).
    async fn sync_with_retries(&mut self, first_change: Option<Instant>, cancel: &CancellationToken) {
        let mut delay = FIRST_RETRY;
        loop {
            self.reporter.report(Outcome::Busy(true));
            let result = self.sync(first_change).await;
            if let Err(Error::Write(error)) = &result
                && error.target_refuses_writes()
            {
                // The whole dir, or only a part of it (then the files are just stale)?
                self.reprobe().await;
            }
            if std::mem::take(&mut self.trim_due) {
                blocking(crate::memory::release_free_memory).await;
            }
            self.reporter.report(Outcome::Busy(false));
            let Err(error) = result else {
                self.without_room.clear();
                return;
            };
            if !error.retryable() {
                return;
            }
            let error = error.to_string();
            let error = crate::keypath::Escaped(&error);
            tracing::warn!(%error, retry_in_ms = delay.as_millis(), "retrying; until then the files on disk stay as they are now");
            let seen = self.seen;
            let mut changes = self.changes.clone();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(crate::jitter::jitter(delay)) => {}
                _ = changes.wait_for(|c| c.generation > seen) => return,
            }
            delay = next_retry_delay(delay);
        }
    }

    /// Renders the current objects and does what the policy decides for them.
    async fn sync(&mut self, first_change: Option<Instant>) -> Result<(), Error> {
        self.seen = self.changes.borrow_and_update().generation;
        let snapshot = self.render();
        self.act(snapshot, first_change).await
    }

    /// Does what the policy decides for `snapshot`.
    async fn act(&mut self, snapshot: Snapshot, first_change: Option<Instant>) -> Result<(), Error> {
        match self.policy.decide(snapshot.hash, snapshot.object_count()) {
            Decision::UpToDate => {
                tracing::debug!(hash = %snapshot.hash, "content unchanged; nothing to do");
                self.reporter.report(Outcome::Current(&snapshot));
                self.reporter.report(Outcome::CaughtUp);
                Ok(())
            }
            Decision::Reload => {
                self.reporter.report(Outcome::Current(&snapshot));
                let result = self.tell_app(snapshot).await;
                if result.is_ok() {
                    self.reporter.report(Outcome::CaughtUp);
                }
                result
            }
            Decision::Hold(hold) => {
                if hold == Hold::EmptySelection
                    && let Some(current) = &self.current
                {
                    let lost: Vec<_> = current.objects().cloned().collect();
                    self.reporter.report(Outcome::Concerning(&lost));
                }
                let had = self.current.as_ref().map(Snapshot::object_count);
                self.reporter.report(Outcome::Held { hold, hash: snapshot.hash, had });
                self.deliver_pending_reload().await?;
                match hold {
                    Hold::EmptySelection => Err(Error::Held("the selection is empty".into())),
                    Hold::Blocked => Ok(()),
                }
            }
            Decision::Swap => {
                let result = self.swap(snapshot, first_change).await;
                if result.is_ok() {
                    self.reporter.report(Outcome::CaughtUp);
                }
                result
            }
        }
    }

    /// Renders the current objects, reporting rejections.
    fn render(&mut self) -> Snapshot {
        let delta = self.inventory.take_delta();
        self.trim_due |= matches!(delta, crate::source::Delta::Full(_));
        let rendered = self.renderer.render_delta(delta);
        // Every version taken is cached by the renderer now: the source may let go of its bytes.
        self.inventory.settle();
        for rejection in &rendered.rejections {
            self.reporter.report(Outcome::Rejected(rejection));
        }
        rendered.snapshot
    }

    /// True when the source changed the content since the last render (reporting and
    /// remembering nothing).
    fn content_changed(&self) -> bool {
        self.renderer.would_change(&self.inventory.peek_delta())
    }

    /// Tells the app about the snapshot on disk if that was left undone (superseded or
    /// failed), before a newer content is refused or held and nothing else would.
    async fn deliver_pending_reload(&mut self) -> Result<(), Error> {
        match (self.policy.pending_reload(), self.current.clone()) {
            (Some(pending), Some(current)) if pending == current.hash => self.tell_app(current).await,
            _ => Ok(()),
        }
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("blocking filesystem work must not panic")
}

#[cfg(test)]
mod retry_tests;
