//! Telling about failed writes: the whole snapshot, or one object that does not fit.

use super::Events;
use crate::keypath::Escaped;
use crate::kube_events::notes;
use crate::metrics::ReasonLabel;
use crate::snapshot::Object;

impl Events {
    /// Writing a snapshot failed; the previous one stays and the write is retried. (When
    /// one object did not fit, [`Events::object_without_room`] says so once the rest of
    /// the change is applied.)
    pub fn swap_failed(&self, error: &crate::writer::Error) {
        self.metrics.swap_failures.get_or_create(&ReasonLabel { reason: error.label() }).inc();
        if error.object_without_room().is_none() {
            self.behind(format!("writing the snapshot failed: {error}"));
        }
    }

    /// The new version of `object` does not fit on the volume: every other change goes
    /// ahead without it. `first` is true the first time for this version (the log line
    /// and the Kubernetes Event are once per version; the status says it until it fits).
    pub fn object_without_room(&self, object: &Object, error: &crate::writer::Error, first: bool) {
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
