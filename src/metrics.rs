//! Prometheus metrics (prefix `configsnap_`) and the standard `process_*` ones, for
//! `/metrics` as Prometheus text 0.0.4 or, when the scraper asks, OpenMetrics.
//!
//! Only [`crate::events`] updates them, so every metric moves together with its log line.

pub(crate) mod process;
pub(crate) mod text;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// Labels of `configsnap_reloads_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReloadLabels {
    /// `signal`, `webhook` or `exec`.
    pub method: &'static str,
    /// `success` or `failure`.
    pub result: &'static str,
}

/// Labels of `configsnap_reload_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MethodLabel {
    /// `signal`, `webhook` or `exec`.
    pub method: &'static str,
}

/// A label set with one `reason`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    /// Short machine-readable cause.
    pub reason: &'static str,
}

/// Labels of `configsnap_visible_link_repairs_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RepairLabels {
    /// The top-level entry whose link was wrong.
    pub entry: String,
    /// What was there: `link` (to elsewhere), `missing`, `directory` or `file`.
    pub found: &'static str,
}

/// Labels of `configsnap_events_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    /// `sent`, `repeated` (within the repeat window), `forbidden` or `failed`.
    pub result: &'static str,
}

/// Every metric configsnap exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Snapshots swapped into the target dir.
    pub swaps: Counter,
    /// Time of one swap (write, fsync, rename).
    pub(crate) swap_duration: Histogram,
    /// Time from the first unrendered source change to the swap.
    pub(crate) event_to_swap: Histogram,
    /// Reload attempts by method and result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// 1 when the last reload attempt succeeded (also before any), 0 after a failure: the
    /// same meaning as `reloader_last_reload_successful`, which common alerts watch.
    pub(crate) last_reload_successful: Gauge,
    /// Unix time of the last successful reload (0 before any).
    pub(crate) last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// Time of one reload attempt, retries included, by method.
    pub(crate) reload_duration: Family<MethodLabel, Histogram>,
    /// Objects versions rejected, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Snapshots refused by validation or verification, by reason.
    pub(crate) snapshots_refused: Family<ReasonLabel, Counter>,
    /// Swaps that failed (the previous snapshot stayed), by reason.
    pub(crate) swap_failures: Family<ReasonLabel, Counter>,
    /// Swaps back to the last good snapshot after a failed verification.
    pub(crate) rollbacks: Counter,
    /// Visible links found wrong (replaced, removed, or a dir or file in their place) and
    /// put right, by entry.
    pub(crate) visible_link_repairs: Family<RepairLabels, Counter>,
    /// 1 while the target dir takes writes, 0 while it refuses them (read-only,
    /// permission): the app keeps the files on disk, and no update can land.
    pub(crate) target_writable: Gauge,
    /// Failed API requests of the watch, by reason (`unavailable`, `throttled`, `refused`,
    /// `timeout`, `gone`, `stalled`, `decode`, `forbidden`, `other`).
    pub(crate) watch_errors: Family<ReasonLabel, Counter>,
    /// Kubernetes Events by result.
    pub events: Family<ResultLabel, Counter>,
    /// Kubernetes Events dropped because the queue was full.
    pub(crate) events_dropped: Counter,
    /// 1 while the source is degraded (API unreachable or files from last-good).
    pub degraded: Gauge,
    /// Unix time of the last complete state received from the source.
    pub(crate) last_sync_timestamp: Gauge<f64, AtomicU64>,
    /// Objects in the current snapshot.
    pub(crate) selected_objects: Gauge,
    /// Bytes of file content in the current snapshot.
    pub(crate) snapshot_bytes: Gauge,
}

