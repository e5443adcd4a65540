//! Everything worth telling an operator: each event writes its log line, moves its
//! metric and updates the status in one place, so logs, metrics and probes never disagree.

mod announce;
mod observe;
mod writes;

use crate::keypath::Escaped;
use crate::kube_events::notes;
use crate::metrics::{MethodLabel, Metrics, ReasonLabel, ReloadLabels};
use crate::outcome::{ContentHash, Hold, Rejection, Snapshot, SwapTimings};
use crate::status::{Origin, StatusHandle};
use chrono::Utc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Longest list of changed object names in a "snapshot swapped" line (a first sync of
/// thousands of objects would otherwise log them all).
const CHANGED_LOG_BYTES: usize = 512;
/// Repeated source errors are logged at most this often (no log floods in outages).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// The loop name of a source reporting through [`Events::source_error`].
const SOURCE: &str = "source";

/// The one place the stages' outcomes fan out to the observers (logs, metrics, status,
/// Kubernetes Events). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    metrics: Arc<Metrics>,
    status: StatusHandle,
    source_errors: Arc<Mutex<RateLimit>>,
    announce: Arc<announce::Announce>,
    /// True while the pipeline is in a step (a swap, a reload): background work such as
    /// Kubernetes Events waits for the end of it, so it takes no time from the update path.
    pipeline_busy: Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Debug, Default)]
struct RateLimit {
    last_logged: Option<Instant>,
    suppressed: u64,
    /// The content last reported as held (reported once).
    held: Option<ContentHash>,
}

// === impl Events ===

impl Events {
    /// A sink writing to these metrics and this status.
    #[must_use]
    pub(crate) fn new(metrics: Arc<Metrics>, status: StatusHandle) -> Self {
        let pipeline_busy = Arc::new(tokio::sync::watch::channel(false).0);
        Self { metrics, status, source_errors: Arc::default(), announce: Arc::default(), pipeline_busy }
    }

    /// The metrics (for `/metrics`).
    #[must_use]
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The status (for the probes).
    #[must_use]
    pub(crate) fn status(&self) -> &StatusHandle {
        &self.status
    }

    /// A new snapshot is live in the target dir.
    /// `changed` names the objects added, changed or removed (comma-separated).
    fn swapped(
        &self,
        snapshot: &Snapshot,
        changed: &str,
        timings: SwapTimings,
        since_change: Option<Duration>,
    ) {
        tracing::info!(
            hash = %snapshot.hash,
            objects = snapshot.object_count(),
            files = snapshot.file_count(),
            changed = %shorten(changed, CHANGED_LOG_BYTES),
            bytes = snapshot.total_bytes(),
            write_ms = ms(timings.write),
            fsync_ms = ms(timings.fsync),
            rename_ms = ms(timings.rename),
            "snapshot swapped"
        );
        self.metrics.swaps.inc();
        self.metrics.swap_duration.observe(timings.total().as_secs_f64());
        if let Some(latency) = since_change {
            self.metrics.event_to_swap.observe(latency.as_secs_f64());
        }
        self.on_disk(snapshot, Origin::Live);
        self.status.update(|s| s.last_swap = Some(Utc::now()));
        self.target_writable();
    }

    /// The snapshot on disk is `snapshot`, from `origin` (no swap happened or a restore).
    fn on_disk(&self, snapshot: &Snapshot, origin: Origin) {
        self.metrics.selected_objects.set(to_i64(snapshot.object_count()));
        self.metrics.snapshot_bytes.set(to_i64(snapshot.total_bytes()));
        let hash = snapshot.hash.to_string();
        self.status.update(|s| {
            s.origin = origin;
            s.hash = Some(hash.clone());
        });
        self.sync_degraded_gauge();
    }

    /// A valid snapshot was found in the target dir at start and is kept.
    fn existing_kept(&self, snapshot: &Snapshot) {
        tracing::info!(hash = %snapshot.hash, files = snapshot.file_count(), "keeping the snapshot already in the target dir");
        self.on_disk(snapshot, Origin::Existing);
    }

    /// The last-good copy was restored because the source did not answer in time.
    fn restored(&self, snapshot: &Snapshot, waited: Duration) {
        tracing::warn!(
            hash = %snapshot.hash,
            waited_ms = ms(waited),
            "no state from the source in time: restored the last good snapshot"
        );
        self.on_disk(snapshot, Origin::LastGood);
    }

    /// An object version was not taken into the snapshot.
    fn rejected(&self, rejection: &Rejection) {
        tracing::warn!(
            namespace = %Escaped(&rejection.namespace),
            name = %Escaped(&rejection.id.name),
            kind = %rejection.id.kind,
            resource_version = %Escaped(&rejection.resource_version),
            kept_previous = rejection.kept_previous,
            error = %rejection.reason,
            "object rejected; its previous files stay"
        );
        let reason = rejection.reason.label();
        self.metrics.rejected.get_or_create(&ReasonLabel { reason }).inc();
        self.publish(notes::rejected(rejection));
        let message = format!("{} {}: {}", rejection.id.kind, rejection.id.name, rejection.reason);
        self.status.update(|s| s.last_error = Some(message.clone()));
    }

