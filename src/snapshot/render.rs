//! Objects → snapshot: lay out keys as paths, enforce key rules and limits, detect
//! collisions, and keep each object's last accepted version when a new one is rejected.

use super::claims;
use super::object::{Object, ObjectFile, sha256};
use super::{Layout, Snapshot, SourceRef};
use crate::keypath;
use crate::source::{Delta, Input, ObjectId, SourceKind};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use thiserror::Error;

pub(crate) use super::mode::{ModeError, parse_mode};

/// Rendering settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RenderOptions {
    /// Paths: by object name, or flat.
    pub layout: Layout,
    /// Mode of ConfigMap and directory files unless annotated.
    pub(crate) file_mode: u32,
    /// Mode of Secret files unless annotated.
    pub(crate) secret_file_mode: u32,
    /// Largest accepted value, in bytes.
    pub(crate) max_file_bytes: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            layout: Layout::ByName,
            file_mode: 0o644,
            secret_file_mode: 0o600,
            // The API server's own object limit: anything larger is not a real ConfigMap.
            max_file_bytes: 1024 * 1024,
        }
    }
}

/// Why an object (one version of it) was not taken into the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reason {
    /// A key breaks the key rules.
    #[error("invalid key: {0}")]
    InvalidKey(#[source] keypath::Error),
    /// The object name is not one the Kubernetes API accepts.
    #[error("invalid name: {0}")]
    InvalidName(#[source] keypath::Error),
    /// A value is larger than the limit.
    #[error("value of key {key} is {size} bytes, the limit is {limit}")]
    Oversized {
        /// The key, escaped and shortened.
        key: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The file-mode annotation is not a safe octal mode.
    #[error("annotation configsnap.io/file-mode {value} {error}")]
    BadMode {
        /// The annotation's value, escaped and shortened.
        value: String,
        /// What is wrong with it.
        error: ModeError,
    },
    /// The target-dir annotation is not one safe directory name.
    #[error("annotation configsnap.io/target-dir must be one directory name: {0}")]
    BadTargetDir(#[source] keypath::Error),
    /// A key is in both `data` and `binaryData`.
    #[error("key {0} is in both data and binaryData")]
    DuplicateKey(String),
    /// Another object already provides the same top-level entry.
    #[error("{entry:?} is also provided by {other}")]
    Collision {
        /// The contested top-level entry.
        entry: String,
        /// The object that keeps it.
        other: ObjectId,
    },
}

impl Reason {
    /// Short label for metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidKey(_) => "invalid_key",
            Self::InvalidName(_) => "invalid_name",
            Self::Oversized { .. } => "oversized",
            Self::BadMode { .. } => "bad_mode",
            Self::BadTargetDir(_) => "bad_target_dir",
            Self::DuplicateKey(_) => "duplicate_key",
            Self::Collision { .. } => "collision",
        }
    }
}

/// A rejected object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The object.
    pub id: ObjectId,
    /// Its namespace.
    pub namespace: String,
    /// Its uid (empty when unknown).
    pub uid: String,
    /// Its resource version.
    pub(crate) resource_version: String,
    /// Why.
    pub reason: Reason,
    /// True when an earlier accepted version of it stays in the snapshot.
    pub(crate) kept_previous: bool,
}

/// The result of one render.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    /// The snapshot to write (may equal the current one).
    pub snapshot: Snapshot,
    /// Rejections first seen in this render (each bad version is reported once).
    pub rejections: Vec<Rejection>,
}

type LayResult = Result<Arc<Object>, (Reason, String)>;

/// Renders snapshots, remembering the last accepted version of every object.
#[derive(Debug, Clone)]
pub(crate) struct Renderer {
    options: RenderOptions,
    accepted: BTreeMap<ObjectId, Arc<Object>>,
    cache: HashMap<ObjectId, (String, LayResult)>,
    reported_collisions: HashSet<(ObjectId, String)>,
    /// Objects whose latest version lost a collision: tried again at every render.
    losers: BTreeSet<ObjectId>,
    /// The snapshot of `accepted`, kept in step change by change.
    snapshot: Snapshot,
}

// === impl Renderer ===

impl Renderer {
    /// A renderer with no accepted objects yet.
    #[must_use]
    pub(crate) fn new(options: RenderOptions) -> Self {
        Self {
            options,
            accepted: BTreeMap::new(),
            cache: HashMap::new(),
            reported_collisions: HashSet::new(),
            losers: BTreeSet::new(),
            snapshot: Snapshot::empty(options.layout),
        }
    }

