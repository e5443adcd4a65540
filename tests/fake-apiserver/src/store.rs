//! The object store: objects, the global resourceVersion counter, event history and watchers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::ApiError;
use crate::util::{name_suffix, new_uid, now_rfc3339};
use crate::validate::kind_for;

/// Store key: (plural, namespace, name). Ordering gives lists sorted by namespace then name.
pub(crate) type Key = (String, String, String);

/// One committed change, kept in the history ring and fanned out to watchers.
#[derive(Debug)]
pub(crate) struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    pub plural: String,
    pub namespace: String,
    pub name: String,
    /// The object before the change (`None` on create).
    pub old: Option<Arc<Value>>,
    /// The object after the change; for deletes the last state stamped with the delete's rv.
    pub obj: Arc<Value>,
    pub deleted: bool,
}

/// Message delivered to an open watch, in commit order.
#[derive(Debug)]
pub(crate) enum WatchMsg {
    Event(Arc<Event>),
    Bookmark,
}

/// How a write treats an existing object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PutMode {
    /// Create or replace (the Rust `apply` helper).
    Upsert,
    /// POST: fail with AlreadyExists if present.
    Create,
    /// PUT: fail with NotFound if absent, Conflict if the given resourceVersion is stale.
    Update(Option<String>),
}

/// Where a watch asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchFrom {
    /// Synthetic ADDED events for the current objects, then live events.
    Snapshot,
    /// Live events only, from the latest resourceVersion.
    Now,
    /// Every event after this resourceVersion.
    Resume(u64),
}

/// Where a watch starts, decided atomically with its registration.
pub(crate) enum WatchStart {
    /// Current objects (synthetic ADDED) at this rv.
    Snapshot(u64, Vec<Arc<Value>>),
    /// From this rv, replaying these history events (all with a greater rv).
    Resume(u64, Vec<Arc<Event>>),
    /// The requested rv is older than the retained history: (requested, oldest retained).
    TooOld(u64, u64),
}

pub(crate) struct Store {
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    capacity: usize,
    /// History holds every event with rv > floor.
    floor: u64,
    watchers: HashMap<u64, UnboundedSender<WatchMsg>>,
    seq: u64,
}

fn managed_fields(obj: &Value, time: &str) -> Value {
    let keys = |v: Option<&Value>| -> Option<Value> {
        let m = v?.as_object()?;
        let mut f = Map::new();
        f.insert(".".into(), json!({}));
        for k in m.keys() {
            f.insert(format!("f:{k}"), json!({}));
        }
        Some(Value::Object(f))
    };
    let mut fields = Map::new();
    for section in ["data", "binaryData", "immutable", "type"] {
        if let Some(v) = obj.get(section) {
            let entry = if v.is_object() { keys(Some(v)).unwrap_or(json!({})) } else { json!({}) };
            fields.insert(format!("f:{section}"), entry);
        }
    }
    let mut meta = Map::new();
    for section in ["labels", "annotations"] {
        if let Some(f) = keys(obj.pointer(&format!("/metadata/{section}"))) {
            meta.insert(format!("f:{section}"), f);
        }
    }
    if !meta.is_empty() {
        fields.insert("f:metadata".into(), Value::Object(meta));
    }
    json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
         "time": time, "fieldsType": "FieldsV1", "fieldsV1": Value::Object(fields)},
        {"manager": "fake-apiserver", "operation": "Update", "apiVersion": "v1", "time": time,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:resourceVersion": {}}}}
    ])
}

/// Server-owned metadata that does not make an update a change.
const SERVER_FIELDS: [&str; 5] =
    ["resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"];

/// The user-owned content of an object, with empty maps dropped (Go's `omitempty`), for
/// detecting no-op updates.
fn normalized(obj: &Value) -> Value {
    fn prune(m: &mut Map<String, Value>) {
        m.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
    }
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_FIELDS {
            meta.remove(f);
        }
        prune(meta);
    }
    if let Some(root) = v.as_object_mut() {
        prune(root);
    }
    v
}

