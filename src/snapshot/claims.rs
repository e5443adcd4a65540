//! Who provides which top-level name: the collision rules between objects, shared by
//! the full and the incremental render.
//!
//! - A file entry (a key at the top level in flat layout) is one object's alone.
//! - A directory entry is the union of every object that puts its files there: objects
//!   naming it in `configsnap.io/target-dir`, and in by-name layout the unannotated
//!   object of that name. Two of them providing the same name inside it collide
//!   (`<dir>/<name>`), and so do two unannotated objects of the same name (a ConfigMap
//!   and a Secret), as before target dirs existed.
//! - A file entry and a directory entry of the same name collide.

use super::{Layout, Object};
use crate::source::ObjectId;
use std::collections::HashMap;

/// The first collision when `base` (accepted versions: collision-free) is claimed
/// first and then each of `changes` in order, as (entry, keeper, loser). The loser is
/// always a change, and the keeper an accepted version or an earlier change: claiming
/// the accepted side first makes the outcome independent of which objects a render
/// looks at, so a render of the changes only agrees with a render of everything.
pub(super) fn first_collision<'a>(
    layout: Layout,
    base: impl IntoIterator<Item = &'a Object>,
    changes: impl IntoIterator<Item = &'a Object>,
) -> Option<(String, ObjectId, ObjectId)> {
    let mut claims = Claims::new(layout);
    for object in base {
        // Accepted versions never collide with each other.
        let _ = claims.claim(object);
    }
    for object in changes {
        if let Err((entry, keeper)) = claims.claim(object) {
            return Some((entry, keeper.clone(), object.id.clone()));
        }
    }
    None
}

/// The names claimed so far.
struct Claims<'a> {
    layout: Layout,
    tops: HashMap<&'a str, Top<'a>>,
}

/// What is claimed of one top-level name.
#[derive(Default)]
struct Top<'a> {
    /// The object whose file (or flat-layout subdir) this is.
    file: Option<&'a ObjectId>,
    /// The first object putting its files in this directory.
    first_dir: Option<&'a ObjectId>,
    /// The unannotated object whose by-name directory this is.
    named: Option<&'a ObjectId>,
    /// Names inside the directory, with their provider.
    inside: HashMap<&'a str, &'a ObjectId>,
}

/// A collision: the contested entry and the object that claimed it first.
type Collision<'a> = (String, &'a ObjectId);

impl<'a> Claims<'a> {
    /// Nothing claimed.
    fn new(layout: Layout) -> Self {
        Self { layout, tops: HashMap::new() }
    }

    /// Claims everything `object` shows; on the first collision stops (what was claimed
    /// of it stays) and returns it.
    fn claim(&mut self, object: &'a Object) -> Result<(), Collision<'a>> {
        let id = &object.id;
        let is_dir = object.dir(self.layout).is_some();
        for top in object.tops(self.layout) {
            let slot = self.tops.entry(top).or_default();
            if let Some(other) = slot.file.or(if is_dir { None } else { slot.first_dir }) {
                return Err((top.to_owned(), other));
            }
            if !is_dir {
                slot.file = Some(id);
                continue;
            }
            let named = object.target.is_none();
            if let Some(other) = slot.named.filter(|_| named) {
                return Err((top.to_owned(), other));
            }
            if let Some((name, other)) = object.components().find_map(|n| slot.inside.get(n).map(|o| (n, *o)))
            {
                return Err((format!("{top}/{name}"), other));
            }
            slot.inside.extend(object.components().map(|name| (name, id)));
            slot.first_dir.get_or_insert(id);
            if named {
                slot.named = Some(id);
            }
        }
        Ok(())
    }
}
