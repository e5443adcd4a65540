//! Server-side validation of ConfigMaps and Secrets, mirroring the real API server's rules.

use serde_json::{Map, Value};

use crate::ApiError;
use crate::util::{b64_decode, b64_encode};

/// Maximum total size of `data` + `binaryData` (ConfigMap) or `data` (Secret).
pub(crate) const MAX_DATA_BYTES: usize = 1024 * 1024;

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`, ≤ 253 characters.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// RFC 1123 label (used for namespaces): ≤ 63 characters, no dots.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    is_label(s)
}

/// Validates one ConfigMap/Secret data key; returns the error detail.
pub(crate) fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err(format!("Invalid value: {key:?}: must be no more than 253 characters"));
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(format!(
            "Invalid value: {key:?}: a valid config key must consist of alphanumeric characters, \
             '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for \
             validation is '[-._a-zA-Z0-9]+')"
        ));
    }
    if key == "." || key == ".." {
        return Err(format!("Invalid value: {key:?}: must not be '.' or '..'"));
    }
    if key.starts_with("..") {
        return Err(format!("Invalid value: {key:?}: must not start with '..'"));
    }
    Ok(())
}

/// Kubernetes kind for a supported plural.
pub(crate) fn kind_for(plural: &str) -> Option<&'static str> {
    match plural {
        "configmaps" => Some("ConfigMap"),
        "secrets" => Some("Secret"),
        "events" => Some("Event"),
        _ => None,
    }
}

/// `apiVersion` of a supported plural: events are served as `events.k8s.io/v1`.
pub(crate) fn api_version_for(plural: &str) -> &'static str {
    if plural == "events" { "events.k8s.io/v1" } else { "v1" }
}

/// Folds a Secret's `stringData` into `data` (base64) as the real server does on write.
pub(crate) fn fold_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(sd)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            data.insert(k, Value::String(b64_encode(s.as_bytes())));
        }
    }
}

/// Validates `obj` (already carrying `metadata.name`) as the real API server would.
pub(crate) fn validate(plural: &str, obj: &Value) -> Result<(), ApiError> {
    let kind = kind_for(plural).unwrap_or("Object");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let invalid = |detail: String| ApiError::Invalid(format!("{kind} {name:?} is invalid: {detail}"));
    if name.is_empty() {
        return Err(invalid("metadata.name: Required value: name or generateName is required".into()));
    }
    if !is_dns1123_subdomain(name) {
        return Err(invalid(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of \
             lower case alphanumeric characters, '-' or '.', and must start and end with an \
             alphanumeric character"
        )));
    }
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    if !is_dns1123_label(ns) {
        return Err(invalid(format!("metadata.namespace: Invalid value: {ns:?}")));
    }
    let mut total = 0usize;
    let data = obj.get("data").and_then(Value::as_object);
    for (k, v) in data.into_iter().flatten() {
        validate_key(k).map_err(|e| invalid(format!("data[{k}]: {e}")))?;
        let s = v.as_str().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{kind} in version \"v1\" cannot be handled: data[{k}] must be a string"
            ))
        })?;
        total += if plural == "secrets" {
            b64_decode(s)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{kind} in version \"v1\" cannot be handled: data[{k}]: illegal base64 data"
                    ))
                })?
                .len()
        } else {
            s.len()
        };
    }
    if plural == "configmaps" {
        let binary = obj.get("binaryData").and_then(Value::as_object);
        for (k, v) in binary.into_iter().flatten() {
            validate_key(k).map_err(|e| invalid(format!("binaryData[{k}]: {e}")))?;
            if data.is_some_and(|d| d.contains_key(k)) {
                return Err(invalid(format!(
                    "data[{k}]: Invalid value: {k:?}: duplicate of key present in binaryData"
                )));
            }
            let bytes = v.as_str().and_then(b64_decode).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{kind} in version \"v1\" cannot be handled: binaryData[{k}]: illegal base64 data"
                ))
            })?;
            total += bytes.len();
        }
    }
    if total > MAX_DATA_BYTES {
        return Err(invalid(format!("[]: Too long: may not be more than {MAX_DATA_BYTES} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "a.b", "A_B-c"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "..data", "../x", "a/b", "a b", &"x".repeat(254)] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        assert!(validate_key(&"x".repeat(253)).is_ok());
        assert!(validate_key(".hidden").is_ok());
    }

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(is_dns1123_label("default"));
        assert!(!is_dns1123_label("a.b"));
    }
}
