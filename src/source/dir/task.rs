//! The directory source's task: one inotify watcher for every directory, events turned
//! into "dirty" marks, and one blocking re-read per wake of the directories marked.

use super::job::{Finished, Job};
use super::read::object_name;
use super::{DirInventory, Error};
use crate::source::{Health, HealthReporter};
use crate::source::{Input, Notifier, SourceObject};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often missing directories are re-checked (and failed watches or reads retried).
/// A parent watch usually reports a new directory at once; this covers a missing parent
/// and a watcher that could not be set up, at the cost of a `stat` per missing directory.
const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The running source.
pub(super) struct Task {
    slots: Vec<Slot>,
    shared: Arc<Shared>,
    watcher: Option<RecommendedWatcher>,
    inventory: Arc<DirInventory>,
    notifier: Notifier,
    reporter: HealthReporter,
}

/// How a refresh ended.
enum Refreshed {
    /// Every job ran; whether an object changed.
    Done(bool),
    /// The blocking task failed: nothing was read.
    Failed,
    /// The source is shutting down.
    Cancelled,
}

/// One watched directory and what is known of it.
struct Slot {
    /// Absolute path, as registered with inotify (event paths start with it).
    path: PathBuf,
    /// Object name.
    name: String,
    /// Watched for the directory's creation; `None` when another watched directory
    /// already covers it (a non-recursive watch would replace that recursive one).
    parent: Option<PathBuf>,
    /// The current object; `None` while the directory does not exist.
    object: Option<Arc<SourceObject>>,
    /// A recursive watch is set on `path`.
    watched: bool,
    /// The last read or watch of this directory failed.
    failing: bool,
}

/// What the notify thread and the task share.
struct Shared {
    /// The slots' paths, by index.
    dirs: Vec<PathBuf>,
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
}

/// Marks left by events since the task last looked.
#[derive(Default)]
struct Pending {
    /// Directories to re-read.
    dirty: BTreeSet<usize>,
    /// Directories that were removed or renamed: inotify dropped their watch.
    lost: BTreeSet<usize>,
    /// The latest watcher error.
    error: Option<notify::Error>,
}

// === impl Task ===

impl Task {
    pub(super) fn new(
        dirs: Vec<PathBuf>,
        inventory: Arc<DirInventory>,
        notifier: Notifier,
        reporter: HealthReporter,
    ) -> Self {
        // Absolute, so event paths (the watched path joined with names) start with them.
        let paths: Vec<PathBuf> = dirs.into_iter().map(|d| std::path::absolute(&d).unwrap_or(d)).collect();
        let slots = paths
            .iter()
            .map(|path| Slot {
                path: path.clone(),
                name: object_name(path),
                parent: path
                    .parent()
                    .filter(|p| !paths.iter().any(|d| p.starts_with(d)))
                    .map(Path::to_path_buf),
                object: None,
                watched: false,
                failing: false,
            })
            .collect();
        let shared =
            Arc::new(Shared { dirs: paths, pending: Mutex::default(), wake: tokio::sync::Notify::new() });
        Self { slots, shared, watcher: None, inventory, notifier, reporter }
    }

    pub(super) async fn run(mut self, cancel: CancellationToken) {
        let mut dirty: BTreeSet<usize> = (0..self.slots.len()).collect();
        self.ensure_watcher();
        // Nothing to read is a complete state at once.
        let mut ready = self.slots.is_empty();
        if ready {
            self.notifier.source_ready();
        }
        let mut heartbeat = tokio::time::interval(crate::source::HEARTBEAT);
        loop {
            if !dirty.is_empty() {
                // Ready only after a round that read every directory.
                let everything = dirty.len() == self.slots.len();
                match self.refresh(&std::mem::take(&mut dirty), &cancel).await {
                    Refreshed::Cancelled => break,
                    // Not ready on a failed first read: an empty state would remove files.
                    Refreshed::Failed => {}
                    Refreshed::Done(_) if !ready && everything => {
                        ready = true;
                        self.notifier.source_ready();
                    }
                    Refreshed::Done(changed) => {
                        if changed && ready {
                            self.notifier.changed();
                        }
                    }
                }
            }
            let recheck = self.needs_recheck();
            let timed_out = tokio::select! {
                () = cancel.cancelled() => break,
                () = self.shared.wake.notified() => false,
                () = tokio::time::sleep(RECHECK_INTERVAL), if recheck => true,
                _ = heartbeat.tick() => {
                    self.reporter.report(Health::Heartbeat("directory watch"));
                    continue;
                }
            };
            if timed_out {
                self.ensure_watcher();
                dirty = self.recheck_set();
            }
            dirty.extend(self.take_pending());
        }
    }

    /// Creates the watcher if there is none (at start, or after it failed).
    fn ensure_watcher(&mut self) {
        if self.watcher.is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let config = notify::Config::default().with_follow_symlinks(false);
        match RecommendedWatcher::new(
            move |event: notify::Result<notify::Event>| shared.on_event(event),
            config,
        ) {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(source) => report_error(&self.reporter, &Error::Watch { what: "directories".into(), source }),
        }
        for slot in &mut self.slots {
            slot.watched = false;
        }
    }

