//! Convenience builders for ConfigMap and Secret JSON objects.

use serde_json::{Map, Value, json};

use crate::util::b64_encode;

/// The metadata both builders share.
#[derive(Debug, Clone, Default)]
struct Meta {
    namespace: String,
    name: String,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
}

impl Meta {
    fn new(namespace: &str, name: &str) -> Self {
        Self { namespace: namespace.into(), name: name.into(), ..Self::default() }
    }

    fn to_json(&self) -> Value {
        let mut m = json!({"name": self.name, "namespace": self.namespace});
        if !self.labels.is_empty() {
            m["labels"] = Value::Object(self.labels.clone());
        }
        if !self.annotations.is_empty() {
            m["annotations"] = Value::Object(self.annotations.clone());
        }
        m
    }
}

/// `label` and `annotation`, the same on every builder with a `meta` field.
macro_rules! metadata_setters {
    () => {
        /// Adds a label.
        pub fn label(mut self, key: &str, value: &str) -> Self {
            self.meta.labels.insert(key.into(), json!(value));
            self
        }

        /// Adds an annotation.
        pub fn annotation(mut self, key: &str, value: &str) -> Self {
            self.meta.annotations.insert(key.into(), json!(value));
            self
        }
    };
}

/// Builds a `v1/ConfigMap` as a `serde_json::Value`; see [`crate::FakeApiServer::configmap`].
#[derive(Debug, Clone, Default)]
pub struct ConfigMapBuilder {
    meta: Meta,
    data: Map<String, Value>,
    binary: Map<String, Value>,
    immutable: Option<bool>,
}

impl ConfigMapBuilder {
    /// Starts a ConfigMap `namespace/name` with no data.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { meta: Meta::new(namespace, name), ..Self::default() }
    }

    metadata_setters!();

    /// Adds a UTF-8 entry to `data`.
    pub fn data(mut self, key: &str, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), Value::String(value.into()));
        self
    }

    /// Adds a binary entry to `binaryData` (base64-encoded here).
    pub fn binary(mut self, key: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.binary.insert(key.into(), Value::String(b64_encode(bytes.as_ref())));
        self
    }

    /// Sets `immutable`.
    pub fn immutable(mut self, immutable: bool) -> Self {
        self.immutable = Some(immutable);
        self
    }

    /// Produces the JSON object (`kind`, `apiVersion`, `metadata`, and non-empty `data`/`binaryData`).
    pub fn build(self) -> Value {
        let mut v = json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": self.meta.to_json(),
        });
        if !self.data.is_empty() {
            v["data"] = Value::Object(self.data);
        }
        if !self.binary.is_empty() {
            v["binaryData"] = Value::Object(self.binary);
        }
        if let Some(i) = self.immutable {
            v["immutable"] = json!(i);
        }
        v
    }
}

/// Builds a `v1/Secret` as a `serde_json::Value`; see [`crate::FakeApiServer::secret`].
#[derive(Debug, Clone, Default)]
pub struct SecretBuilder {
    meta: Meta,
    data: Map<String, Value>,
    type_: Option<String>,
}

impl SecretBuilder {
    /// Starts an `Opaque` Secret `namespace/name` with no data.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { meta: Meta::new(namespace, name), ..Self::default() }
    }

    metadata_setters!();

    /// Adds an entry to `data` (base64-encoded here, as the API expects).
    pub fn data(mut self, key: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.data.insert(key.into(), Value::String(b64_encode(bytes.as_ref())));
        self
    }

    /// Sets the Secret `type` (default `Opaque`).
    pub fn type_(mut self, t: &str) -> Self {
        self.type_ = Some(t.into());
        self
    }

    /// Produces the JSON object.
    pub fn build(self) -> Value {
        let mut v = json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": self.meta.to_json(),
            "type": self.type_.unwrap_or_else(|| "Opaque".into()),
        });
        if !self.data.is_empty() {
            v["data"] = Value::Object(self.data);
        }
        v
    }
}
