//! The pipeline: one task that turns source changes into rendered, validated, atomically
//! swapped and reloaded snapshots, and that keeps the last good one.
//!
//! Start-up (keep what is on disk, or restore last-good when the source is late) is in
//! [`startup`]; reload, verification and rollback in [`reload`].

pub mod debounce;
mod reload;
mod startup;

use crate::events::Events;
use crate::lastgood;
use crate::reload::Reloader;
use crate::snapshot::manifest::Origin;
use crate::snapshot::{ContentHash, Renderer, Snapshot};
use crate::source::{Change, SharedInventory};
use crate::status;
use crate::validate::Validator;
use crate::writer::{self, Writer};
use debounce::Debounce;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First delay before retrying a failed write; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest delay between two write retries.
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
    /// Reload after the first sync too.
    pub reload_on_start: bool,
    /// After a reload, this URL must answer 2xx within the timeout, or roll back.
    pub verify: Option<(hyper::Uri, Duration)>,
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
    /// The app could not be told to reload.
    #[error("failed to reload the app: {0}")]
    Reload(String),
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
    /// The snapshot `..data` points at.
    current: Option<Snapshot>,
    /// The last snapshot that was reloaded successfully (the rollback target).
    last_good: Option<Snapshot>,
    /// A snapshot whose verification failed: not retried until the content changes.
    blocked: Option<ContentHash>,
    /// A swapped snapshot whose reload did not complete (superseded or failed).
    reload_pending: Option<ContentHash>,
    /// Source generation last rendered.
    seen: u64,
    /// True once a snapshot was on disk, so the app may have read files already.
    app_has_files: bool,
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
            blocked: None,
            reload_pending: None,
            seen: 0,
            app_has_files: false,
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

    /// Syncs; a write error is retried with backoff until it succeeds or a newer change
    /// comes (which the next sync carries anyway).
    async fn sync_with_retries(&mut self, first_change: Option<Instant>, cancel: &CancellationToken) {
        let mut delay = FIRST_RETRY;
        loop {
            self.events.busy(true);
            let result = self.sync(first_change).await;
            self.events.busy(false);
            let Err(Error::Write(error)) = result else {
                return;
            };
            tracing::error!(%error, retry_in_ms = delay.as_millis(), "writing the snapshot failed; the previous one stays");
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

    /// Renders the current objects; swaps, reloads and records the result if the content
    /// changed.
    async fn sync(&mut self, first_change: Option<Instant>) -> Result<(), Error> {
        self.seen = self.changes.borrow_and_update().generation;
        let snapshot = self.render();
        if self.current.as_ref().is_some_and(|c| c.hash == snapshot.hash) {
            self.events.on_disk(&snapshot, status::Origin::Live);
            if self.reload_pending == Some(snapshot.hash) {
                return self.reload(snapshot).await;
            }
            tracing::debug!(hash = %snapshot.hash, "content unchanged; nothing to do");
            return Ok(());
        }
        if self.blocked == Some(snapshot.hash) {
            tracing::debug!(hash = %snapshot.hash, "content failed verification before; waiting for a change");
            return self.deliver_pending_reload().await;
        }
        self.blocked = None;
        let changed = snapshot.changed_since(self.current.as_ref());
        let (validator, layout, objects) = (self.validator.clone(), snapshot.layout(), changed.clone());
        if let Err(error) = blocking(move || validator.check_syntax(&objects, layout)).await {
            self.events.refused(snapshot.hash, error.label(), &error.to_string());
            self.deliver_pending_reload().await?;
            return Err(error.into());
        }
        let mut names: Vec<&str> = changed.iter().map(|o| o.id.name.as_str()).collect();
        let removed = self.current.as_ref().map(|c| snapshot.removed_since(c)).unwrap_or_default();
        names.extend(removed.iter().map(String::as_str));
        let names = names.join(",");
        let committed = match self.swap_in(&snapshot, &names, first_change).await {
            Ok(committed) => committed,
            Err(refused @ Error::Refused(_)) => {
                self.deliver_pending_reload().await?;
                return Err(refused);
            }
            Err(other) => return Err(other),
        };
        let app_had_files = std::mem::replace(&mut self.app_has_files, true);
        let result = if app_had_files || self.settings.reload_on_start {
            self.reload(snapshot).await
        } else {
            tracing::info!("first snapshot: the app reads it at start, so no reload");
            self.mark_good(snapshot).await;
            Ok(())
        };
        // Durability of the switch comes after the reload: it is not on the latency path.
        let writer = Arc::clone(&self.writer);
        blocking(move || writer.persist(committed)).await?;
        result
    }

    /// Renders the current objects, reporting rejections.
    fn render(&mut self) -> Snapshot {
        let rendered = self.renderer.render(&self.inventory.current());
        for rejection in &rendered.rejections {
            self.events.rejected(rejection);
        }
        rendered.snapshot
    }

    /// The hash the current objects would render to, reporting and remembering nothing.
    fn peek_hash(&self) -> ContentHash {
        self.renderer.clone().render(&self.inventory.current()).snapshot.hash
    }

    /// Tells the app about the snapshot on disk if that was left undone (superseded or
    /// failed), before a newer content is refused and nothing else would.
    async fn deliver_pending_reload(&mut self) -> Result<(), Error> {
        match self.current.clone() {
            Some(current) if self.reload_pending == Some(current.hash) => self.reload(current).await,
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
        let mut staged = blocking(move || writer.stage(&snap)).await?;
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
                self.events.refused(snapshot.hash, error.label(), &error.to_string());
                return Err(error.into());
            }
        }
        let writer = Arc::clone(&self.writer);
        let committed = blocking(move || writer.commit(staged)).await?;
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
