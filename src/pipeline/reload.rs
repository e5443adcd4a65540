//! After a swap: tell the app, verify it still works, and roll back to the last good
//! snapshot when it does not.

use super::{Error, Pipeline, blocking};
use crate::snapshot::Snapshot;
use crate::status;
use std::time::Duration;
use tokio::time::Instant;

/// Pause between two verification requests.
const VERIFY_INTERVAL: Duration = Duration::from_millis(200);

impl Pipeline {
    /// Reloads the app for `snapshot` (superseded by a newer change), verifies, and either
    /// records it as good or rolls back.
    pub(super) async fn reload(&mut self, snapshot: Snapshot) -> Result<(), Error> {
        if !self.reloader.settings().is_configured() {
            self.mark_good(snapshot).await;
            return Ok(());
        }
        let hash = snapshot.hash;
        let mut seen = self.seen;
        let mut newer = self.changes.clone();
        let outcome = {
            let reload = self.reloader.reload(hash, self.writer.path().to_owned());
            let mut reload = std::pin::pin!(reload);
            let mut watching = true;
            loop {
                tokio::select! {
                    outcome = &mut reload => break outcome,
                    changed = newer.wait_for(|c| c.generation > seen), if watching => {
                        match changed {
                            Ok(change) => seen = change.generation,
                            Err(_) => watching = false,
                        }
                        // A relist or a metadata-only update changes nothing: keep going.
                        if watching && self.peek_hash() != hash {
                            tracing::debug!(%hash, "a newer snapshot supersedes this reload");
                            self.reload_pending = Some(hash);
                            return Ok(());
                        }
                        tracing::debug!(%hash, "a change during the reload left the content as it is");
                    }
                }
            }
        };
        if !outcome.succeeded() {
            // Retried at the next change, even one that leaves the content as it is.
            self.reload_pending = Some(hash);
            let causes: Vec<String> = outcome.attempts.into_iter().filter_map(|a| a.result.err()).collect();
            return Err(Error::Reload(causes.join("; ")));
        }
        self.reload_pending = None;
        if let Err(cause) = self.verify(&snapshot).await {
            self.roll_back(&snapshot, &cause).await;
            return Err(Error::Reload(cause));
        }
        self.mark_good(snapshot).await;
        Ok(())
    }

    /// `--verify-url` must answer 2xx in time, and a signalled process must still be alive.
    async fn verify(&self, snapshot: &Snapshot) -> Result<(), String> {
        let Some((url, timeout)) = self.settings.verify.clone() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let http = crate::reload::webhook::Client::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match http
                .call(hyper::Method::GET, &url, Some(snapshot.hash), left.max(Duration::from_millis(1)))
                .await
            {
                Ok(()) => break,
                Err(error) if Instant::now() + VERIFY_INTERVAL >= deadline => {
                    let url = crate::reload::redact_url(&url.to_string());
                    return Err(format!("{url} did not answer 2xx within {timeout:?}: {error}"));
                }
                Err(_) => tokio::time::sleep(VERIFY_INTERVAL).await,
            }
        }
        if let Some(target) = self.reloader.settings().target.clone()
            && !crate::reload::signal::alive(&target).await
        {
            return Err("the signalled process is gone after the reload".into());
        }
        Ok(())
    }

    /// Swaps the last good snapshot back in and reloads the app with it; the bad content
    /// stays blocked until it changes.
    async fn roll_back(&mut self, bad: &Snapshot, cause: &str) {
        self.events.refused(bad.hash, "verify", cause);
        self.blocked = Some(bad.hash);
        let Some(good) = self.last_good.clone().filter(|g| g.hash != bad.hash) else {
            tracing::error!(hash = %bad.hash, "verification failed and there is no earlier good snapshot to roll back to");
            return;
        };
        let writer = std::sync::Arc::clone(&self.writer);
        let snap = good.clone();
        if let Err(error) = blocking(move || writer.swap(&snap)).await {
            tracing::error!(%error, "rolling back failed; the unverified snapshot stays");
            return;
        }
        self.events.rolled_back(bad.hash, &good);
        self.events.on_disk(&good, status::Origin::Live);
        self.current = Some(good.clone());
        let outcome = self.reloader.reload(good.hash, self.writer.path().to_owned()).await;
        if !outcome.succeeded() {
            self.reload_pending = Some(good.hash);
        }
    }
}
