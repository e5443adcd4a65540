//! The source-neutral object model: a named set of keys with bytes, and its conversions
//! from ConfigMaps, Secrets and mounted directories.

use super::{FILE_MODE_ANNOTATION, TARGET_DIR_ANNOTATION};
use bytes::Bytes;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What kind of object a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    /// A core/v1 ConfigMap.
    ConfigMap,
    /// A core/v1 Secret: contents never logged, default mode 0600.
    Secret,
    /// A kubelet-mounted ConfigMap directory (`--from-dir`).
    Directory,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
            Self::Directory => "Directory",
        })
    }
}

/// Identity of an object across versions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// Kind of the object.
    pub kind: SourceKind,
    /// Object name (directory sources: the top-level name they render under).
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// One object as the source delivered it; converted lazily, only when its version changed.
#[derive(Debug, Clone)]
pub enum Input {
    /// From the reflector store.
    ConfigMap(Arc<ConfigMap>),
    /// From the reflector store.
    Secret(Arc<Secret>),
    /// From a mounted directory, already read.
    Object(Arc<SourceObject>),
    /// A version the pipeline has rendered already: its identity and version only (the
    /// rendered object holds its bytes, or they are on disk). Never laid out again.
    Settled(Arc<Settled>),
}

/// What stays of an object version once it was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Kind and name.
    pub id: ObjectId,
    /// [`Input::version`] of the version rendered.
    pub version: String,
}

impl Input {
    /// Identity (kind and name).
    #[must_use]
    pub fn id(&self) -> ObjectId {
        let (kind, name) = match self {
            Self::ConfigMap(cm) => (SourceKind::ConfigMap, cm.metadata.name.clone()),
            Self::Secret(s) => (SourceKind::Secret, s.metadata.name.clone()),
            Self::Object(o) => return o.id.clone(),
            Self::Settled(k) => return k.id.clone(),
        };
        ObjectId { kind, name: name.unwrap_or_default() }
    }

    /// Version token: changes whenever the content may have changed.
    #[must_use]
    pub fn version(&self) -> String {
        match self {
            Self::ConfigMap(cm) => version_of(&cm.metadata),
            Self::Secret(s) => version_of(&s.metadata),
            Self::Object(o) => o.resource_version.clone(),
            Self::Settled(k) => k.version.clone(),
        }
    }

    /// This version as the pipeline keeps it once rendered: identity and version only.
    #[must_use]
    pub(crate) fn settled(&self) -> Self {
        match self {
            Self::ConfigMap(_) | Self::Secret(_) => {
                Self::Settled(Arc::new(Settled { id: self.id(), version: self.version() }))
            }
            Self::Object(_) | Self::Settled(_) => self.clone(),
        }
    }

    /// True for a version the pipeline has rendered already (no bytes at hand).
    #[must_use]
    pub(crate) fn is_settled(&self) -> bool {
        matches!(self, Self::Settled(_))
    }

    /// The object's uid (empty when unknown).
    #[must_use]
    pub fn uid(&self) -> String {
        match self {
            Self::ConfigMap(cm) => cm.metadata.uid.clone().unwrap_or_default(),
            Self::Secret(s) => s.metadata.uid.clone().unwrap_or_default(),
            Self::Object(o) => o.uid.clone(),
            Self::Settled(k) => k.version.split_once('/').map(|(uid, _)| uid.to_owned()).unwrap_or_default(),
        }
    }

    /// The object's own resourceVersion (for logs), without the UID part of [`Input::version`].
    #[must_use]
    pub(crate) fn resource_version(&self) -> String {
        match self {
            Self::ConfigMap(cm) => cm.metadata.resource_version.clone().unwrap_or_default(),
            Self::Secret(s) => s.metadata.resource_version.clone().unwrap_or_default(),
            Self::Object(o) => o.resource_version.clone(),
            Self::Settled(k) => k.version.split_once('/').map(|(_, rv)| rv.to_owned()).unwrap_or_default(),
        }
    }

