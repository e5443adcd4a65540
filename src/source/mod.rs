//! Sources of configuration: what the pipeline reads, whatever it comes from.
//!
//! A source task (Kubernetes API or mounted directories) keeps an inventory of objects
//! and bumps a [`Change`] on a `watch` channel when it changed; the pipeline reads the
//! inventory only when it renders, so a burst of events costs one render.

pub mod dir;
pub mod kube;
mod object;

pub use object::{Input, ObjectId, SourceKind, SourceObject};

use std::sync::Arc;
use tokio::time::Instant;

/// Annotation that sets the file mode of every file of one object, in octal (`"0600"`).
pub const FILE_MODE_ANNOTATION: &str = "configsnap.io/file-mode";

/// What the source tells the pipeline: "something changed at `at`; render when ready".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Increases with every change, so a `watch` receiver sees each new state.
    pub generation: u64,
    /// When the first change not yet rendered was observed (for latency metrics).
    pub at: Instant,
    /// True once the source has delivered a complete initial state.
    pub ready: bool,
}

impl Change {
    /// The value before anything was observed.
    #[must_use]
    pub fn initial() -> Self {
        Self {
            generation: 0,
            at: Instant::now(),
            ready: false,
        }
    }
}

/// Read access to the current objects of a source.
pub trait Inventory: Send + Sync + 'static {
    /// Every object currently selected, in any order.
    fn current(&self) -> Vec<Input>;
}

/// Shared handle to an inventory.
pub type SharedInventory = Arc<dyn Inventory>;

/// Several inventories read as one (ConfigMaps and Secrets).
pub struct Combined(pub Vec<SharedInventory>);

impl Inventory for Combined {
    fn current(&self) -> Vec<Input> {
        self.0.iter().flat_map(|inv| inv.current()).collect()
    }
}
