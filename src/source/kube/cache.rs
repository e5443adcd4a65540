//! What one watch has seen, as the pipeline reads it: every object, with its bytes only
//! until the pipeline has rendered that version (then [`Input::Settled`]: its name and
//! version; the rendered object holds the bytes until they are on disk, then only the
//! disk does), and which names changed since the pipeline last looked. One lock covers
//! both, so a delta and the objects it names are always read together.

use super::Watched;
use crate::source::tracked::{Taken, Tracked};
use crate::source::{Delta, Input, ObjectId};
use kube::ResourceExt;
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The objects of one watch (a kube-runtime reflector store that lets go of bytes).
pub(super) struct Cache<K> {
    state: Mutex<State<K>>,
}

struct State<K> {
    objects: HashMap<String, Slot<K>>,
    /// A (re)list in progress: swapped in whole at its end, as kube's reflector does.
    listing: Option<HashMap<String, Slot<K>>>,
    tracked: Tracked,
    /// Number of events applied so far.
    seq: u64,
    /// Events before this one were in the objects the pipeline last took.
    taken: u64,
    /// Some object still holds its bytes.
    fresh: bool,
}

enum Slot<K> {
    /// Not rendered yet: the whole object, and the event that brought it.
    Fresh(Arc<K>, u64),
    /// Rendered: identity and version only.
    Settled(Input),
}

// === impl Cache ===

impl<K: Watched> Cache<K> {
    pub(super) fn new() -> Self {
        let state = State {
            objects: HashMap::new(),
            listing: None,
            tracked: Tracked::default(),
            seq: 0,
            taken: 0,
            fresh: false,
        };
        Self { state: Mutex::new(state) }
    }

    /// Applies one watch event and remembers the names it changed.
    pub(super) fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self.lock();
        state.seq += 1;
        let seq = state.seq;
        match event {
            watcher::Event::Init => {
                state.listing = Some(HashMap::new());
                state.tracked.everything();
            }
            watcher::Event::InitApply(object) => {
                let slot = Slot::Fresh(Arc::new(object.clone()), seq);
                state.listing.get_or_insert_default().insert(object.name_any(), slot);
                state.fresh = true;
            }
            watcher::Event::InitDone => {
                state.objects = state.listing.take().unwrap_or_default();
                state.tracked.everything();
            }
            watcher::Event::Apply(object) => {
                let name = object.name_any();
                state.objects.insert(name.clone(), Slot::Fresh(Arc::new(object.clone()), seq));
                state.fresh = true;
                state.tracked.changed(&name);
            }
            watcher::Event::Delete(object) => {
                let name = object.name_any();
                state.objects.remove(&name);
                state.tracked.changed(&name);
            }
        }
    }

    /// What changed since the last take (consumed), each named object as it is now;
    /// `selects` filters names.
    pub(super) fn take(&self, selects: impl Fn(&str) -> bool) -> Delta {
        let mut state = self.lock();
        state.taken = state.seq + 1;
        let taken = state.tracked.take();
        state.delta(taken, selects)
    }

    /// What [`Cache::take`] would return, without consuming it.
    pub(super) fn peek(&self, selects: impl Fn(&str) -> bool) -> Delta {
        let state = self.lock();
        let taken = state.tracked.peek();
        state.delta(taken, selects)
    }

    /// Every selected object.
    pub(super) fn current(&self, selects: impl Fn(&str) -> bool) -> Vec<Input> {
        self.lock().current(&selects)
    }

    /// Drops the bytes of every object version the last take delivered.
    pub(super) fn settle(&self) {
        let mut state = self.lock();
        if !state.fresh {
            return;
        }
        let taken = state.taken;
        let mut fresh = state.listing.is_some();
        for slot in state.objects.values_mut() {
            if let Slot::Fresh(object, seq) = slot {
                if *seq < taken {
                    *slot = Slot::Settled(K::input(Arc::clone(object)).settled());
                } else {
                    fresh = true;
                }
            }
        }
        state.fresh = fresh;
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl State ===

impl<K: Watched> State<K> {
    fn delta(&self, taken: Taken, selects: impl Fn(&str) -> bool) -> Delta {
        let names = match taken {
            Taken::Everything => return Delta::Full(self.current(&selects)),
            Taken::Names(names) => names,
        };
        let changed = names
            .into_iter()
            .map(|name| {
                let current = self.objects.get(&name).filter(|_| selects(&name)).map(Slot::input);
                (ObjectId { kind: K::KIND, name }, current)
            })
            .collect();
        Delta::Changed(changed)
    }

    fn current(&self, selects: &impl Fn(&str) -> bool) -> Vec<Input> {
        self.objects.iter().filter(|(name, _)| selects(name)).map(|(_, slot)| slot.input()).collect()
    }
}

impl<K: Watched> Slot<K> {
    fn input(&self) -> Input {
        match self {
            Self::Fresh(object, _) => K::input(Arc::clone(object)),
            Self::Settled(input) => input.clone(),
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