    /// A snapshot was not swapped in (validation) or the app refused it (reload,
    /// verification): the files stay behind the source until the content changes.
    /// `public` is `detail` without what may quote file content (for Events when Secrets
    /// are watched).
    fn refused(&self, hash: ContentHash, reason: &'static str, detail: &str, public: &str) {
        tracing::warn!(%hash, reason, error = %Escaped(detail), "snapshot refused; the current one stays");
        if self.announcing() {
            self.publish(notes::refused(&self.regarding(), hash, reason, detail, public, self.redact()));
        }
        self.metrics.snapshots_refused.get_or_create(&ReasonLabel { reason }).inc();
        self.behind(format!("snapshot {hash} refused ({reason}): {detail}"));
    }

    /// A snapshot is held back (see [`Hold`]); `had` is the object count on disk. Logged
    /// and counted once per held content.
    fn held(&self, hold: Hold, hash: ContentHash, had: Option<u64>) {
        if hold == Hold::Blocked {
            tracing::debug!(%hash, "this content was refused before; waiting for a change");
            return;
        }
        let first = self.lock_errors().held.replace(hash) != Some(hash);
        if !first {
            return;
        }
        let message = match had {
            Some(had) if had > 0 => format!(
                "every selected object is gone (deleted or no longer matching the selector); the {had} previous \
                 object(s) stay on disk; pass --allow-empty to accept an empty selection"
            ),
            _ => "no object matches the selection; nothing is written until one does (check --selector, \
                  --name and --namespace, or pass --allow-empty)"
                .to_owned(),
        };
        tracing::warn!(%hash, "{message}");
        if self.announcing() {
            self.publish(notes::held(&self.regarding(), &message));
        }
        self.metrics.snapshots_refused.get_or_create(&ReasonLabel { reason: "empty_selection" }).inc();
        self.behind(message);
    }

    /// The files are behind the source for `reason`.
    fn behind(&self, reason: String) {
        let now = Utc::now();
        self.status.update(|s| {
            let since = s.behind.as_ref().map_or(now, |(_, since)| *since);
            s.behind = Some((reason.clone(), since));
            s.last_error = Some(reason.clone());
        });
    }

    /// The files match the source again: the errors that kept them behind are over.
    fn caught_up(&self) {
        self.lock_errors().held = None;
        if self.status.get().behind.is_none() && self.status.get().last_error.is_none() {
            return;
        }
        self.status.update(|s| {
            s.behind = None;
            if s.source_error.is_none() {
                s.last_error = None;
            }
        });
    }

    /// The target dir went back to the last good snapshot.
    fn rolled_back(&self, bad: ContentHash, good: &Snapshot) {
        tracing::warn!(bad = %bad, good = %good.hash, "rolled back to the last good snapshot");
        self.metrics.rollbacks.inc();
        if self.announcing() {
            self.publish(notes::rolled_back(&self.regarding(), bad, good.hash));
        }
    }

    /// One reload method (`signal`, `webhook`, `exec`) finished, after its retries.
    fn reload_attempted(
        &self,
        method: &'static str,
        hash: ContentHash,
        took: Duration,
        result: Result<(), &str>,
    ) {
        let duration_ms = ms(took);
        let result = match result {
            Ok(()) => {
                tracing::info!(method, %hash, duration_ms, "app reloaded");
                "success"
            }
            Err(error) => {
                tracing::warn!(method, %hash, duration_ms, error = %Escaped(error), "reload failed");
                let message = format!("reload by {method} failed: {error}");
                self.status.update(|s| s.last_error = Some(message.clone()));
                "failure"
            }
        };
        self.metrics.reloads.get_or_create(&ReloadLabels { method, result }).inc();
        self.metrics.reload_duration.get_or_create(&MethodLabel { method }).observe(took.as_secs_f64());
        self.metrics.last_reload_successful.set(i64::from(result == "success"));
        if result == "success" {
            #[allow(clippy::cast_precision_loss)] // Milliseconds since 1970 fit an f64 exactly.
            self.metrics.last_reload_success_timestamp.set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
    }

    /// A request of the watch loop `watch` failed; it retries with backoff. `reason` labels
    /// `configsnap_watch_errors_total`, `cause` says what happened in plain words.
    fn watch_failed(&self, watch: &'static str, reason: &'static str, cause: &str) {
        self.metrics.watch_errors.get_or_create(&ReasonLabel { reason }).inc();
        let now = Utc::now();
        self.status.update(|s| {
            let since = s.source_faults.get(watch).map_or(now, |(_, since)| *since);
            s.source_faults.insert(watch, (cause.to_owned(), since));
            s.source_error = summarize(&s.source_faults);
            s.last_error = Some(cause.to_owned());
        });
        self.sync_degraded_gauge();
        let mut limit = self.lock_errors();
        let due = limit.last_logged.is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL);
        if due {
            let suppressed = std::mem::take(&mut limit.suppressed);
            limit.last_logged = Some(Instant::now());
            tracing::warn!(watch, reason, error = %Escaped(cause), suppressed_since_last_log = suppressed, "source error; retrying with backoff, files stay as they are");
        } else {
            limit.suppressed += 1;
            tracing::debug!(watch, reason, error = %Escaped(cause), "source error (rate-limited)");
        }
    }