/// True when `cur` is immutable and `new` changes its data or clears `immutable`.
fn immutable_violation(cur: &Value, new: &Value) -> bool {
    let field =
        |o: &Value, f: &str| o.get(f).cloned().filter(|v| v.as_object().is_none_or(|m| !m.is_empty()));
    cur.get("immutable") == Some(&json!(true))
        && ["data", "binaryData", "immutable"].iter().any(|f| field(cur, f) != field(new, f))
}

/// The preconditions of a write: create/update existence, resourceVersion and immutability.
fn check_write(
    key: &Key,
    mode: &PutMode,
    old: Option<&Value>,
    obj: &Value,
    validated: bool,
) -> Result<(), ApiError> {
    let (plural, _, name) = key;
    match (mode, old) {
        (PutMode::Create, Some(_)) => {
            Err(ApiError::AlreadyExists(format!("{plural} {name:?} already exists")))
        }
        (PutMode::Update(_), None) => Err(ApiError::NotFound(format!("{plural} {name:?} not found"))),
        (PutMode::Update(Some(want)), Some(cur))
            if cur.pointer("/metadata/resourceVersion") != Some(&json!(want)) =>
        {
            Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on {plural} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again"
            )))
        }
        (_, Some(cur)) if validated && immutable_violation(cur, obj) => Err(ApiError::Invalid(format!(
            "{} {name:?} is invalid: data: Forbidden: field is immutable when `immutable` is set",
            kind_for(plural).unwrap_or("Object")
        ))),
        _ => Ok(()),
    }
}

impl Store {
    pub(crate) fn new(start_rv: u64, capacity: usize) -> Self {
        Self {
            objects: BTreeMap::new(),
            rv: start_rv,
            history: VecDeque::new(),
            capacity,
            floor: start_rv,
            watchers: HashMap::new(),
            seq: 0,
        }
    }