    /// Seeds the accepted versions from a snapshot already on disk, so an object that is
    /// invalid at start-up keeps the files it had.
    pub(crate) fn seed(&mut self, snapshot: &Snapshot) {
        self.accepted = snapshot.objects().map(|o| (o.id.clone(), Arc::clone(o))).collect();
        self.snapshot = snapshot.clone();
    }

    /// Renders what changed in the source: a full set of objects, or only the changed
    /// ones (an update then costs the change, not the namespace).
    pub(crate) fn render_delta(&mut self, delta: Delta) -> Rendered {
        match delta {
            Delta::Full(inputs) => self.render(&inputs),
            Delta::Changed(changes) => self.render_changes(changes),
        }
    }

    /// Renders the current objects into a snapshot.
    pub(crate) fn render(&mut self, inputs: &[Input]) -> Rendered {
        let mut rejections = Vec::new();
        let mut candidate = BTreeMap::new();
        let mut present = HashSet::new();
        for input in inputs {
            let id = input.id();
            present.insert(id.clone());
            if let Some(object) = self.evaluate(&id, input, &mut rejections) {
                candidate.insert(id, object);
            }
        }
        self.cache.retain(|id, _| present.contains(id));
        self.reported_collisions.retain(|(id, _)| present.contains(id));
        self.losers.retain(|id| present.contains(id));
        let changed = self.accepted.len() != candidate.len()
            || candidate
                .iter()
                .any(|(id, new)| self.accepted.get(id).is_none_or(|old| !Arc::ptr_eq(old, new)));
        if changed {
            self.losers.clear();
            self.resolve_collisions(&mut candidate, &mut rejections);
            self.apply(candidate);
        }
        Rendered { snapshot: self.snapshot.clone(), rejections }
    }

    /// What an object contributes: its new version, or its previous one when the new
    /// one is rejected (reported once per version), or nothing.
    fn evaluate(
        &mut self,
        id: &ObjectId,
        input: &Input,
        rejections: &mut Vec<Rejection>,
    ) -> Option<Arc<Object>> {
        let version = input.version();
        let fresh_eval = !matches!(self.cache.get(id), Some((v, _)) if *v == version);
        if fresh_eval && input.is_settled() {
            // The source lets go of a version's bytes only once it was rendered (and so
            // cached here); should that ever not hold, keep the files as they are.
            tracing::error!(object = %id, version, "an object version is no longer at hand to render; its files stay as they are");
            return self.accepted.get(id).cloned();
        }
        if fresh_eval {
            let laid = self.lay_out(input);
            // The same files as the accepted version (a metadata-only update, or the
            // source confirming what was read from disk): their bytes are on disk already.
            if let (Ok(new), Some(old)) = (&laid, self.accepted.get(id))
                && new.digest == old.digest
                && let Some(objects) = old.released_to()
            {
                new.release(&objects);
            }
            self.cache.insert(id.clone(), (version, laid));
        }
        match &self.cache.get(id)?.1 {
            Ok(laid) => Some(Arc::clone(laid)),
            Err((reason, namespace)) => {
                let previous = self.accepted.get(id);
                if fresh_eval {
                    rejections.push(Rejection {
                        id: id.clone(),
                        namespace: namespace.clone(),
                        uid: input.uid(),
                        resource_version: input.resource_version(),
                        reason: reason.clone(),
                        kept_previous: previous.is_some(),
                    });
                }
                previous.cloned()
            }
        }
    }

    /// Makes `candidate` the accepted set, changing the snapshot only where it differs.
    fn apply(&mut self, candidate: BTreeMap<ObjectId, Arc<Object>>) {
        let mut changes = Vec::new();
        for (id, new) in &candidate {
            match self.accepted.get(id) {
                Some(old) if Arc::ptr_eq(old, new) => {}
                old => changes.push((old.cloned(), Some(Arc::clone(new)))),
            }
        }
        for (id, old) in &self.accepted {
            if !candidate.contains_key(id) {
                changes.push((Some(Arc::clone(old)), None));
            }
        }
        self.snapshot.change(changes);
        self.accepted = candidate;
    }