    /// Converts into the source-neutral form (copies values into shared buffers): what
    /// the tests compare; the pipeline reads values through views and never copies them.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn to_object(&self) -> SourceObject {
        match self {
            Self::ConfigMap(cm) => from_configmap(cm),
            Self::Secret(s) => from_secret(s),
            Self::Object(o) => SourceObject::clone(o),
            Self::Settled(k) => SourceObject {
                id: k.id.clone(),
                namespace: String::new(),
                uid: self.uid(),
                resource_version: self.resource_version(),
                mode_annotation: None,
                target_annotation: None,
                entries: BTreeMap::new(),
                duplicate_keys: Vec::new(),
            },
        }
    }
    /// The bytes of `key`, borrowed from the cached object (never copied).
    #[must_use]
    pub fn value(&self, key: &str) -> Option<&[u8]> {
        match self {
            Self::ConfigMap(cm) => cm
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(String::as_bytes)
                .or_else(|| cm.binary_data.as_ref().and_then(|d| d.get(key)).map(|v| v.0.as_slice())),
            Self::Secret(s) => s
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.0.as_slice())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(key)).map(String::as_bytes)),
            Self::Object(o) => o.entries.get(key).map(|b| &b[..]),
            Self::Settled(_) => None,
        }
    }

    /// A borrowed view of the object: metadata and every key with its bytes, in key order.
    #[must_use]
    pub fn view(&self) -> View<'_> {
        match self {
            Self::ConfigMap(cm) => {
                let mut view = View::of(SourceKind::ConfigMap, &cm.metadata);
                let data = cm.data.iter().flatten().map(|(k, v)| (k.as_str(), v.as_bytes()));
                let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_slice()));
                view.fill(data, binary);
                view
            }
            Self::Secret(s) => {
                let mut view = View::of(SourceKind::Secret, &s.metadata);
                let data = s.data.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_slice()));
                view.fill(data, std::iter::empty());
                // The API server folds stringData into data; a raw object may still carry it.
                for (key, value) in s.string_data.iter().flatten() {
                    if !view.entries.iter().any(|(k, _)| *k == key.as_str()) {
                        view.entries.push((key.as_str(), value.as_bytes()));
                    }
                }
                view.entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                view
            }
            Self::Object(o) => View {
                id: o.id.clone(),
                namespace: &o.namespace,
                uid: &o.uid,
                resource_version: &o.resource_version,
                mode_annotation: o.mode_annotation.as_deref(),
                target_annotation: o.target_annotation.as_deref(),
                entries: o.entries.iter().map(|(k, v)| (k.as_str(), &v[..])).collect(),
                duplicate_keys: o.duplicate_keys.iter().map(String::as_str).collect(),
            },
            // Never laid out (the renderer has this version already): no keys to show.
            Self::Settled(k) => {
                let (uid, resource_version) = k.version.split_once('/').unwrap_or_default();
                View {
                    id: k.id.clone(),
                    namespace: "",
                    uid,
                    resource_version,
                    mode_annotation: None,
                    target_annotation: None,
                    entries: Vec::new(),
                    duplicate_keys: Vec::new(),
                }
            }
        }
    }
}

/// An object's metadata and keys, borrowed from the source's cache.
#[derive(Debug)]
pub struct View<'a> {
    /// Kind and name.
    pub id: ObjectId,
    /// Namespace (empty for directories).
    pub namespace: &'a str,
    /// Object UID (empty for directories).
    pub uid: &'a str,
    /// Resource version.
    pub(crate) resource_version: &'a str,
    /// The `configsnap.io/file-mode` annotation, unparsed.
    pub(crate) mode_annotation: Option<&'a str>,
    /// The `configsnap.io/target-dir` annotation, unchecked.
    pub(crate) target_annotation: Option<&'a str>,
    /// Keys and values, sorted by key.
    pub entries: Vec<(&'a str, &'a [u8])>,
    /// Keys present in both `data` and `binaryData` (invalid).
    pub(crate) duplicate_keys: Vec<&'a str>,
}

impl<'a> View<'a> {
    fn of(kind: SourceKind, meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            id: ObjectId { kind, name: meta.name.clone().unwrap_or_default() },
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref().unwrap_or_default(),
            resource_version: meta.resource_version.as_deref().unwrap_or_default(),
            mode_annotation: annotation(meta, FILE_MODE_ANNOTATION),
            target_annotation: annotation(meta, TARGET_DIR_ANNOTATION),
            entries: Vec::new(),
            duplicate_keys: Vec::new(),
        }
    }

    /// Merges two key-sorted sources (`data` wins over `binaryData`), noting duplicates.
    fn fill(
        &mut self,
        data: impl Iterator<Item = (&'a str, &'a [u8])>,
        binary: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) {
        self.entries.extend(data);
        let before = self.entries.len();
        for (key, value) in binary {
            if self.entries[..before].binary_search_by(|(k, _)| k.cmp(&key)).is_ok() {
                self.duplicate_keys.push(key);
            } else {
                self.entries.push((key, value));
            }
        }
        if self.entries.len() != before {
            self.entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
    }
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    name: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(name)).map(String::as_str)
}