    /// Current (latest committed) resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    pub(crate) fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(&(plural.into(), ns.into(), name.into())).cloned()
    }

    /// Fills in `kind`, `apiVersion` and a generated name; returns the store key.
    /// Panics if the plural is unknown or namespace/name are missing (callers validate first).
    fn prepare(&mut self, plural: &str, obj: &mut Value) -> Key {
        let kind = kind_for(plural).expect("unsupported resource");
        let root = obj.as_object_mut().expect("object must be a JSON object");
        root.insert("kind".into(), json!(kind));
        root.insert("apiVersion".into(), json!(crate::validate::api_version_for(plural)));
        let meta = root.entry("metadata").or_insert_with(|| json!({}));
        let meta = meta.as_object_mut().expect("metadata must be an object");
        if meta.get("name").and_then(Value::as_str).unwrap_or("").is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
        {
            let generated = format!("{prefix}{}", name_suffix(self.seq ^ self.rv));
            meta.insert("name".into(), json!(generated));
        }
        let text =
            |f: &str| meta.get(f).and_then(Value::as_str).expect("metadata namespace and name").to_string();
        (plural.into(), text("namespace"), text("name"))
    }

    /// Writes `obj` (kind/apiVersion/metadata are filled in); returns the stored object, or the
    /// current one unchanged when the write changes nothing. `validated` enforces `immutable`.
    pub(crate) fn put(
        &mut self,
        plural: &str,
        mut obj: Value,
        mode: PutMode,
        validated: bool,
    ) -> Result<Arc<Value>, ApiError> {
        self.seq += 1;
        let key = self.prepare(plural, &mut obj);
        let old = self.objects.get(&key).cloned();
        check_write(&key, &mode, old.as_deref(), &obj, validated)?;
        if let Some(cur) = &old
            && normalized(cur) == normalized(&obj)
        {
            // The real server turns an update that changes nothing into a no-op: no new
            // resourceVersion and no watch event.
            return Ok(cur.clone());
        }
        let now = now_rfc3339();
        let keep = |field: &str| old.as_ref().and_then(|o| o.pointer(&format!("/metadata/{field}")).cloned());
        let uid = keep("uid").unwrap_or_else(|| json!(new_uid(self.seq)));
        let created = keep("creationTimestamp").unwrap_or_else(|| json!(now));
        self.rv += 1;
        let managed = managed_fields(&obj, &now);
        let meta = &mut obj["metadata"];
        meta["uid"] = uid;
        meta["creationTimestamp"] = created;
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["managedFields"] = managed;
        let obj = Arc::new(obj);
        self.objects.insert(key.clone(), obj.clone());
        let (plural, namespace, name) = key;
        self.record(Event { rv: self.rv, plural, namespace, name, old, obj: obj.clone(), deleted: false });
        Ok(obj)
    }

    /// Deletes an object; returns the delete's rv and the final object state.
    pub(crate) fn delete(&mut self, plural: &str, ns: &str, name: &str) -> Option<(u64, Arc<Value>)> {
        let old = self.objects.remove(&(plural.into(), ns.into(), name.into()))?;
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        let ev = Event {
            rv: self.rv,
            plural: plural.into(),
            namespace: ns.into(),
            name: name.into(),
            old: Some(old),
            obj: last.clone(),
            deleted: true,
        };
        self.record(ev);
        Some((self.rv, last))
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        if self.capacity == 0 {
            self.floor = self.rv;
        } else {
            self.history.push_back(ev.clone());
            while self.history.len() > self.capacity {
                if let Some(old) = self.history.pop_front() {
                    self.floor = old.rv;
                }
            }
        }
        self.watchers.retain(|_, tx| tx.send(WatchMsg::Event(ev.clone())).is_ok());
    }

    /// Forgets all history: every rv older than the current one becomes "too old".
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    /// Objects of `plural` (in `ns`, or all namespaces) as they were at rv `at`
    /// (current state when `at` is `None` or ≥ current). `Err(())` when `at` was compacted.
    pub(crate) fn list_at(
        &self,
        plural: &str,
        ns: Option<&str>,
        at: Option<u64>,
    ) -> Result<(u64, Vec<Arc<Value>>), ()> {
        let in_scope = |p: &str, n: &str| p == plural && ns.is_none_or(|want| want == n);
        let current = self.objects.iter().filter(|((p, n, _), _)| in_scope(p, n));
        let at = match at {
            Some(at) if at < self.rv => at,
            _ => return Ok((self.rv, current.map(|(_, v)| v.clone()).collect())),
        };
        if at < self.floor {
            return Err(());
        }
        let mut map: BTreeMap<(String, String), Arc<Value>> =
            current.map(|((_, n, name), v)| ((n.clone(), name.clone()), v.clone())).collect();
        for ev in self.history.iter().rev().take_while(|e| e.rv > at) {
            if !in_scope(&ev.plural, &ev.namespace) {
                continue;
            }
            let k = (ev.namespace.clone(), ev.name.clone());
            match &ev.old {
                Some(o) => map.insert(k, o.clone()),
                None => map.remove(&k),
            };
        }
        Ok((at, map.into_values().collect()))
    }

    /// Registers a watcher and decides its starting point atomically (no gaps, no duplicates).
    /// `force_expire` answers every resume with [`WatchStart::TooOld`].
    pub(crate) fn subscribe(
        &mut self,
        plural: &str,
        ns: Option<&str>,
        from: WatchFrom,
        force_expire: bool,
    ) -> (WatchStart, Option<UnboundedReceiver<WatchMsg>>) {
        let start = match from {
            WatchFrom::Resume(n) if force_expire || n < self.floor => {
                return (WatchStart::TooOld(n, self.floor), None);
            }
            WatchFrom::Resume(n) => {
                WatchStart::Resume(n, self.history.iter().filter(|e| e.rv > n).cloned().collect())
            }
            WatchFrom::Now => WatchStart::Resume(self.rv, Vec::new()),
            WatchFrom::Snapshot => {
                let (rv, items) = self.list_at(plural, ns, None).unwrap_or_default();
                WatchStart::Snapshot(rv, items)
            }
        };
        let (tx, rx) = unbounded_channel();
        self.seq += 1;
        self.watchers.insert(self.seq, tx);
        (start, Some(rx))
    }

    /// Ends every open watch cleanly (their channels close).
    pub(crate) fn drop_watchers(&mut self) {
        self.watchers.clear();
    }

    /// Queues a BOOKMARK on every open watch.
    pub(crate) fn broadcast_bookmark(&mut self) {
        self.watchers.retain(|_, tx| tx.send(WatchMsg::Bookmark).is_ok());
    }
}
