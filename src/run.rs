//! The program behind `main`, as wiring only: the parts are built from a validated
//! [`Config`] in data-flow order (sources → pipeline: render, validate, write, reload,
//! last-good), the observers listen to what the stages report, one task runs per concern,
//! and shutdown goes in order (unready, finish the step in progress, stop).

mod lifecycle;
mod parts;

use crate::cli::Config;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::status::StatusHandle;
use crate::{lastgood, pipeline, source, writer};
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why configsnap could not run.
#[derive(Debug, Error)]
pub enum Error {
    /// The admin address is taken or not allowed.
    #[error("failed to listen on {addr}: {source}; choose another --listen address")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target dir cannot be used.
    #[error("failed to open the target dir: {0}")]
    Target(#[source] writer::Error),
    /// The state dir cannot be used.
    #[error("failed to open the state dir: {0}")]
    State(#[source] lastgood::Error),
    /// No usable Kubernetes client configuration.
    #[error("{0}; check --kubeconfig (or KUBECONFIG), or read mounted ConfigMap dirs with --from-dir")]
    Kube(#[from] source::kube::Error),
    /// `--once` could not produce a snapshot.
    #[error(transparent)]
    Once(#[from] pipeline::Error),
    /// `--once` got no first state from the source and found no snapshot to fall back on.
    #[error("{error}: {last_error}")]
    NoSource {
        /// What the pipeline said.
        error: pipeline::Error,
        /// The last source error, if any.
        last_error: String,
    },
}

// === impl Error ===

impl Error {
    /// The process exit code: [`crate::cli::EXIT_USAGE`] (64) for what a flag or the
    /// environment must fix, 1 for the rest.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Listen { .. } | Self::Kube(_) | Self::State(lastgood::Error::Unsafe { .. }) => {
                crate::cli::EXIT_USAGE
            }
            // A target dir we may not write to is the mount's or the securityContext's to fix.
            Self::Target(error) if matches!(error.label(), "permission" | "read_only") => {
                crate::cli::EXIT_USAGE
            }
            Self::Target(_) | Self::State(_) | Self::Once(_) | Self::NoSource { .. } => 1,
        }
    }
}

/// Runs configsnap until SIGTERM/SIGINT (or, with `--once`, one sync).
pub async fn run(config: Config) -> Result<(), Error> {
    let mut events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
    // Signals first: a SIGTERM during start-up drains like any other.
    let work = CancellationToken::new();
    tokio::spawn(lifecycle::shutdown_on_signal(events.clone(), work.clone()));
    let listener = parts::bind_admin(&config.admin).await?;
    let sources = parts::start_sources(&config, &mut events, &work).await?;
    let origin = parts::origin(&config, &sources.namespace);
    let target = parts::open_target(&config.output, origin.clone(), &events).await?;
    let durability = target.0.durability();
    let store = parts::open_last_good(&config.output, origin).await?;
    let tasks = lifecycle::Tasks::spawn(sources.tasks, sources.publisher);
    let source = (sources.inventory, sources.changes);
    let pipeline = parts::pipeline(&config, source, target, store, &events);
    if config.admin.once {
        let result = pipeline.once().await;
        tasks.stop(&work, config.admin.shutdown_grace).await;
        return result.map_err(|error| lifecycle::once_failed(error, &events));
    }
    tracing::info!(
        namespace = %sources.namespace,
        dir = %config.output.dir.display(),
        durability = ?durability,
        listen = %config.admin.listen,
        "configsnap started"
    );
    let admin = CancellationToken::new();
    let http_task = listener.map(|listener| {
        let wedged_after = lifecycle::longest_step(&config);
        let serve = crate::http::serve(listener, events.clone(), admin.clone(), wedged_after);
        tokio::spawn(serve.instrument(tracing::info_span!("http")))
    });
    let pipeline_task = tokio::spawn(pipeline.run(work.clone()).instrument(tracing::info_span!("pipeline")));
    lifecycle::drain(pipeline_task, tasks, &work, &events, config.admin.shutdown_grace).await;
    admin.cancel();
    if let Some(task) = http_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    tracing::info!("stopped");
    Ok(())
}
