//! The swap step: validate, stage, commit and persist a new snapshot, swap in the rest of
//! a change when one object does not fit, and keep the last-good copy.

use super::policy::AfterSwap;
use super::{Error, Pipeline, blocking};
use crate::outcome::Outcome;
use crate::snapshot::Snapshot;
use crate::writer;
use std::sync::Arc;
use tokio::time::Instant;

/// Bytes released from memory at once above which the heap is trimmed.
const TRIM_AFTER: u64 = 1 << 20;

impl Pipeline {
    /// Validates, swaps in and tells the app about a new snapshot.
    pub(super) async fn swap(
        &mut self,
        snapshot: Snapshot,
        first_change: Option<Instant>,
    ) -> Result<(), Error> {
        let changed = snapshot.changed_since(self.current.as_ref());
        self.reporter.report(Outcome::Concerning(&changed));
        let (validator, layout, objects) = (self.validator.clone(), snapshot.layout(), changed.clone());
        if let Err(error) = blocking(move || validator.check_syntax(&objects, layout)).await {
            return self.refused_before_swap(&snapshot, error).await;
        }
        let mut names: Vec<&str> = changed.iter().map(|o| o.id.name.as_str()).collect();
        let removed = self.current.as_ref().map(|c| snapshot.removed_since(c)).unwrap_or_default();
        names.extend(removed.iter().map(String::as_str));
        let names = names.join(",");
        let committed = match self.swap_in(&snapshot, &names, first_change).await {
            Ok(committed) => committed,
            Err(Error::Refused(error)) => return self.refused_before_swap(&snapshot, error).await,
            Err(Error::Write(error)) if error.object_without_room().is_some() => {
                return self.swap_without_room(snapshot, error, first_change).await;
            }
            Err(other) => return Err(other),
        };
        self.reporter.report(Outcome::Applied { changed: &changed, hash: snapshot.hash });
        let swapped = snapshot.clone();
        let result = match self.policy.swapped(snapshot.hash, snapshot.object_count()) {
            AfterSwap::Reload => self.tell_app(snapshot).await,
            AfterSwap::Good => {
                if self.last_good.is_none() {
                    tracing::info!("first snapshot: the app reads it at start, so no reload");
                }
                self.mark_good(snapshot).await;
                Ok(())
            }
        };
        // The rollback target's files that only the replaced generation has are removed
        // below: while the app has not accepted this snapshot, keep their bytes at hand.
        if let Some(good) = self.last_good.as_ref().filter(|good| good.hash != swapped.hash) {
            for object in good.changed_since(Some(&swapped)) {
                if let Err(error) = object.hold() {
                    tracing::warn!(object = %object.id, %error, "could not keep the last good version of an object at hand for a rollback");
                }
            }
        }
        // Durability of the switch comes after the reload: it is not on the latency path.
        let writer = Arc::clone(&self.writer);
        blocking(move || writer.persist(committed)).await?;
        result
    }

    /// One object's new files did not fit: applies every other change with that object as
    /// it is on disk, tells about it, and fails so the whole content is retried.
    async fn swap_without_room(
        &mut self,
        snapshot: Snapshot,
        error: writer::Error,
        first_change: Option<Instant>,
    ) -> Result<(), Error> {
        let Some(id) = error.object_without_room().cloned() else { return Err(error.into()) };
        let on_disk = self.current.clone().unwrap_or_else(|| Snapshot::empty(snapshot.layout()));
        let rest = match snapshot.with_object_as_in(&id, &on_disk) {
            Some(rest) if rest.hash != on_disk.hash => Box::pin(self.act(rest, first_change)).await,
            _ => Ok(()),
        };
        // Told even when the rest failed too (another object without room, say): else the
        // object blamed first would never be named, at any retry.
        if let Some(object) = snapshot.objects().find(|o| o.id == id) {
            let first = self.without_room.insert(object.digest);
            self.reporter.report(Outcome::WithoutRoom { object, error: &error, first });
        }
        rest?;
        Err(Error::NoRoom { object: id, error })
    }

    async fn refused_before_swap(
        &mut self,
        snapshot: &Snapshot,
        error: crate::validate::Error,
    ) -> Result<(), Error> {
        self.policy.refused_before_swap(snapshot.hash);
        let (detail, public) = (error.to_string(), error.summary());
        let reason = error.label();
        self.reporter.report(Outcome::Refused {
            hash: snapshot.hash,
            reason,
            detail: &detail,
            public: &public,
        });
        self.deliver_pending_reload().await?;
        Err(error.into())
    }

    /// Stages the snapshot, runs the validation command on it, and commits it (not yet
    /// durable: the caller persists the commit).
    async fn swap_in(
        &mut self,
        snapshot: &Snapshot,
        changed: &str,
        first_change: Option<Instant>,
    ) -> Result<writer::Committed, Error> {
        let writer = Arc::clone(&self.writer);
        let snap = snapshot.clone();
        let staged = blocking(move || writer.stage(&snap)).await;
        let mut staged = staged.inspect_err(|error| self.reporter.report(Outcome::SwapFailed(error)))?;
        if self.validator.has_command() {
            let writer = Arc::clone(&self.writer);
            let (view, back) = blocking(move || (writer.staged_view(&mut staged), staged)).await;
            staged = back;
            let checked = match view {
                Ok(view) => self.validator.check_command(&view, snapshot.hash).await,
                Err(error) => Err(crate::validate::Error::Command(format!(
                    "could not lay out the staged snapshot: {error}"
                ))),
            };
            if let Err(error) = checked {
                let writer = Arc::clone(&self.writer);
                if let Err(discard) = blocking(move || writer.discard(staged)).await {
                    tracing::warn!(error = %discard, "removing the refused staged snapshot failed; it is cleaned at the next start");
                }
                return Err(error.into());
            }
        }
        let writer = Arc::clone(&self.writer);
        let committed = blocking(move || writer.commit(staged)).await;
        self.report_repairs();
        let committed = committed.inspect_err(|error| self.reporter.report(Outcome::SwapFailed(error)))?;
        let (timings, since_change) = (committed.timings, first_change.map(|t| t.elapsed()));
        self.reporter.report(Outcome::Swapped { snapshot, changed, timings, since_change });
        self.target_refuses_writes = false;
        self.current = Some(snapshot.clone());
        Ok(committed)
    }

    /// Remembers `snapshot` as the rollback target and persists it in the state dir.
    /// When it is the snapshot on disk, the bytes of the objects it added are dropped
    /// from memory: they are in the target dir, read back from there when needed.
    pub(super) async fn mark_good(&mut self, snapshot: Snapshot) {
        if let Some(store) = self.store.clone() {
            let snap = snapshot.clone();
            if let Err(error) = blocking(move || store.save(&snap)).await {
                tracing::warn!(%error, "saving the last-good copy failed; the previous copy stays");
            }
        }
        if self.current.as_ref().is_some_and(|current| current.hash == snapshot.hash) {
            let objects = self.writer.objects_path();
            let mut released = 0;
            for object in snapshot.changed_since(self.last_good.as_ref()) {
                released += object.bytes();
                object.release(objects);
            }
            // A first snapshot frees megabytes: give them back (not for every update).
            self.trim_due |= released >= TRIM_AFTER;
        }
        self.last_good = Some(snapshot);
    }
}
