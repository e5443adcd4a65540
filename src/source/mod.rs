//! Sources of configuration: what the pipeline reads, whatever it comes from.
//!
//! A source task (Kubernetes API or mounted directories) keeps an inventory of objects
//! and bumps a [`Change`] through its [`Notifier`] when it changed; the pipeline reads the
//! inventory only when it renders, so a burst of events costs one render.

pub(crate) mod dir;
mod health;
pub(crate) mod kube;
mod object;
pub(crate) mod tracked;

pub use health::{Health, HealthReporter};
pub use object::SourceKind;
pub(crate) use object::{Input, ObjectId, SourceObject};

use std::sync::Arc;
use tokio::sync::watch;

/// How often a source loop proves it is alive (`/healthz`), even with nothing to do.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Annotation that sets the file mode of every file of one object, in octal (`"0600"`).
pub(crate) const FILE_MODE_ANNOTATION: &str = "configsnap.io/file-mode";

/// Annotation that puts every file of one object under a chosen top-level directory
/// (`<dir>/<target>/<key>`) in either layout; objects naming the same one share it.
pub(crate) const TARGET_DIR_ANNOTATION: &str = "configsnap.io/target-dir";

/// What the sources tell the pipeline: "something changed; render when ready".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Change {
    /// Increases with every change, so a `watch` receiver sees each new state.
    pub generation: u64,
    /// Sources that have not yet delivered a complete initial state.
    pub waiting: usize,
}

impl Change {
    /// True once every source has delivered a complete initial state.
    #[must_use]
    pub(crate) fn ready(&self) -> bool {
        self.waiting == 0
    }
}

/// The sending side shared by every source of one pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    tx: Arc<watch::Sender<Change>>,
}

// === impl Notifier ===

impl Notifier {
    /// A notifier expecting `sources` initial states, and the pipeline's receiver.
    #[must_use]
    pub(crate) fn new(sources: usize) -> (Self, watch::Receiver<Change>) {
        let (tx, rx) = watch::channel(Change { generation: 0, waiting: sources });
        (Self { tx: Arc::new(tx) }, rx)
    }

    /// Something in a source's inventory changed.
    pub(crate) fn changed(&self) {
        self.tx.send_modify(|c| c.generation += 1);
    }

    /// A source delivered its first complete state (call once per source).
    pub(crate) fn source_ready(&self) {
        self.tx.send_modify(|c| {
            c.waiting = c.waiting.saturating_sub(1);
            c.generation += 1;
        });
    }
}

/// What changed in an inventory since the pipeline last looked.
#[derive(Debug, Clone)]
pub(crate) enum Delta {
    /// Every object currently selected: render from scratch (first sync, relist, or a
    /// source that does not track single changes).
    Full(Vec<Input>),
    /// Only these objects changed: each with its current version, `None` when it is gone
    /// (deleted or no longer selected).
    Changed(Vec<(ObjectId, Option<Input>)>),
}

/// Read access to the current objects of a source.
pub(crate) trait Inventory: Send + Sync + 'static {
    /// Every object currently selected, in any order.
    fn current(&self) -> Vec<Input>;

    /// What changed since the last call, consumed: an update costs the change, not the
    /// namespace. The default renders everything.
    fn take_delta(&self) -> Delta {
        Delta::Full(self.current())
    }

    /// What [`Inventory::take_delta`] would return, without consuming it.
    fn peek_delta(&self) -> Delta {
        Delta::Full(self.current())
    }

    /// Everything the last [`Inventory::take_delta`] delivered has been rendered: the
    /// inventory may keep those versions as [`Input::Settled`] from now on, without their
    /// bytes. Call it right after rendering a taken delta.
    fn settle(&self) {}
}

/// Shared handle to an inventory.
pub(crate) type SharedInventory = Arc<dyn Inventory>;

/// Several inventories read as one (ConfigMaps and Secrets).
pub(crate) struct Combined(pub Vec<SharedInventory>);

impl Inventory for Combined {
    fn current(&self) -> Vec<Input> {
        self.0.iter().flat_map(|inv| inv.current()).collect()
    }

    fn take_delta(&self) -> Delta {
        merge(self.0.iter().map(|inv| inv.take_delta()).collect(), || self.current())
    }

    fn peek_delta(&self) -> Delta {
        merge(self.0.iter().map(|inv| inv.peek_delta()).collect(), || self.current())
    }

    fn settle(&self) {
        self.0.iter().for_each(|inv| inv.settle());
    }
}

/// One delta for several inventories: full when any is.
fn merge(deltas: Vec<Delta>, current: impl FnOnce() -> Vec<Input>) -> Delta {
    let mut changed = Vec::new();
    for delta in deltas {
        match delta {
            Delta::Full(_) => return Delta::Full(current()),
            Delta::Changed(more) => changed.extend(more),
        }
    }
    Delta::Changed(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_every_source_reported() {
        let (notifier, rx) = Notifier::new(2);
        assert!(!rx.borrow().ready());
        notifier.source_ready();
        assert!(!rx.borrow().ready());
        notifier.changed();
        notifier.source_ready();
        let change = *rx.borrow();
        assert!(change.ready());
        assert_eq!(change.generation, 3);
    }
}
