//! Replaced generations kept readable for a grace period (`--gc-grace`): a reader that
//! resolved `..data` just before a swap and then opens files one by one (the documented
//! way to see exactly one generation) must not find them gone. kubelet removes the old
//! generation at once; here its root and the nodes only it used stay until the grace
//! runs out, then go in the order they were replaced.
//!
//! A node leaves only when neither the current snapshot nor any generation still in its
//! grace uses it (a rollback can bring back a node an earlier generation dropped). A
//! restart collects every earlier generation at once (the sweep at start); so does a
//! volume that runs out of room, since a write that cannot land is worse than a reader
//! that lost a race.

use super::garbage::Garbage;
use super::{Node, State, Writer, fsops};
use crate::snapshot::Snapshot;
use tokio::time::Instant;

/// A generation swapped out and still readable.
#[derive(Debug)]
pub(super) struct Retired {
    /// Its root dir (removed when due).
    pub(super) root: Option<String>,
    /// Its snapshot (whose nodes stay while it is retained).
    pub(super) snapshot: Option<Snapshot>,
    /// Nodes it used that its successor did not.
    pub(super) garbage: Vec<Garbage>,
    /// When it may go.
    pub(super) due: Instant,
}

impl Writer {
    /// Removes the retired generations whose grace ran out by `now` (all of them with
    /// `everything`), and the nodes no retained generation uses any more.
    pub(super) fn collect_retired(&self, state: &mut State, now: Instant, everything: bool) {
        while state.retired.front().is_some_and(|r| everything || r.due <= now) {
            let Some(retired) = state.retired.pop_front() else { break };
            if let Some(root) = &retired.root
                && let Err(err) = fsops::remove_tree(&self.dir, root)
            {
                tracing::warn!(error = %err, root, "removing a replaced snapshot root failed; the next sweep retries");
                state.dirty = true;
            }
            let current = state.current.as_ref().map(|(s, _)| s);
            let kept = |g: &&Garbage| {
                current.is_some_and(|c| g.in_use(c))
                    || state.retired.iter().filter_map(|r| r.snapshot.as_ref()).any(|s| g.in_use(s))
            };
            let unused: Vec<Node> = retired.garbage.iter().filter(|g| !kept(g)).map(|g| g.node).collect();
            self.remove_nodes(state, &unused);
        }
    }

    /// True when `name` is the root of a generation still in its grace.
    pub(super) fn is_retained_root(state: &State, name: &str) -> bool {
        state.retired.iter().any(|r| r.root.as_deref() == Some(name))
    }
}
