//! The pipeline: one task that turns source changes into rendered, validated, atomically
//! swapped and reloaded snapshots, and that keeps the last good one.
//!
//! What to do at each step is decided by the pure [`policy`]; this module carries it out.
//! Start-up (keep what is on disk, or restore last-good when the source is late) is in
//! [`startup`]; telling the app, verifying and rolling back in [`reload`].

pub mod debounce;
pub mod policy;
mod reload;
mod startup;

use crate::events::Events;
use crate::lastgood;
use crate::reload::Reloader;
use crate::reload::verify::Verify;
use crate::snapshot::manifest::Origin;
use crate::snapshot::{Renderer, Snapshot};
use crate::source::{Change, SharedInventory};
use crate::status;
use crate::validate::Validator;
use crate::writer::{self, Writer};
use debounce::Debounce;
use policy::{AfterSwap, Decision, Hold, Policy};
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

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Debounce window.
    pub debounce: Debounce,
    /// How long to wait for the source before restoring the last-good copy.
    pub startup_timeout: Duration,
    /// What produced the snapshots (written in manifests, checked on restore).
    pub origin: Origin,
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
    /// The snapshot was held (an emptied selection).
    #[error("the snapshot was held: {0}")]
    Held(String),
    /// `--once` found neither the source nor a snapshot to fall back on.
    #[error(
        "failed to get a first state from the source within {waited:?} and no last-good copy exists: {last_error}"
    )]
    NoSource {
        /// How long it waited.
        waited: Duration,
        /// The last source error, if any.
        last_error: String,
    },
}

impl Error {
    /// True when the same sync is worth trying again later with no new change.
    fn retryable(&self) -> bool {
        matches!(self, Self::Write(_) | Self::Reload { retry: true, .. })
    }
}

/// The pipeline task's state.
pub struct Pipeline {
    settings: Settings,
    inventory: SharedInventory,
    changes: watch::Receiver<Change>,
    renderer: Renderer,
    writer: Arc<Writer>,
    validator: Validator,
    store: Option<Arc<lastgood::Store>>,
    reloader: Reloader,
    events: Events,
    policy: Policy,
    /// The snapshot `..data` points at.
    current: Option<Snapshot>,
    /// The last snapshot the app accepted (the rollback target).
    last_good: Option<Snapshot>,
    /// Source generation last rendered.
    seen: u64,
    /// A full render (or a read of a whole snapshot) freed a lot: trim the heap after it.
    trim_due: bool,
}

/// Everything a [`Pipeline`] works with.
pub struct Parts {
    /// The objects to render.
    pub inventory: SharedInventory,
    /// Source changes.
    pub changes: watch::Receiver<Change>,
    /// Renderer (with its options).
    pub renderer: Renderer,
    /// The target dir.
    pub writer: Arc<Writer>,
    /// Checks before a swap.
    pub validator: Validator,
    /// The last-good store, when `--state-dir` is set.
    pub store: Option<Arc<lastgood::Store>>,
    /// Reload methods.
    pub reloader: Reloader,
    /// Telemetry.
    pub events: Events,
}

// === impl Pipeline ===

