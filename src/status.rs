//! What configsnap is doing right now, shared lock-free (`ArcSwap`) between the tasks that
//! change it (through [`crate::events`]) and the HTTP server that reports it.

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::sync::Arc;

/// Where the files currently on disk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Origin {
    /// No snapshot on disk yet.
    #[default]
    None,
    /// A valid snapshot was already in the target dir at start (container restart).
    Existing,
    /// Restored from the last-good copy because the source did not answer in time.
    LastGood,
    /// Rendered from the live source.
    Live,
}

/// The state reported by `/readyz` and the `degraded` metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub(crate) enum State {
    /// Waiting for the first snapshot.
    Starting,
    /// Files match the live source.
    Fresh,
    /// Files come from before the source became unreachable or from last-good, or the
    /// target dir refuses writes (the files on disk stay, no update can land).
    Degraded {
        /// Last error from the source.
        reason: String,
        /// When the source stopped answering (RFC 3339).
        since: String,
    },
    /// Files restored from the last-good copy, source not synced yet.
    Restored,
    /// The source is fine but the files are behind it: a write failed, a snapshot was
    /// refused or rolled back, or an emptied selection is held.
    Stale {
        /// Why, in plain words.
        reason: String,
        /// Since when (RFC 3339).
        since: String,
    },
}

/// Everything the probes and the status body report.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// Where the files on disk came from.
    pub(crate) origin: Origin,
    /// Content hash of the snapshot on disk.
    pub hash: Option<String>,
    /// Last complete state received from the source.
    pub(crate) last_sync: Option<DateTime<Utc>>,
    /// Last swap.
    pub(crate) last_swap: Option<DateTime<Utc>>,
    /// Last error of any kind, for operators.
    pub(crate) last_error: Option<String>,
    /// Source error and when the outage began, while the source is failing (every failing
    /// watch loop's cause, from [`Status::source_faults`]).
    pub(crate) source_error: Option<(String, DateTime<Utc>)>,
    /// Why the files are behind the source, and since when.
    pub behind: Option<(String, DateTime<Utc>)>,
    /// Why the target dir refuses writes (read-only, no permission), and since when: the
    /// app keeps the complete snapshot on disk, and no update can land.
    pub(crate) target_fault: Option<(String, DateTime<Utc>)>,
    /// Each failing watch loop: its cause and since when; a loop recovering clears only its
    /// own entry, so a healthy ConfigMap watch does not hide a failing Secret watch.
    pub(crate) source_faults: std::collections::BTreeMap<&'static str, (String, DateTime<Utc>)>,
    /// Set when shutdown began: not ready any more.
    pub(crate) shutting_down: bool,
    /// A task that ended unexpectedly (unhealthy).
    pub(crate) failed_task: Option<String>,
    /// When the pipeline began its current step (to detect a wedged loop).
    pub(crate) busy_since: Option<tokio::time::Instant>,
    /// Last time each source loop proved it is turning (to detect a wedged watch loop).
    pub(crate) heartbeats: std::collections::BTreeMap<&'static str, tokio::time::Instant>,
}

impl Status {
    /// The derived state.
    #[must_use]
    pub(crate) fn state(&self) -> State {
        if let Some((reason, since)) = &self.target_fault {
            return State::Degraded {
                reason: reason.clone(),
                since: since.to_rfc3339_opts(SecondsFormat::Secs, true),
            };
        }
        if let Some((reason, since)) = &self.source_error {
            return State::Degraded {
                reason: reason.clone(),
                since: since.to_rfc3339_opts(SecondsFormat::Secs, true),
            };
        }
        if let Some((reason, since)) = &self.behind {
            return State::Stale {
                reason: reason.clone(),
                since: since.to_rfc3339_opts(SecondsFormat::Secs, true),
            };
        }
        match self.origin {
            Origin::None => State::Starting,
            Origin::LastGood => State::Restored,
            Origin::Existing | Origin::Live if self.last_sync.is_some() => State::Fresh,
            Origin::Existing | Origin::Live => State::Starting,
        }
    }

    /// Ready: a snapshot is on disk and shutdown has not begun.
    #[must_use]
    pub(crate) fn ready(&self) -> bool {
        self.origin != Origin::None && !self.shutting_down
    }

    /// The JSON body of `/readyz`.
    #[must_use]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let time = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        serde_json::json!({
            "ready": self.ready(),
            "status": self.state(),
            "origin": self.origin,
            "hash": self.hash,
            "lastSync": time(&self.last_sync),
            "lastSwap": time(&self.last_swap),
            "lastError": self.last_error,
            "shuttingDown": self.shutting_down,
        })
    }
}

/// Shared, lock-free handle to the [`Status`].
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusHandle(Arc<ArcSwap<Status>>);

impl StatusHandle {
    /// The current status.
    #[must_use]
    pub(crate) fn get(&self) -> Arc<Status> {
        self.0.load_full()
    }

    /// Changes the status (retried if another writer raced).
    pub(crate) fn update(&self, change: impl Fn(&mut Status)) {
        self.0.rcu(|current| {
            let mut next = Status::clone(current);
            change(&mut next);
            next
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_origin_sync_and_errors() {
        let status = StatusHandle::default();
        assert_eq!(status.get().state(), State::Starting);
        assert!(!status.get().ready());
        status.update(|s| s.origin = Origin::LastGood);
        assert_eq!(status.get().state(), State::Restored);
        assert!(status.get().ready());
        status.update(|s| {
            s.origin = Origin::Live;
            s.last_sync = Some(Utc::now());
        });
        assert_eq!(status.get().state(), State::Fresh);
        status.update(|s| s.source_error = Some(("connection refused".into(), Utc::now())));
        assert!(matches!(status.get().state(), State::Degraded { .. }));
        assert_eq!(status.get().to_json()["status"]["state"], "degraded");
        status.update(|s| s.source_error = None);
        status.update(|s| s.behind = Some(("no space left on device".into(), Utc::now())));
        assert_eq!(status.get().to_json()["status"]["state"], "stale");
        assert!(status.get().ready(), "stale files are still a complete snapshot");
        status.update(|s| s.target_fault = Some(("read-only".into(), Utc::now())));
        assert_eq!(status.get().to_json()["status"]["state"], "degraded");
        assert_eq!(status.get().to_json()["status"]["reason"], "read-only");
        assert!(status.get().ready(), "a read-only dir with a snapshot still serves it");
        status.update(|s| s.origin = Origin::None);
        assert!(!status.get().ready(), "never ready without a snapshot on disk");
        status.update(|s| s.origin = Origin::Live);
        status.update(|s| s.shutting_down = true);
        assert!(!status.get().ready());
    }
}