    /// Records a sync; clears the fault of `watch`, or of every loop when `None`.
    fn mark_synced(&self, watch: Option<&'static str>) {
        let now = Utc::now();
        #[allow(clippy::cast_precision_loss)] // Milliseconds since 1970 fit an f64 exactly.
        self.metrics.last_sync_timestamp.set(now.timestamp_millis() as f64 / 1000.0);
        let before = self.status.get();
        self.status.update(|s| {
            s.last_sync = Some(now);
            match watch {
                Some(watch) => {
                    s.source_faults.remove(watch);
                }
                None => s.source_faults.clear(),
            }
            s.source_error = summarize(&s.source_faults);
        });
        let after = self.status.get();
        if let (Some((_, since)), None) = (&before.source_error, &after.source_error) {
            let outage = (now - *since).to_std().unwrap_or_default();
            let suppressed = std::mem::take(&mut self.lock_errors().suppressed);
            tracing::info!(outage_ms = ms(outage), suppressed_errors = suppressed, "source reachable again");
        }
        self.sync_degraded_gauge();
    }

    /// Marks the start (`true`) and end of a pipeline step, for the wedge check.
    fn busy(&self, busy: bool) {
        let since = busy.then(Instant::now);
        self.status.update(|s| s.busy_since = since);
        self.pipeline_busy.send_replace(busy);
    }

    /// Follows whether the pipeline is in a step (see [`Events::busy`]).
    #[must_use]
    pub(crate) fn pipeline_busy(&self) -> tokio::sync::watch::Receiver<bool> {
        self.pipeline_busy.subscribe()
    }

    /// A source loop is alive and turning.
    fn heartbeat(&self, task: &'static str) {
        let now = Instant::now();
        self.status.update(|s| {
            s.heartbeats.insert(task, now);
        });
    }

    /// A long-running task ended when it should not have.
    fn task_failed(&self, task: &str, error: &str) {
        tracing::error!(task, %error, "task ended unexpectedly");
        let name = task.to_owned();
        self.status.update(|s| s.failed_task = Some(name.clone()));
    }

    fn sync_degraded_gauge(&self) {
        let status = self.status.get();
        let degraded = status.source_error.is_some()
            || status.origin == Origin::LastGood
            || status.target_fault.is_some();
        self.metrics.degraded.set(i64::from(degraded));
    }

    fn lock_errors(&self) -> std::sync::MutexGuard<'_, RateLimit> {
        self.source_errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One cause for the status: every failing loop's, in name order, since the earliest.
fn summarize(
    faults: &std::collections::BTreeMap<&'static str, (String, chrono::DateTime<Utc>)>,
) -> Option<(String, chrono::DateTime<Utc>)> {
    let since = faults.values().map(|(_, since)| *since).min()?;
    let causes: Vec<&str> = faults.values().map(|(cause, _)| cause.as_str()).collect();
    Some((causes.join("; "), since))
}

/// `text` cut at a char boundary within `limit` bytes, with `…` when cut.
fn shorten(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn to_i64(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Health, Outcome};
    use crate::status::State;

    #[test]
    fn one_watch_recovering_does_not_hide_another_still_failing() {
        let events = Events::new(Arc::default(), StatusHandle::default());
        let failed = |watch, reason, cause| Outcome::Source(Health::WatchFailed { watch, reason, cause });
        events.observe(failed("ConfigMap watch", "unavailable", "503 to the ConfigMap list"));
        events.observe(failed("Secret watch", "forbidden", "403 to the Secret list"));
        events.observe(Outcome::Source(Health::WatchHealthy("ConfigMap watch")));
        let status = events.status().get();
        assert!(
            matches!(status.state(), State::Degraded { ref reason, .. } if reason == "403 to the Secret list")
        );
        events.observe(Outcome::Source(Health::WatchHealthy("Secret watch")));
        assert!(events.status().get().source_error.is_none());
        let metrics = events.metrics().encode();
        assert!(metrics.contains("configsnap_watch_errors_total{reason=\"forbidden\"} 1"), "{metrics}");
    }
}
