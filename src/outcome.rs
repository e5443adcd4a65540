//! What the stages report: one typed [`Outcome`] per happening, sent through a
//! [`Reporter`]. The stages (source, snapshot, writer, validate, reload, last-good,
//! pipeline) know only this module; the observers (logs, metrics, `/readyz` status,
//! Kubernetes Events) receive outcomes in one place, `crate::events`, and never call back
//! into a stage.
//!
//! The types an outcome carries are re-exported here, so an observer imports nothing but
//! this module.

pub use crate::snapshot::{ContentHash, Object, Rejection, Snapshot};
pub use crate::source::{Health, HealthReporter, SourceKind};
/// The process-wide count of sync calls, which the writer keeps itself (for the metrics).
pub(crate) use crate::writer::sync_calls;
pub use crate::writer::{Error as WriteError, Found, Repair, SwapTimings};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why the files stay behind the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// This content was refused (validation, verification or the app) and has not
    /// changed since.
    Blocked,
    /// It has no object where the files have some (or none at start): held unless
    /// `--allow-empty`.
    EmptySelection,
}

/// One happening, as the stage that saw it reports it.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The snapshot being processed concerns these objects (changed, or lost when held):
    /// snapshot-level Kubernetes Events regard them.
    Concerning(&'a [Arc<Object>]),
    /// A new snapshot is live in the target dir.
    Swapped {
        /// The snapshot now behind `..data`.
        snapshot: &'a Snapshot,
        /// The objects added, changed or removed, comma-separated.
        changed: &'a str,
        /// Where the swap's time went.
        timings: SwapTimings,
        /// Time from the first source change of this burst to the swap.
        since_change: Option<Duration>,
    },
    /// The objects in `changed` are live with new content in snapshot `hash` (the app
    /// accepted it, or has nothing to accept).
    Applied {
        /// The objects whose files changed.
        changed: &'a [Arc<Object>],
        /// The snapshot they are live in.
        hash: ContentHash,
    },
    /// The live snapshot is on disk and current (no swap was needed, or a rollback ended).
    Current(&'a Snapshot),
    /// A valid snapshot was found in the target dir at start and is kept.
    ExistingKept(&'a Snapshot),
    /// The last-good copy was restored because the source did not answer in time.
    Restored {
        /// The snapshot restored.
        snapshot: &'a Snapshot,
        /// How long the source was waited for.
        waited: Duration,
    },
    /// An object version was not taken into the snapshot; its previous files stay.
    Rejected(&'a Rejection),
    /// A snapshot was not swapped in (validation) or the app refused it (reload,
    /// verification): the files stay behind the source until the content changes.
    Refused {
        /// The refused content.
        hash: ContentHash,
        /// Label of `configsnap_snapshots_refused_total`.
        reason: &'static str,
        /// The whole cause (logs, status).
        detail: &'a str,
        /// `detail` without what may quote file content (Events when Secrets are watched).
        public: &'a str,
    },
    /// A snapshot is held back.
    Held {
        /// Why.
        hold: Hold,
        /// The held content.
        hash: ContentHash,
        /// The object count on disk, if any.
        had: Option<u64>,
    },
    /// The files match the source again: the errors that kept them behind are over.
    CaughtUp,
    /// The target dir went back to the last good snapshot.
    RolledBack {
        /// The content the app refused.
        bad: ContentHash,
        /// The snapshot on disk again.
        good: &'a Snapshot,
    },
    /// Writing a snapshot failed; the previous one stays and the write is retried.
    SwapFailed(&'a WriteError),
    /// The new version of `object` does not fit on the volume; every other change goes
    /// ahead without it. `first`: the first time for this version.
    WithoutRoom {
        /// The object left out.
        object: &'a Object,
        /// The write error.
        error: &'a WriteError,
        /// True the first time this version did not fit.
        first: bool,
    },
    /// The target dir refuses writes.
    TargetUnwritable(&'a WriteError),
    /// The target dir takes writes.
    TargetWritable,
    /// Visible links someone replaced were put right.
    LinksRepaired(&'a [Repair]),
    /// One reload method finished, after its retries.
    ReloadAttempted {
        /// `signal`, `webhook` or `exec`.
        method: &'static str,
        /// The content it told the app about.
        hash: ContentHash,
        /// How long it took.
        took: Duration,
        /// Its result.
        result: Result<(), &'a str>,
    },
    /// The pipeline starts (`true`) or ends a step (a swap, a reload).
    Busy(bool),
    /// A source loop's health.
    Source(Health<'a>),
    /// A long-running task ended when it should not have.
    TaskFailed {
        /// The task.
        task: &'a str,
        /// Why.
        error: &'a str,
    },
}

/// Where a stage sends its outcomes. Cheap to clone; delivery is synchronous, so an
/// observer has seen an outcome when `report` returns.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Fn(Outcome<'_>) + Send + Sync>);

// === impl Reporter ===

impl Reporter {
    /// Delivers every outcome to `observe`.
    pub fn new(observe: impl Fn(Outcome<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(observe))
    }

    /// A reporter nobody listens to (tests, tools).
    #[must_use]
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    /// Reports one outcome.
    pub fn report(&self, outcome: Outcome<'_>) {
        (self.0)(outcome);
    }

    /// A reporter for a source: its health reports arrive here as [`Outcome::Source`].
    #[must_use]
    pub fn source(&self) -> HealthReporter {
        let reporter = self.clone();
        HealthReporter::new(move |health| reporter.report(Outcome::Source(health)))
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reporter")
    }
}

/// `detail` without the command output it may quote (`… exited with 1: <output>`): what
/// may be published when Secrets are watched.
#[must_use]
pub fn without_output(detail: &str) -> String {
    let causes: Vec<String> = detail
        .split("; ")
        .map(|cause| {
            for marker in [" exited with ", " killed by a signal"] {
                if let Some(at) = cause.find(marker) {
                    let rest = &cause[at..];
                    let end = rest.find(": ").map_or(cause.len(), |i| at + i);
                    return format!("{} (output withheld: Secrets are watched)", &cause[..end]);
                }
            }
            cause.to_owned()
        })
        .collect();
    causes.join("; ")
}
