//! TEMP STUB (replaced by the dirsrc branch).
#![allow(missing_docs, clippy::all)]
use super::{Notifier, SharedInventory, Input, Inventory};
use crate::events::Events;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
struct Empty;
impl Inventory for Empty { fn current(&self) -> Vec<Input> { vec![] } }
pub fn watch(_d: Vec<PathBuf>, n: Notifier, _e: Events, c: CancellationToken) -> (SharedInventory, impl Future<Output = ()> + Send + 'static) {
    n.source_ready();
    (std::sync::Arc::new(Empty), async move { c.cancelled().await })
}
