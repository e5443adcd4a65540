//! The fan-out: each [`Outcome`] a stage reports, handed to the handler that writes its
//! log line, moves its metrics, updates the status and publishes its Event.

use super::{Events, SOURCE};
use crate::outcome::{Health, Outcome, Reporter};
use crate::status::Origin;

// === impl Events ===

impl Events {
    /// A reporter whose outcomes this sink observes: what the stages get.
    #[must_use]
    pub(crate) fn reporter(&self) -> Reporter {
        let events = self.clone();
        Reporter::new(move |outcome| events.observe(outcome))
    }

    /// Tells every observer about `outcome`: its log line, metrics, status and Event.
    pub(crate) fn observe(&self, outcome: Outcome<'_>) {
        match outcome {
            Outcome::Concerning(objects) => self.concerning(objects),
            Outcome::Swapped { snapshot, changed, timings, since_change } => {
                self.swapped(snapshot, changed, timings, since_change);
            }
            Outcome::Applied { changed, hash } => self.applied(changed, hash),
            Outcome::Current(snapshot) => self.on_disk(snapshot, Origin::Live),
            Outcome::ExistingKept(snapshot) => self.existing_kept(snapshot),
            Outcome::Restored { snapshot, waited } => self.restored(snapshot, waited),
            Outcome::Rejected(rejection) => self.rejected(rejection),
            Outcome::Refused { hash, reason, detail, public } => self.refused(hash, reason, detail, public),
            Outcome::Held { hold, hash, had } => self.held(hold, hash, had),
            Outcome::CaughtUp => self.caught_up(),
            Outcome::RolledBack { bad, good } => self.rolled_back(bad, good),
            Outcome::SwapFailed(error) => self.swap_failed(error),
            Outcome::WithoutRoom { object, error, first } => self.object_without_room(object, error, first),
            Outcome::TargetUnwritable(error) => self.target_unwritable(error),
            Outcome::TargetWritable => self.target_writable(),
            Outcome::LinksRepaired(repairs) => self.visible_links_repaired(repairs),
            Outcome::ReloadAttempted { method, hash, took, result } => {
                self.reload_attempted(method, hash, took, result);
            }
            Outcome::Busy(busy) => self.busy(busy),
            Outcome::Source(health) => self.source(health),
            Outcome::TaskFailed { task, error } => self.task_failed(task, error),
        }
    }

    /// A source loop's health.
    fn source(&self, health: Health<'_>) {
        match health {
            Health::Synced => self.mark_synced(None),
            Health::Failed(error) => self.watch_failed(SOURCE, "other", error),
            Health::WatchHealthy(watch) => self.mark_synced(Some(watch)),
            Health::WatchFailed { watch, reason, cause } => self.watch_failed(watch, reason, cause),
            Health::Heartbeat(task) => self.heartbeat(task),
            Health::TaskFailed { task, error } => self.task_failed(task, error),
        }
    }
}
