//! The Kubernetes-Event side of [`Events`]: which objects a snapshot-level happening
//! regards, and handing notices to the background [`Publisher`].

use super::Events;
use crate::kube_events::{Notice, Publisher, notes};
use crate::outcome::{ContentHash, Object};
use k8s_openapi::api::core::v1::ObjectReference;
use std::sync::Arc;

/// What the Event side of [`Events`] holds.
#[derive(Debug, Default)]
pub(super) struct Announce {
    publisher: Option<Publisher>,
    /// The objects the snapshot in progress changed (or, when held, lost).
    regarding: std::sync::Mutex<Vec<ObjectReference>>,
}

// === impl Events ===

impl Events {
    /// From now on, every happening is also published as a Kubernetes Event.
    #[must_use]
    pub(crate) fn with_publisher(mut self, publisher: Publisher) -> Self {
        self.announce = Arc::new(Announce { publisher: Some(publisher), regarding: Vec::new().into() });
        self
    }

    /// The shared metrics (for the Event publisher).
    #[must_use]
    pub(crate) fn metrics_arc(&self) -> Arc<crate::metrics::Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The snapshot being processed concerns these objects (at most
    /// [`notes::MAX_REGARDED`] are kept): its Events regard them.
    pub(super) fn concerning(&self, objects: &[Arc<Object>]) {
        if self.announce.publisher.is_some() {
            *self.lock_regarding() = notes::regarded(objects.iter().map(AsRef::as_ref));
        }
    }

    /// The objects in `changed` are live with new content in snapshot `hash`.
    pub(super) fn applied(&self, changed: &[Arc<Object>], hash: ContentHash) {
        if self.announce.publisher.is_some() {
            let objects: Vec<&Object> = changed.iter().map(AsRef::as_ref).collect();
            self.publish(notes::applied(&objects, hash));
        }
    }

    /// The objects snapshot-level Events regard: those of the snapshot in progress, else
    /// the Pod.
    pub(super) fn regarding(&self) -> Vec<ObjectReference> {
        let regarding = self.lock_regarding().clone();
        if !regarding.is_empty() {
            return regarding;
        }
        let pod = self.announce.publisher.as_ref().and_then(Publisher::pod);
        pod.map(notes::pod_reference).into_iter().collect()
    }

    /// True when Events must not quote file content (Secrets are watched).
    pub(super) fn redact(&self) -> bool {
        self.announce.publisher.as_ref().is_none_or(Publisher::redact)
    }

    /// True when Events are published.
    pub(super) fn announcing(&self) -> bool {
        self.announce.publisher.is_some()
    }

    /// Queues `notices` (never waits).
    pub(super) fn publish(&self, notices: impl IntoIterator<Item = Notice>) {
        if let Some(publisher) = &self.announce.publisher {
            for notice in notices {
                publisher.send(notice);
            }
        }
    }

    fn lock_regarding(&self) -> std::sync::MutexGuard<'_, Vec<ObjectReference>> {
        self.announce.regarding.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
