//! What a source reports about itself: its loops' health, as typed [`Health`] values sent
//! through a [`HealthReporter`]. The source knows nothing of who listens; the wiring turns
//! these into [`crate::outcome`]s for the observers.

use std::fmt;
use std::sync::Arc;

/// One happening of a source loop.
#[derive(Debug, Clone, Copy)]
pub enum Health<'a> {
    /// A source with one loop delivered a complete, current state.
    Synced,
    /// A source with one loop failed; it retries.
    Failed(&'a str),
    /// The watch loop named here is current again (its list completed, or its watch is
    /// open and delivering).
    WatchHealthy(&'static str),
    /// A request of the watch loop `watch` failed; it retries with backoff.
    WatchFailed {
        /// The loop's name.
        watch: &'static str,
        /// Label of `configsnap_watch_errors_total`.
        reason: &'static str,
        /// What happened, in plain words.
        cause: &'a str,
    },
    /// A source loop is alive and turning.
    Heartbeat(&'static str),
    /// A long-running source task ended when it should not have.
    TaskFailed {
        /// The task.
        task: &'static str,
        /// Why.
        error: &'a str,
    },
}

/// Where a source sends its [`Health`]. Cheap to clone; delivery is synchronous.
#[derive(Clone)]
pub struct HealthReporter(Arc<dyn Fn(Health<'_>) + Send + Sync>);

// === impl HealthReporter ===

impl HealthReporter {
    /// Delivers every report to `listen`.
    pub fn new(listen: impl Fn(Health<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(listen))
    }

    /// A reporter nobody listens to (tests).
    #[must_use]
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    /// Reports one happening.
    pub fn report(&self, health: Health<'_>) {
        (self.0)(health);
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthReporter")
    }
}
