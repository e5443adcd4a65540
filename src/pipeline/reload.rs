//! After a swap: tell the app, verify it still works, and carry out the policy's verdict —
//! remember it as good, retry, or roll back to the last good snapshot.

use super::policy::{AfterReload, Verdict};
use super::{Error, Pipeline, blocking};
use crate::outcome::Outcome;
use crate::snapshot::Snapshot;

impl Pipeline {
    /// Reports that the app refused content `hash` (`detail` may quote command output,
    /// which Events leave out).
    fn app_refused(&self, hash: crate::snapshot::ContentHash, detail: &str) {
        let public = crate::outcome::without_output(detail);
        self.reporter.report(Outcome::Refused { hash, reason: "reload", detail, public: &public });
    }

    /// Tells the app about `snapshot` (on disk), verifies, and does what the policy says.
    pub(super) async fn tell_app(&mut self, snapshot: Snapshot) -> Result<(), Error> {
        let hash = snapshot.hash;
        let (verdict, cause) = self.reload_and_verify(&snapshot).await;
        match self.policy.reloaded(hash, &verdict) {
            AfterReload::Good => {
                self.mark_good(snapshot).await;
                Ok(())
            }
            AfterReload::Pending if verdict == Verdict::Superseded => Ok(()),
            AfterReload::Pending | AfterReload::Retry => {
                Err(Error::Reload { message: cause, retry: verdict == Verdict::Unreachable })
            }
            AfterReload::Blocked => {
                self.app_refused(
                    hash,
                    &format!("{cause}; there is no earlier good snapshot to roll back to"),
                );
                Err(Error::Reload { message: cause, retry: false })
            }
            AfterReload::RollBack(good) => {
                self.app_refused(hash, &cause);
                self.roll_back(&snapshot, good).await;
                Err(Error::Reload { message: cause, retry: false })
            }
        }
    }

    /// Runs the reload methods (cancelled when a newer content arrives) and, when they
    /// succeed, the verification.
    async fn reload_and_verify(&mut self, snapshot: &Snapshot) -> (Verdict, String) {
        if !self.reloader.settings().is_configured() {
            return (Verdict::Accepted, String::new());
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
                        if watching && self.content_changed() {
                            tracing::debug!(%hash, "a newer snapshot supersedes this reload");
                            return (Verdict::Superseded, String::new());
                        }
                        tracing::debug!(%hash, "a change during the reload left the content as it is");
                    }
                }
            }
        };
        if !outcome.succeeded() {
            let verdict = if outcome.refused() { Verdict::Refused } else { Verdict::Unreachable };
            return (verdict, outcome.causes());
        }
        if let Some(verify) = self.settings.verify.clone()
            && let Err(failure) = self.reloader.verify(&verify, hash).await
        {
            return (Verdict::Refused, failure.message);
        }
        (Verdict::Accepted, String::new())
    }

    /// Swaps the good snapshot back in and tells the app; the bad content stays blocked
    /// until it changes.
    async fn roll_back(&mut self, bad: &Snapshot, good: crate::snapshot::ContentHash) {
        let Some(snapshot) = self.last_good.clone().filter(|g| g.hash == good) else {
            tracing::error!(hash = %bad.hash, "the last good snapshot is not at hand; the refused one stays");
            return;
        };
        let writer = std::sync::Arc::clone(&self.writer);
        let snap = snapshot.clone();
        if let Err(error) = blocking(move || writer.swap(&snap)).await {
            self.reporter.report(Outcome::SwapFailed(&error));
            tracing::error!(%error, "rolling back failed; the refused snapshot stays");
            return;
        }
        self.policy.rolled_back(good, snapshot.object_count());
        self.reporter.report(Outcome::RolledBack { bad: bad.hash, good: &snapshot });
        self.reporter.report(Outcome::Current(&snapshot));
        self.current = Some(snapshot.clone());
        let (verdict, cause) = self.reload_and_verify(&snapshot).await;
        match self.policy.reloaded(good, &verdict) {
            AfterReload::Good => self.last_good = Some(snapshot),
            _ => {
                tracing::warn!(hash = %good, error = %cause, "reloading the rolled-back snapshot failed; retried at the next change")
            }
        }
    }
}