impl Metrics {
    /// Creates and registers every metric.
    #[must_use]
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("configsnap");
        let swaps = Counter::default();
        registry.register("swaps", "Snapshots swapped into the target directory", swaps.clone());
        // 100 µs .. ~6.5 s: a swap is one fsync-bound write on a local disk.
        let swap_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register_with_unit(
            "swap_duration",
            "Time to write, fsync and rename one snapshot",
            Unit::Seconds,
            swap_duration.clone(),
        );
        let event_to_swap = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register_with_unit(
            "event_to_swap",
            "Time from a source change to the swap that carries it (debounce included)",
            Unit::Seconds,
            event_to_swap.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register("reloads", "Reload attempts by method and result", reloads.clone());
        let last_reload_successful = Gauge::default();
        last_reload_successful.set(1);
        registry.register(
            "last_reload_successful",
            "1 when the last reload succeeded or none was needed yet, 0 when it failed",
            last_reload_successful.clone(),
        );
        let last_reload_success_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_reload_success_timestamp",
            "Unix time of the last successful reload (0 before any)",
            Unit::Seconds,
            last_reload_success_timestamp.clone(),
        );
        let reload_duration =
            Family::<MethodLabel, Histogram>::new_with_constructor(reload_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "reload_duration",
            "Time of one reload attempt by method, webhook retries included",
            Unit::Seconds,
            reload_duration.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "rejected_objects",
            "ConfigMap or Secret versions rejected (their previous files stay)",
            rejected.clone(),
        );
        let snapshots_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "snapshots_refused",
            "Snapshots not swapped in (validation) or rolled back (verification)",
            snapshots_refused.clone(),
        );
        let rollbacks = Counter::default();
        registry.register("rollbacks", "Swaps back to the last good snapshot", rollbacks.clone());
        let swap_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "swap_failures",
            "Swaps that failed while writing the target dir (the previous snapshot stayed)",
            swap_failures.clone(),
        );
        let visible_link_repairs = Family::<RepairLabels, Counter>::default();
        registry.register(
            "visible_link_repairs",
            "Visible links in the target dir found wrong (by anyone) and put right, by entry and what was there",
            visible_link_repairs.clone(),
        );
        let target_writable = Gauge::default();
        target_writable.set(1);
        registry.register(
            "target_writable",
            "1 while the target dir takes writes, 0 while it refuses them (read-only or no permission)",
            target_writable.clone(),
        );
        let watch_errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "watch_errors",
            "Failed requests and broken or stalled watches of the source, by reason",
            watch_errors.clone(),
        );
        let events = Family::<ResultLabel, Counter>::default();
        registry.register(
            "events",
            "Kubernetes Events by result (sent, repeated, forbidden, failed)",
            events.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "events_dropped",
            "Kubernetes Events dropped because the send queue was full",
            events_dropped.clone(),
        );
        let degraded = Gauge::default();
        registry.register(
            "degraded",
            "1 while the API is unreachable or files come from last-good",
            degraded.clone(),
        );
        let last_sync_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_sync_timestamp",
            "Unix time of the last complete state from the source",
            Unit::Seconds,
            last_sync_timestamp.clone(),
        );
        let selected_objects = Gauge::default();
        registry.register("selected_objects", "Objects in the current snapshot", selected_objects.clone());
        let snapshot_bytes = Gauge::default();
        registry.register_with_unit(
            "snapshot",
            "Bytes of file content in the current snapshot",
            Unit::Bytes,
            snapshot_bytes.clone(),
        );
        registry.register(
            "sync_calls",
            "fsync, fdatasync and syncfs calls made on the target and state dirs",
            crate::outcome::sync_calls(),
        );
        let build = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        registry.register("build", "Build information", build);
        Self {
            registry,
            swaps,
            swap_duration,
            event_to_swap,
            reloads,
            last_reload_successful,
            last_reload_success_timestamp,
            reload_duration,
            rejected,
            snapshots_refused,
            rollbacks,
            swap_failures,
            visible_link_repairs,
            target_writable,
            watch_errors,
            events,
            events_dropped,
            degraded,
            last_sync_timestamp,
            selected_objects,
            snapshot_bytes,
        }
    }

    /// The OpenMetrics text exposition, `process_*` metrics included.
    #[must_use]
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .expect("writing into a String cannot fail");
        out.push_str(&process::Sample::read().encode());
        out.push_str("# EOF\n");
        out
    }

    /// Content type and body for a scrape with this `Accept` header: Prometheus text
    /// 0.0.4 unless OpenMetrics is preferred (see [`text::wants_openmetrics`]).
    #[must_use]
    pub(crate) fn negotiate(&self, accept: Option<&str>) -> (&'static str, String) {
        if text::wants_openmetrics(accept) {
            (text::OPENMETRICS, self.encode())
        } else {
            (text::PROMETHEUS, text::to_prometheus(&self.encode()))
        }
    }
}

/// 1 ms .. ~65 s: a signal takes microseconds, a webhook with retries tens of seconds.
fn reload_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
