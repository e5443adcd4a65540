//! Telling about failed writes: the whole snapshot, or one object that does not fit.

use super::Events;
use crate::keypath::Escaped;
use crate::kube_events::notes;
use crate::metrics::{ReasonLabel, RepairLabels};
use crate::outcome::{Found, Object, Repair, WriteError};

impl Events {
    /// Writing a snapshot failed; the previous one stays and the write is retried. (When
    /// one object did not fit, [`Events::object_without_room`] says so once the rest of
    /// the change is applied.)
    pub(super) fn swap_failed(&self, error: &WriteError) {
        self.metrics.swap_failures.get_or_create(&ReasonLabel { reason: error.label() }).inc();
        if error.object_without_room().is_none() {
            self.behind(format!("writing the snapshot failed: {error}"));
        }
    }

    /// The target dir refuses writes (read-only mount, immutable, not ours): the app keeps
    /// the snapshot on disk and no update lands until it takes writes again. Degraded on
    /// `/readyz`, `configsnap_target_writable` 0, one warning per episode.
    pub(super) fn target_unwritable(&self, error: &WriteError) {
        let reason = format!(
            "the target dir refuses writes ({error}); the app keeps the snapshot on disk, and no update can land \
             until the volume is writable (check the mount's readOnly and the securityContext)"
        );
        if self.status.get().target_fault.is_none() {
            tracing::warn!(error = %Escaped(&error.to_string()), "the target dir refuses writes; serving the snapshot on disk until it is writable");
        }
        self.metrics.target_writable.set(0);
        let now = chrono::Utc::now();
        self.status.update(|s| {
            let since = s.target_fault.as_ref().map_or(now, |(_, since)| *since);
            s.target_fault = Some((reason.clone(), since));
            s.last_error = Some(reason.clone());
        });
        self.sync_degraded_gauge();
    }

    /// The target dir takes writes (again).
    pub(super) fn target_writable(&self) {
        self.metrics.target_writable.set(1);
        if self.status.get().target_fault.is_none() {
            return;
        }
        tracing::info!("the target dir takes writes again");
        self.status.update(|s| s.target_fault = None);
        self.sync_degraded_gauge();
    }

    /// The new version of `object` does not fit on the volume: every other change goes
    /// ahead without it. `first` is true the first time for this version (the log line
    /// and the Kubernetes Event are once per version; the status says it until it fits).
    pub(super) fn object_without_room(&self, object: &Object, error: &WriteError, first: bool) {
        let message = format!(
            "{} {}: its new files do not fit on the volume ({error}); its previous files stay, every other \
             change is applied, retried until it fits",
            object.id.kind,
            Escaped(&object.id.name)
        );
        if first {
            tracing::warn!(
                namespace = %Escaped(&object.source.namespace),
                name = %Escaped(&object.id.name),
                kind = %object.id.kind,
                resource_version = %Escaped(&object.source.resource_version),
                error = %Escaped(&error.to_string()),
                "object does not fit on the volume; its previous files stay, every other change is applied"
            );
            self.publish(notes::without_room(object, &error.to_string()));
        }
        self.behind(message);
    }
}

impl Events {
    /// Visible links that were wrong (someone replaced, removed or shadowed them) and are
    /// right again: one warning and one count each, naming the entry.
    pub(super) fn visible_links_repaired(&self, repairs: &[Repair]) {
        for repair in repairs {
            let (found, aside) = match &repair.found {
                Found::OtherLink(target) => (format!("a link to '{}'", Escaped(target)), None),
                Found::Missing => ("nothing".to_owned(), None),
                Found::Directory(aside) => ("a directory".to_owned(), Some(aside.as_str())),
                Found::File(aside) => ("a file".to_owned(), Some(aside.as_str())),
            };
            tracing::warn!(
                entry = %Escaped(&repair.entry),
                found = %found,
                moved_aside_to = aside,
                "a visible link in the target dir was not configsnap's; replaced it with the link to the current snapshot"
            );
            let labels = RepairLabels { entry: repair.entry.clone(), found: repair.found.label() };
            self.metrics.visible_link_repairs.get_or_create(&labels).inc();
        }
    }
}