impl Pipeline {
    /// A pipeline that has not looked at the target dir yet.
    #[must_use]
    pub fn new(settings: Settings, parts: Parts) -> Self {
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
            events: parts.events,
            current: None,
            last_good: None,
            seen: 0,
            trim_due: true,
        }
    }

    /// Runs until `cancel`: start-up, then one sync per settled burst of changes.
    /// A step in progress (a swap, a reload) completes before it returns.
    pub async fn run(mut self, cancel: CancellationToken) {
        if self.start(&cancel, true).await != startup::Started::Ready {
            return;
        }
        self.sync_with_retries(None, &cancel).await;
        loop {
            let seen = self.seen;
            let mut changes = self.changes.clone();
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = changes.wait_for(|c| c.ready() && c.generation > seen) => {
                    if changed.is_err() {
                        return;
                    }
                }
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
    pub async fn once(mut self) -> Result<(), Error> {
        if self.start(&CancellationToken::new(), false).await != startup::Started::Ready {
            if self.current.is_some() {
                tracing::warn!("the source did not answer in time; keeping the snapshot on disk");
                return Ok(());
            }
            return Err(Error::NoSource {
                waited: self.settings.startup_timeout,
                last_error: self
                    .events
                    .status()
                    .get()
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no answer".into()),
            });
        }
        self.sync(None).await
    }

    /// Syncs; a write error or an unreachable app is retried with backoff until it
    /// succeeds or a newer change comes (which the next sync carries anyway).
    async fn sync_with_retries(&mut self, first_change: Option<Instant>, cancel: &CancellationToken) {
        let mut delay = FIRST_RETRY;
        loop {
            self.events.busy(true);
            let result = self.sync(first_change).await;
            if std::mem::take(&mut self.trim_due) {
                blocking(crate::memory::release_free_memory).await;
            }
            self.events.busy(false);
            let Err(error) = result else {
                return;
            };
            if !error.retryable() {
                return;
            }
            let error = error.to_string();
            let error = crate::keypath::Escaped(&error);
            tracing::warn!(%error, retry_in_ms = delay.as_millis(), "retrying; the files on disk stay as they are");
            let seen = self.seen;
            let mut changes = self.changes.clone();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(crate::jitter::jitter(delay)) => {}
                _ = changes.wait_for(|c| c.generation > seen) => return,
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
    }

    /// Renders the current objects and does what the policy decides for them.
    async fn sync(&mut self, first_change: Option<Instant>) -> Result<(), Error> {
        self.seen = self.changes.borrow_and_update().generation;
        let snapshot = self.render();
        match self.policy.decide(snapshot.hash, snapshot.object_count()) {
            Decision::UpToDate => {
                tracing::debug!(hash = %snapshot.hash, "content unchanged; nothing to do");
                self.events.on_disk(&snapshot, status::Origin::Live);
                self.events.caught_up();
                Ok(())
            }
            Decision::Reload => {
                self.events.on_disk(&snapshot, status::Origin::Live);
                let result = self.tell_app(snapshot).await;
                if result.is_ok() {
                    self.events.caught_up();
                }
                result
            }
            Decision::Hold(hold) => {
                if hold == Hold::EmptySelection
                    && let Some(current) = &self.current
                {
                    self.events.concerning(current.objects().map(AsRef::as_ref));
                }
                self.events.held(hold, snapshot.hash, self.current.as_ref().map(Snapshot::object_count));
                self.deliver_pending_reload().await?;
                match hold {
                    Hold::EmptySelection => Err(Error::Held("the selection is empty".into())),
                    Hold::Blocked => Ok(()),
                }
            }
            Decision::Swap => {
                let result = self.swap(snapshot, first_change).await;
                if result.is_ok() {
                    self.events.caught_up();
                }
                result
            }
        }
    }

    /// Validates, swaps in and tells the app about a new snapshot.
    async fn swap(&mut self, snapshot: Snapshot, first_change: Option<Instant>) -> Result<(), Error> {
        let changed = snapshot.changed_since(self.current.as_ref());
        self.events.concerning(changed.iter().map(AsRef::as_ref));
        let (validator, layout, objects) = (self.validator.clone(), snapshot.layout(), changed.clone());
        if let Err(error) = blocking(move || validator.check_syntax(&objects, layout)).await {
            return self.refused_before_swap(&snapshot, error).await;
        }
        let mut names: Vec<&str> = changed.iter().map(|o| o.id.name.as_str()).collect();
        let removed = self.current.as_ref().map(|c| snapshot.removed_since(c)).unwrap_or_default();
        names.extend(removed.iter().map(String::as_str));
        let names = names.join(",");
        let committed = match self.swap_in(&snapshot, &names, first_change).await {
            Ok(committed) => committed,
            Err(Error::Refused(error)) => return self.refused_before_swap(&snapshot, error).await,
            Err(other) => return Err(other),
        };
        self.events.applied(&changed, snapshot.hash);
        let result = match self.policy.swapped(snapshot.hash, snapshot.object_count()) {
            AfterSwap::Reload => self.tell_app(snapshot).await,
            AfterSwap::Good => {
                if self.last_good.is_none() {
                    tracing::info!("first snapshot: the app reads it at start, so no reload");
                }
                self.mark_good(snapshot).await;
                Ok(())
            }
        };
        // Durability of the switch comes after the reload: it is not on the latency path.
        let writer = Arc::clone(&self.writer);
        blocking(move || writer.persist(committed)).await?;
        result
    }

    async fn refused_before_swap(
        &mut self,
        snapshot: &Snapshot,
        error: crate::validate::Error,
    ) -> Result<(), Error> {
        self.policy.refused_before_swap(snapshot.hash);
        self.events.refused(snapshot.hash, error.label(), &error.to_string(), &error.summary());
        self.deliver_pending_reload().await?;
        Err(error.into())
    }

    /// Renders the current objects, reporting rejections.
    fn render(&mut self) -> Snapshot {
        let delta = self.inventory.take_delta();
        self.trim_due |= matches!(delta, crate::source::Delta::Full(_));
        let rendered = self.renderer.render_delta(delta);
        for rejection in &rendered.rejections {
            self.events.rejected(rejection);
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

    /// Stages the snapshot, runs the validation command on it, and commits it (not yet
    /// durable: the caller persists the commit).
    async fn swap_in(
        &mut self,
        snapshot: &Snapshot,
        changed: &str,
        first_change: Option<Instant>,
    ) -> Result<writer::Committed, Error> {
        let writer = Arc::clone(&self.writer);
        let snap = snapshot.clone();
        let staged = blocking(move || writer.stage(&snap)).await;
        let mut staged = staged.inspect_err(|error| self.events.swap_failed(error))?;
        if self.validator.has_command() {
            let writer = Arc::clone(&self.writer);
            let (view, back) = blocking(move || (writer.staged_view(&mut staged), staged)).await;
            staged = back;
            let checked = match view {
                Ok(view) => self.validator.check_command(&view, snapshot.hash).await,
                Err(error) => Err(crate::validate::Error::Command(format!(
                    "could not lay out the staged snapshot: {error}"
                ))),
            };
            if let Err(error) = checked {
                let writer = Arc::clone(&self.writer);
                if let Err(discard) = blocking(move || writer.discard(staged)).await {
                    tracing::warn!(error = %discard, "removing the refused staged snapshot failed; it is cleaned at the next start");
                }
                return Err(error.into());
            }
        }
        let writer = Arc::clone(&self.writer);
        let committed = blocking(move || writer.commit(staged)).await;
        let committed = committed.inspect_err(|error| self.events.swap_failed(error))?;
        self.events.swapped(snapshot, changed, committed.timings, first_change.map(|t| t.elapsed()));
        self.current = Some(snapshot.clone());
        Ok(committed)
    }

    /// Remembers `snapshot` as the rollback target and persists it in the state dir.
    async fn mark_good(&mut self, snapshot: Snapshot) {
        if let Some(store) = self.store.clone() {
            let snap = snapshot.clone();
            if let Err(error) = blocking(move || store.save(&snap)).await {
                tracing::warn!(%error, "saving the last-good copy failed; the previous copy stays");
            }
        }
        self.last_good = Some(snapshot);
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("blocking filesystem work must not panic")
}
