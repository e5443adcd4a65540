//! The process's life around the pipeline: the source and Event tasks, signals, the drain
//! on shutdown, and what `--once` says when it fails.

use super::Error;
use super::parts::Task;
use crate::cli::Config;
use crate::events::Events;
use crate::outcome::Outcome;
use crate::pipeline;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The source tasks and the Event publisher, each in its span.
pub(super) struct Tasks(TaskTracker);

// === impl Tasks ===

impl Tasks {
    /// Spawns every task.
    pub(super) fn spawn(sources: Vec<Task>, publisher: Option<Task>) -> Self {
        let tracker = TaskTracker::new();
        for (name, task) in sources {
            tracker.spawn(task.instrument(tracing::info_span!("source", kind = name)));
        }
        if let Some((name, task)) = publisher {
            tracker.spawn(task.instrument(tracing::info_span!("events", task = name)));
        }
        Self(tracker)
    }

    /// Cancels `work` and waits for the tasks, at most `grace`.
    pub(super) async fn stop(self, work: &CancellationToken, grace: Duration) {
        work.cancel();
        self.0.close();
        let _ = tokio::time::timeout(grace, self.0.wait()).await;
    }
}

/// Waits for the end: the pipeline ends only when shutdown began (it drains) or when it
/// failed (then the process stays up, unready, until a signal). Then every task gets
/// `grace` to finish.
pub(super) async fn drain(
    mut pipeline: JoinHandle<()>,
    tasks: Tasks,
    work: &CancellationToken,
    events: &Events,
    grace: Duration,
) {
    let pipeline_ended = tokio::select! {
        result = &mut pipeline => {
            if !work.is_cancelled() {
                let cause = result.err().map_or_else(|| "returned".to_owned(), |e| e.to_string());
                events.observe(Outcome::TaskFailed { task: "pipeline", error: &cause });
                work.cancelled().await;
            }
            true
        }
        () = work.cancelled() => false,
    };
    // Unready already; the admin server keeps answering until the work is done.
    tasks.0.close();
    let work_done = async {
        // A finished JoinHandle must not be polled again.
        if !pipeline_ended {
            let _ = pipeline.await;
        }
        tasks.0.wait().await;
    };
    if tokio::time::timeout(grace, work_done).await.is_err() {
        tracing::warn!(grace_ms = grace.as_millis(), "tasks did not finish within the grace period");
    }
}

/// `--once` failed: the error, with the last source error when the source never answered.
pub(super) fn once_failed(error: pipeline::Error, events: &Events) -> Error {
    if matches!(error, pipeline::Error::NoSource { .. }) {
        let last_error = events.status().get().last_error.clone().unwrap_or_else(|| "no answer".into());
        return Error::NoSource { error, last_error };
    }
    Error::Once(error)
}

/// First SIGTERM/SIGINT: unready and drain. Second: exit at once.
pub(super) async fn shutdown_on_signal(events: Events, work: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; SIGTERM ends the process without draining");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutdown signal received: unready, finishing the step in progress");
    events.status().update(|s| s.shutting_down = true);
    work.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second shutdown signal: exiting now");
    std::process::exit(130);
}

/// The longest a pipeline step may legitimately take (a validation command, a reload with
/// every webhook retry, a verification), with room to spare: `/healthz` reports a wedged
/// pipeline only beyond it.
pub(super) fn longest_step(config: &Config) -> Duration {
    let reload = &config.reload;
    let retries = reload.webhook_retries.saturating_add(1);
    // Each webhook attempt: its timeout plus at most the 10 s backoff cap.
    let webhooks = (reload.webhook_timeout + Duration::from_secs(10)).saturating_mul(retries);
    let verify = config.safety.verify.as_ref().map_or(Duration::from_secs(10), |v| v.timeout);
    let step = config.safety.validate_timeout + reload.exec_timeout.max(webhooks) + verify;
    (step * 2).max(Duration::from_secs(300))
}
