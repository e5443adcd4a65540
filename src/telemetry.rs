//! Logging: `tracing` to stderr, as text or one JSON object per line with typed fields
//! ([`json`]). The level comes from `--log-level` (env `CONFIGSNAP_LOG_LEVEL`, default
//! `info`); `RUST_LOG` directives, when set, refine it (e.g. `RUST_LOG=kube_client=debug`).
//!
//! Libraries log their own failures (kube's client, hyper, rustls): during an API outage
//! they would repeat the same line at every retry. [`FloodGate`] lets through one warning
//! or error per call site of a library per [`LIBRARY_LOG_INTERVAL`]; configsnap's own lines
//! are rate-limited where they are emitted ([`crate::events`]).

pub mod json;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// One line per library call site per this interval, for warnings and errors.
pub(crate) const LIBRARY_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber at level `info` (unless `RUST_LOG` says otherwise).
pub fn init(format: LogFormat) {
    init_with_level(format, LevelFilter::INFO);
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init_with_level(format: LogFormat, level: LevelFilter) {
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(false).boxed(),
        LogFormat::Json => fmt.fmt_fields(JsonFields::new()).event_format(json::Format).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(FloodGate::default()).with_filter(filter))
        .try_init();
}

/// A per-layer filter: warnings and errors of other crates, at most one per call site per
/// [`LIBRARY_LOG_INTERVAL`].
#[derive(Debug, Default)]
pub struct FloodGate {
    last: Mutex<HashMap<CallSite, Instant>>,
}

/// A library log call site; `log` records share one tracing call site per level, so the
/// target, file and line tell them apart.
type CallSite = (String, Option<String>, Option<u32>, Level);

// === impl FloodGate ===

impl FloodGate {
    fn is_gated(meta: &Metadata<'_>) -> bool {
        meta.is_event() && *meta.level() <= Level::WARN && !meta.target().starts_with("configsnap")
    }

    /// True when `meta`'s call site has not logged within the interval (and records it).
    pub(crate) fn admit(&self, meta: &Metadata<'_>, now: Instant) -> bool {
        if !Self::is_gated(meta) {
            return true;
        }
        let key = (meta.target().to_owned(), meta.file().map(str::to_owned), meta.line(), *meta.level());
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < LIBRARY_LOG_INTERVAL => false,
            _ => {
                // Bounded: call sites are a fixed set, compiled into the binary.
                last.insert(key, now);
                true
            }
        }
    }
}

impl<S> Filter<S> for FloodGate {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.admit(meta, Instant::now())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Gated call sites must be asked about every time.
        if Self::is_gated(meta) { Interest::sometimes() } else { Interest::always() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_warning_passes_once_per_interval_and_ours_always() {
        static CS: tracing::callsite::DefaultCallsite = tracing::callsite::DefaultCallsite::new(&META);
        static META: Metadata<'static> = tracing::metadata!(
            name: "event",
            target: "kube_client::client",
            level: Level::WARN,
            fields: &[],
            callsite: &CS,
            kind: tracing::metadata::Kind::EVENT
        );
        static OURS_CS: tracing::callsite::DefaultCallsite = tracing::callsite::DefaultCallsite::new(&OURS);
        static OURS: Metadata<'static> = tracing::metadata!(
            name: "event",
            target: "configsnap::events",
            level: Level::WARN,
            fields: &[],
            callsite: &OURS_CS,
            kind: tracing::metadata::Kind::EVENT
        );
        let gate = FloodGate::default();
        let start = Instant::now();
        assert!(gate.admit(&META, start));
        assert!(!gate.admit(&META, start + Duration::from_secs(29)));
        assert!(gate.admit(&META, start + LIBRARY_LOG_INTERVAL));
        assert!(gate.admit(&OURS, start) && gate.admit(&OURS, start));
    }
}
