//! PATCH of one object, as `kubectl patch` and `kubectl edit` send it: JSON merge patch
//! (RFC 7386) and strategic merge patch, which for the maps of a ConfigMap or Secret
//! (`data`, `binaryData`, labels, annotations) is the same merge. Other patch types (JSON
//! patch, apply) are refused with 400 BadRequest.

use serde_json::Value;

use crate::ApiError;
use crate::server::Shared;
use crate::store::PutMode;

/// Media types accepted, by their `Content-Type`.
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

/// Applies `body` (of `content_type`) to the stored object; the result is written as an
/// update (a new resourceVersion, a MODIFIED watch event).
pub(crate) fn apply(
    shared: &Shared,
    plural: &str,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media != MERGE && media != STRATEGIC {
        return Err(ApiError::BadRequest(format!(
            "the fake API server accepts {MERGE} and {STRATEGIC} patches, not {media:?}"
        )));
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    let current = shared
        .store_for(plural)
        .get(plural, ns, name)
        .ok_or_else(|| ApiError::NotFound(format!("{plural} {name:?} not found")))?;
    let mut object = (*current).clone();
    merge(&mut object, &patch);
    // Identity is not patchable; a resourceVersion in the patch is a precondition.
    let precondition = patch.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from);
    for (key, value) in [("name", name), ("namespace", ns)] {
        object["metadata"][key] = Value::from(value);
    }
    object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    crate::write_object(shared, plural, object, PutMode::Update(precondition), true).map(|o| (*o).clone())
}

/// RFC 7386: objects merge key by key, `null` deletes, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "y"}}});
        merge(
            &mut doc,
            &json!({"data": {"a": "9", "b": null, "c": "3"}, "metadata": {"labels": {"z": "w"}}}),
        );
        assert_eq!(doc, json!({"data": {"a": "9", "c": "3"}, "metadata": {"labels": {"x": "y", "z": "w"}}}));
    }
}
