//! The set of object names a watch saw change since the pipeline last rendered, so a
//! render looks up those objects only (see [`super::Delta`]).

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Names changed since the last take, or "everything" after a (re)list.
#[derive(Debug)]
pub(crate) struct Tracked {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    everything: bool,
    names: BTreeSet<String>,
}

/// What [`Tracked::take`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Render everything.
    Everything,
    /// Only these names.
    Names(Vec<String>),
}

impl Default for Tracked {
    fn default() -> Self {
        // Nothing was rendered yet: the first render takes everything.
        Self { state: Mutex::new(State { everything: true, names: BTreeSet::new() }) }
    }
}

impl Tracked {
    /// `name` changed (updated, created or deleted).
    pub(crate) fn changed(&self, name: &str) {
        let mut state = self.lock();
        if !state.everything {
            state.names.insert(name.to_owned());
        }
    }

    /// The whole set may have changed (a relist: deletions come without events).
    pub(crate) fn everything(&self) {
        let mut state = self.lock();
        state.everything = true;
        state.names.clear();
    }

    /// What changed since the last take, and forget it.
    pub(crate) fn take(&self) -> Taken {
        let mut state = self.lock();
        if std::mem::replace(&mut state.everything, false) {
            state.names.clear();
            return Taken::Everything;
        }
        Taken::Names(std::mem::take(&mut state.names).into_iter().collect())
    }

    /// What changed since the last take, remembered.
    pub(crate) fn peek(&self) -> Taken {
        let state = self.lock();
        if state.everything { Taken::Everything } else { Taken::Names(state.names.iter().cloned().collect()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_take_is_everything_then_names_then_everything_after_a_relist() {
        let tracked = Tracked::default();
        tracked.changed("a");
        assert_eq!(tracked.take(), Taken::Everything);
        tracked.changed("b");
        tracked.changed("a");
        tracked.changed("b");
        assert_eq!(tracked.peek(), Taken::Names(vec!["a".into(), "b".into()]));
        assert_eq!(tracked.take(), Taken::Names(vec!["a".into(), "b".into()]));
        assert_eq!(tracked.take(), Taken::Names(vec![]));
        tracked.everything();
        tracked.changed("c");
        assert_eq!(tracked.take(), Taken::Everything);
    }
}