    /// Reverts the newer side of each collision to its accepted version (or drops it),
    /// until no top-level entry has two owners. Terminates: each round reverts one object
    /// that differs from its accepted version, and the accepted set is collision-free.
    fn resolve_collisions(
        &mut self,
        candidate: &mut BTreeMap<ObjectId, Arc<Object>>,
        rejections: &mut Vec<Rejection>,
    ) {
        while let Some((entry, keeper, loser)) = self.find_collision(candidate) {
            let laid = &candidate[&loser];
            let report_key = (loser.clone(), laid.source.resource_version.clone());
            if self.reported_collisions.insert(report_key) {
                rejections.push(Rejection {
                    id: loser.clone(),
                    namespace: laid.source.namespace.clone(),
                    uid: laid.source.uid.clone(),
                    resource_version: laid.source.resource_version.clone(),
                    reason: Reason::Collision { entry, other: keeper },
                    kept_previous: self.accepted.contains_key(&loser),
                });
            }
            self.losers.insert(loser.clone());
            match self.accepted.get(&loser) {
                Some(previous) if !Arc::ptr_eq(previous, &candidate[&loser]) => {
                    candidate.insert(loser, Arc::clone(previous));
                }
                _ => {
                    candidate.remove(&loser);
                }
            }
        }
    }

    /// The first contested entry, with (keeper, loser): the loser is the side that is
    /// not its accepted version (the change), else the later one in name order.
    fn find_collision(
        &self,
        candidate: &BTreeMap<ObjectId, Arc<Object>>,
    ) -> Option<(String, ObjectId, ObjectId)> {
        let is_new = |laid: &&Object| {
            self.accepted.get(&laid.id).is_none_or(|accepted| !std::ptr::eq(&**accepted, *laid))
        };
        let (changes, base): (Vec<&Object>, Vec<&Object>) =
            candidate.values().map(|o| &**o).partition(is_new);
        claims::first_collision(self.options.layout, base, changes)
    }

    fn lay_out(&self, input: &Input) -> LayResult {
        let object = input.view();
        let fail = |reason| Err((reason, object.namespace.to_owned()));
        if object.id.kind != SourceKind::Directory
            && let Err(err) = keypath::validate_name(&object.id.name)
        {
            return fail(Reason::InvalidName(err));
        }
        if let Some(key) = object.duplicate_keys.first() {
            return fail(Reason::DuplicateKey(keypath::escape(key)));
        }
        let mode = match (object.mode_annotation, object.id.kind) {
            (Some(text), _) => match parse_mode(text) {
                Ok(mode) => mode,
                Err(error) => return fail(Reason::BadMode { value: keypath::escape(text), error }),
            },
            (None, SourceKind::Secret) => self.options.secret_file_mode,
            (None, _) => self.options.file_mode,
        };
        let target = match object.target_annotation {
            Some(text) => match keypath::validate_key(text) {
                Ok(()) => Some(text.to_owned()),
                Err(err) => return fail(Reason::BadTargetDir(err)),
            },
            None => None,
        };
        let dir = target.as_deref().or((self.options.layout == Layout::ByName).then_some(&*object.id.name));
        let mut files = Vec::with_capacity(object.entries.len());
        for &(key, value) in &object.entries {
            let key_check = match object.id.kind {
                SourceKind::Directory => keypath::validate_path(key),
                _ => keypath::validate_key(key),
            };
            if let Err(err) = key_check {
                return fail(Reason::InvalidKey(err));
            }
            if value.len() > self.options.max_file_bytes {
                return fail(Reason::Oversized {
                    key: keypath::escape(key),
                    size: value.len(),
                    limit: self.options.max_file_bytes,
                });
            }
            if let Some(dir) = dir
                && let Err(err) = keypath::validate_path(&format!("{dir}/{key}"))
            {
                return fail(Reason::InvalidKey(err));
            }
            files.push(ObjectFile {
                key: key.to_owned(),
                mode,
                size: value.len() as u64,
                sha256: sha256(value),
            });
        }
        let source = SourceRef {
            kind: object.id.kind,
            namespace: object.namespace.to_owned(),
            name: object.id.name.clone(),
            uid: object.uid.to_owned(),
            resource_version: object.resource_version.to_owned(),
        };
        Ok(Arc::new(Object::new(object.id, source, files, input.clone()).with_target(target)))
    }
}

#[path = "render_delta.rs"]
mod delta;

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "render_target_tests.rs"]
mod target_tests;