fn version_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.resource_version.as_deref().unwrap_or_default()
    )
}

/// A named set of keys with their bytes, whatever the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    /// Kind and name.
    pub id: ObjectId,
    /// Namespace (empty for directories).
    pub namespace: String,
    /// Object UID (empty for directories).
    pub uid: String,
    /// Resource version, or a content token for directories.
    pub(crate) resource_version: String,
    /// Mode requested by the `configsnap.io/file-mode` annotation, unparsed.
    pub(crate) mode_annotation: Option<String>,
    /// Directory requested by the `configsnap.io/target-dir` annotation, unchecked.
    pub(crate) target_annotation: Option<String>,
    /// Keys (ConfigMap keys, or relative paths for directories) and values.
    pub entries: BTreeMap<String, Bytes>,
    /// Keys present in more than one of `data`/`binaryData` (invalid).
    pub(crate) duplicate_keys: Vec<String>,
}

#[cfg(test)]
fn meta_fields(
    kind: SourceKind,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> SourceObject {
    SourceObject {
        id: ObjectId { kind, name: meta.name.clone().unwrap_or_default() },
        namespace: meta.namespace.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        mode_annotation: annotation(meta, FILE_MODE_ANNOTATION).map(str::to_owned),
        target_annotation: annotation(meta, TARGET_DIR_ANNOTATION).map(str::to_owned),
        entries: BTreeMap::new(),
        duplicate_keys: Vec::new(),
    }
}

#[cfg(test)]
fn from_configmap(cm: &ConfigMap) -> SourceObject {
    let mut object = meta_fields(SourceKind::ConfigMap, &cm.metadata);
    for (key, value) in cm.data.iter().flatten() {
        object.entries.insert(key.clone(), Bytes::copy_from_slice(value.as_bytes()));
    }
    for (key, value) in cm.binary_data.iter().flatten() {
        if object.entries.insert(key.clone(), Bytes::copy_from_slice(&value.0)).is_some() {
            object.duplicate_keys.push(key.clone());
        }
    }
    object
}

#[cfg(test)]
fn from_secret(secret: &Secret) -> SourceObject {
    let mut object = meta_fields(SourceKind::Secret, &secret.metadata);
    for (key, value) in secret.data.iter().flatten() {
        object.entries.insert(key.clone(), Bytes::copy_from_slice(&value.0));
    }
    for (key, value) in secret.string_data.iter().flatten() {
        // The API server folds stringData into data; a raw object may still carry it.
        object.entries.entry(key.clone()).or_insert_with(|| Bytes::copy_from_slice(value.as_bytes()));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn configmap_data_and_binary_data_become_exact_bytes() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("web".into());
        cm.metadata.uid = Some("u1".into());
        cm.metadata.resource_version = Some("7".into());
        cm.data = Some([("a.txt".to_string(), "hello".to_string())].into());
        cm.binary_data = Some([("b.bin".to_string(), ByteString(vec![0, 159, 255]))].into());
        let input = Input::ConfigMap(Arc::new(cm));
        assert_eq!(input.version(), "u1/7");
        let object = input.to_object();
        assert_eq!(object.entries["a.txt"], Bytes::from_static(b"hello"));
        assert_eq!(object.entries["b.bin"], Bytes::from_static(&[0, 159, 255]));
        assert!(object.duplicate_keys.is_empty());
    }

    #[test]
    fn a_key_in_both_data_and_binary_data_is_flagged() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("dup".into());
        cm.data = Some([("k".to_string(), "x".to_string())].into());
        cm.binary_data = Some([("k".to_string(), ByteString(vec![1]))].into());
        let object = Input::ConfigMap(Arc::new(cm)).to_object();
        assert_eq!(object.duplicate_keys, vec!["k".to_string()]);
    }
}
