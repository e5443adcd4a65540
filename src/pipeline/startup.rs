//! Start-up: keep a valid snapshot already in the target dir (a container restart), or
//! restore the last-good copy when the source has nothing within `--startup-timeout`.

use super::{Pipeline, blocking};
use crate::outcome::Outcome;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How start-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Started {
    /// The source delivered a complete state.
    Ready,
    /// The source is not ready (only when not waiting indefinitely).
    NotReady,
    /// Shutdown began first.
    Cancelled,
}

impl Pipeline {
    /// Looks at the target dir, waits for the source up to the start-up timeout, restores
    /// the last-good copy if it is late and nothing is on disk, then (if `wait_forever`)
    /// keeps waiting for the source.
    pub(super) async fn start(&mut self, cancel: &CancellationToken, wait_forever: bool) -> Started {
        self.keep_existing().await;
        let mut changes = self.changes.clone();
        let started = Instant::now();
        tokio::select! {
            () = cancel.cancelled() => return Started::Cancelled,
            ready = tokio::time::timeout(self.settings.startup_timeout, changes.wait_for(|c| c.ready())) => {
                if matches!(ready, Ok(Ok(_))) {
                    return Started::Ready;
                }
            }
        }
        if self.current.is_none() {
            self.restore_last_good(started).await;
        }
        if !wait_forever {
            return Started::NotReady;
        }
        tracing::info!("waiting for the source; the files on disk stay as they are");
        tokio::select! {
            () = cancel.cancelled() => Started::Cancelled,
            ready = changes.wait_for(|c| c.ready()) => if ready.is_ok() { Started::Ready } else { Started::Cancelled },
        }
    }

    async fn keep_existing(&mut self) {
        let writer = std::sync::Arc::clone(&self.writer);
        // Also sweeps what an interrupted swap left: orphan roots and nodes, stale links.
        let loaded = blocking(move || writer.load_current()).await;
        self.report_repairs();
        match loaded {
            Ok(Some((snapshot, _))) => {
                self.renderer.seed(&snapshot);
                self.reporter.report(Outcome::ExistingKept(&snapshot));
                self.adopt(snapshot);
                // What is on disk may have failed verification before a restart: roll
                // back to the copy known to be good, when there is one.
                if let Some(store) = self.store.clone()
                    && let Ok(Some(good)) = blocking(move || store.load()).await
                {
                    self.policy.known_good(good.hash);
                    self.last_good = Some(good);
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "the snapshot in the target dir is unusable; the next swap replaces it")
            }
        }
    }

    async fn restore_last_good(&mut self, started: Instant) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let loaded = match blocking(move || store.load()).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => {
                tracing::warn!("the source is late and there is no last-good copy; waiting for the source");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "reading the last-good copy failed; waiting for the source");
                return;
            }
        };
        let writer = std::sync::Arc::clone(&self.writer);
        let snapshot = loaded;
        let snap = snapshot.clone();
        let swapped = blocking(move || writer.swap(&snap)).await;
        self.report_repairs();
        match swapped {
            Ok(_) => {
                self.renderer.seed(&snapshot);
                self.reporter.report(Outcome::Restored { snapshot: &snapshot, waited: started.elapsed() });
                self.adopt(snapshot);
            }
            Err(error) => tracing::error!(%error, "restoring the last-good copy into the target dir failed"),
        }
    }

    /// A snapshot on disk that the app may already have read.
    fn adopt(&mut self, snapshot: crate::snapshot::Snapshot) {
        self.policy.adopt(snapshot.hash, snapshot.object_count());
        self.current = Some(snapshot.clone());
        self.last_good = Some(snapshot);
    }
}