    fn needs_recheck(&self) -> bool {
        self.watcher.is_none() || self.slots.iter().any(|s| s.object.is_none() || !s.watched || s.failing)
    }

    fn recheck_set(&self) -> BTreeSet<usize> {
        let all = self.watcher.is_none();
        (0..self.slots.len())
            .filter(|&i| {
                all || self.slots[i].object.is_none() || !self.slots[i].watched || self.slots[i].failing
            })
            .collect()
    }

    fn take_pending(&mut self) -> BTreeSet<usize> {
        let pending = std::mem::take(&mut *lock(&self.shared.pending));
        if let Some(error) = pending.error {
            report_error(&self.reporter, &Error::Events(error));
        }
        for &index in &pending.lost {
            self.slots[index].watched = false;
        }
        pending.dirty
    }

    /// Re-watches and re-reads the `dirty` slots.
    async fn refresh(&mut self, dirty: &BTreeSet<usize>, cancel: &CancellationToken) -> Refreshed {
        let jobs: Vec<Job> = dirty.iter().map(|&index| self.slots[index].job(index)).collect();
        let mut watcher = self.watcher.take();
        let handle = tokio::task::spawn_blocking(move || {
            let outcomes: Vec<Finished> = jobs.into_iter().map(|job| job.run(watcher.as_mut())).collect();
            (watcher, outcomes)
        });
        let joined = tokio::select! {
            () = cancel.cancelled() => return Refreshed::Cancelled,
            joined = handle => joined,
        };
        let (watcher, outcomes) = match joined {
            Ok(done) => done,
            Err(error) => {
                // The watcher went down with the panicking job; the re-check makes a new one
                // and reads every directory again.
                report_error(&self.reporter, &Error::Join(error));
                return Refreshed::Failed;
            }
        };
        self.watcher = watcher;
        let mut changed = false;
        for outcome in outcomes {
            changed |= self.apply(outcome);
        }
        if changed {
            let objects = self.slots.iter().filter_map(|s| s.object.clone().map(Input::Object)).collect();
            self.inventory.objects.store(Arc::new(objects));
        }
        if !self.slots.iter().any(|s| s.failing) {
            self.reporter.report(Health::Synced);
        }
        Refreshed::Done(changed)
    }

    /// Takes one outcome into its slot; whether the object changed.
    fn apply(&mut self, outcome: Finished) -> bool {
        let slot = &mut self.slots[outcome.index];
        slot.watched = outcome.watched;
        slot.failing = !outcome.watch_errors.is_empty() || outcome.read.is_err();
        for error in &outcome.watch_errors {
            report_error(&self.reporter, error);
        }
        let object = match outcome.read {
            Ok(object) => object,
            Err(error) => {
                // Keep the last good object: a transient error must not remove files.
                report_error(&self.reporter, &error);
                return false;
            }
        };
        let old = slot.object.as_ref().map(|o| o.resource_version.as_str());
        let new = object.as_ref().map(|o| o.resource_version.as_str());
        if old == new {
            return false;
        }
        match &object {
            Some(o) => {
                tracing::info!(dir = %slot.path.display(), name = %slot.name, resource_version = %o.resource_version, files = o.entries.len(), "directory content changed");
            }
            None if slot.object.is_some() => {
                tracing::info!(dir = %slot.path.display(), name = %slot.name, "directory removed");
            }
            None => {}
        }
        slot.object = object.map(Arc::new);
        true
    }
}

// === impl Slot ===

impl Slot {
    fn job(&self, index: usize) -> Job {
        Job {
            index,
            path: self.path.clone(),
            name: self.name.clone(),
            // While the directory is missing, its parent watch is (re)set: the parent may
            // have been created or replaced since.
            parent: self.parent.clone().filter(|_| self.object.is_none() || !self.watched),
            watched: self.watched,
        }
    }
}

// === impl Shared ===

impl Shared {
    /// Called on the notify thread: marks the directories an event touches, wakes the task.
    fn on_event(&self, event: notify::Result<notify::Event>) {
        let mut pending = lock(&self.pending);
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                pending.error = Some(error);
                drop(pending);
                self.wake.notify_one();
                return;
            }
        };
        if !is_relevant(event.kind) {
            return;
        }
        let before = pending.dirty.len();
        if event.paths.is_empty() || event.need_rescan() {
            pending.dirty.extend(0..self.dirs.len());
        }
        let gone = matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)));
        for path in &event.paths {
            for (index, dir) in self.dirs.iter().enumerate() {
                if path.starts_with(dir) {
                    pending.dirty.insert(index);
                    if gone && path == dir {
                        pending.lost.insert(index);
                    }
                }
            }
        }
        let marked = pending.dirty.len() > before;
        drop(pending);
        if marked {
            self.wake.notify_one();
        }
    }
}

/// Whether an event can mean new content: opening and reading (our own reads) cannot.
fn is_relevant(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reports a failure of the directory source (it retries).
fn report_error(reporter: &HealthReporter, error: &dyn std::fmt::Display) {
    reporter.report(Health::Failed(&error.to_string()));
}
