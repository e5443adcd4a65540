//! Rendering only what changed: each changed object is evaluated, checked for
//! collisions against the current tree's owners, and applied — no pass over the
//! unchanged objects. Objects that lost a collision are tried again each time, since
//! the owner they lost to may have gone.

use super::{Reason, Rejection, Rendered, Renderer};
use crate::snapshot::Object;
use crate::snapshot::claims;
use crate::source::{Delta, Input, ObjectId};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

impl Renderer {
    /// Renders the objects that changed (`None`: gone).
    pub(super) fn render_changes(&mut self, changes: Vec<(ObjectId, Option<Input>)>) -> Rendered {
        let mut rejections = Vec::new();
        let mut batch: BTreeMap<ObjectId, Option<Arc<Object>>> = BTreeMap::new();
        for (id, input) in changes {
            let candidate = match input {
                Some(input) => self.evaluate(&id, &input, &mut rejections),
                None => {
                    self.cache.remove(&id);
                    self.reported_collisions.retain(|(loser, _)| *loser != id);
                    self.losers.remove(&id);
                    None
                }
            };
            batch.insert(id, candidate);
        }
        for loser in &self.losers {
            if !batch.contains_key(loser)
                && let Some((_, Ok(laid))) = self.cache.get(loser)
            {
                batch.insert(loser.clone(), Some(Arc::clone(laid)));
            }
        }
        self.settle_collisions(&mut batch, &mut rejections);
        let mut changes = Vec::new();
        for (id, new) in batch {
            let old = self.accepted.get(&id).cloned();
            if old.as_ref().map(Arc::as_ptr) == new.as_ref().map(Arc::as_ptr) {
                continue;
            }
            match &new {
                Some(object) => self.accepted.insert(id, Arc::clone(object)),
                None => self.accepted.remove(&id),
            };
            changes.push((old, new));
        }
        if !changes.is_empty() {
            self.snapshot.change(changes);
        }
        Rendered { snapshot: self.snapshot.clone(), rejections }
    }

    /// Until no top-level entry has two owners: the side of a collision that is a new
    /// version (not the accepted one) loses — the later in name order when both are —
    /// and falls back to its accepted version (or stays out); reported once per version.
    /// Owners outside the batch are unchanged, hence accepted. Terminates: each round
    /// reverts one batch object to its accepted version.
    fn settle_collisions(
        &mut self,
        batch: &mut BTreeMap<ObjectId, Option<Arc<Object>>>,
        rejections: &mut Vec<Rejection>,
    ) {
        while let Some((entry, keeper, loser)) = self.find_batch_collision(batch) {
            let candidate = batch.get(&loser).cloned().flatten();
            let previous = self.accepted.get(&loser).cloned();
            if let Some(object) = &candidate
                && self.reported_collisions.insert((loser.clone(), object.source.resource_version.clone()))
            {
                rejections.push(Rejection {
                    id: loser.clone(),
                    namespace: object.source.namespace.clone(),
                    uid: object.source.uid.clone(),
                    resource_version: object.source.resource_version.clone(),
                    reason: Reason::Collision { entry, other: keeper },
                    kept_previous: previous.is_some(),
                });
            }
            self.losers.insert(loser.clone());
            batch.insert(loser, previous);
        }
        for (id, candidate) in batch.iter() {
            let won =
                candidate.as_ref().is_some_and(|c| self.accepted.get(id).is_none_or(|a| !Arc::ptr_eq(a, c)));
            if won {
                self.losers.remove(id);
            }
        }
    }

    /// The first contested entry among the batch and the owners outside it, with
    /// (entry, keeper, loser).
    fn find_batch_collision(
        &self,
        batch: &BTreeMap<ObjectId, Option<Arc<Object>>>,
    ) -> Option<(String, ObjectId, ObjectId)> {
        let layout = self.options.layout;
        let is_new = |id: &ObjectId| match (batch.get(id), self.accepted.get(id)) {
            (Some(Some(candidate)), Some(accepted)) => !Arc::ptr_eq(candidate, accepted),
            (Some(Some(_)), None) => true,
            _ => false,
        };
        let mut base: Vec<&Object> = Vec::new();
        let mut seen = HashSet::new();
        let tops = batch.values().flatten().flat_map(|object| object.tops(layout));
        for entry in tops.filter_map(|top| self.snapshot.tree().get(top)) {
            for member in entry.members() {
                let outside = &member.object;
                if !batch.contains_key(&outside.id) && seen.insert(&outside.id) {
                    base.push(outside);
                }
            }
        }
        let mut changes = Vec::new();
        for (id, object) in batch.iter().filter_map(|(id, c)| Some((id, c.as_ref()?))) {
            if is_new(id) { changes.push(&**object) } else { base.push(object) }
        }
        claims::first_collision(layout, base, changes)
    }

    /// True when taking `delta` would change the content (reporting nothing): whether a
    /// reload in progress is superseded.
    #[must_use]
    pub(crate) fn would_change(&self, delta: &Delta) -> bool {
        match delta {
            Delta::Full(inputs) => self.clone().render(inputs).snapshot.hash != self.snapshot.hash,
            Delta::Changed(changes) => changes.iter().any(|(id, input)| {
                let accepted = self.accepted.get(id).map(|a| a.digest);
                let Some(input) = input else { return accepted.is_some() };
                let cached = self.cache.get(id).filter(|(version, _)| *version == input.version());
                let laid = match cached {
                    Some((_, laid)) => laid.clone(),
                    // A version already rendered (see `evaluate`): nothing new.
                    None if input.is_settled() => return false,
                    None => self.lay_out(input),
                };
                laid.is_ok_and(|object| accepted != Some(object.digest))
            }),
        }
    }
}
