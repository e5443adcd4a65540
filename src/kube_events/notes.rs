//! What each Event says and whom it regards (pure, no I/O): object references, messages
//! bounded to what the API accepts, and free text that may quote file content withheld
//! when Secrets are watched.

use super::{Notice, Pod};
use crate::outcome::{ContentHash, Object, Rejection, SourceKind};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::EventType;

/// Longest note: the API allows 1 kB.
pub(crate) const NOTE_BYTES: usize = 1000;
/// At most this many objects are regarded by one snapshot-level happening (bounded API
/// writes when a first sync or a big edit changes thousands of objects).
pub(crate) const MAX_REGARDED: usize = 10;

/// The Pod as an `ObjectReference` (the `related` object of every Event).
#[must_use]
pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(pod.namespace.clone()),
        name: Some(pod.name.clone()),
        uid: pod.uid.clone(),
        ..ObjectReference::default()
    }
}

/// An API object as an `ObjectReference`; `None` for directory sources (not API objects).
#[must_use]
pub(crate) fn reference(
    kind: SourceKind,
    namespace: &str,
    name: &str,
    uid: &str,
    resource_version: &str,
) -> Option<ObjectReference> {
    if kind == SourceKind::Directory || namespace.is_empty() {
        return None;
    }
    let some = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some(kind.to_string()),
        namespace: Some(namespace.to_owned()),
        name: Some(name.to_owned()),
        uid: some(uid),
        resource_version: some(resource_version),
        ..ObjectReference::default()
    })
}

/// References to the objects `objects`, at most [`MAX_REGARDED`].
#[must_use]
pub(crate) fn regarded<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Vec<ObjectReference> {
    objects
        .into_iter()
        .filter_map(|o| {
            let s = &o.source;
            reference(s.kind, &s.namespace, &s.name, &s.uid, &s.resource_version)
        })
        .take(MAX_REGARDED)
        .collect()
}

/// Warning `Rejected` on the object: which rule its new version broke.
#[must_use]
pub(crate) fn rejected(rejection: &Rejection) -> Option<Notice> {
    let id = &rejection.id;
    let regarding =
        reference(id.kind, &rejection.namespace, &id.name, &rejection.uid, &rejection.resource_version)?;
    let kept = if rejection.kept_previous { "its previous files stay" } else { "it is not written" };
    let note = format!(
        "{} {} rejected by configsnap: {}; {kept} until it is fixed",
        id.kind,
        crate::keypath::Escaped(&id.name),
        rejection.reason
    );
    Some(warning("Rejected", "Render", note, regarding))
}

/// Warning `WriteFailed` on an object whose new files did not fit on the volume.
#[must_use]
pub(crate) fn without_room(object: &Object, error: &str) -> Option<Notice> {
    let s = &object.source;
    let regarding = reference(s.kind, &s.namespace, &s.name, &s.uid, &s.resource_version)?;
    let note = format!(
        "{} {}: its new files do not fit on configsnap's volume ({error}); its previous files stay, every other \
         change is applied, and the write is retried until it fits",
        object.id.kind,
        crate::keypath::Escaped(&object.id.name),
    );
    Some(warning("WriteFailed", "Swap", note, regarding))
}

/// Warning `ValidationFailed` (`syntax`, `command`) or `ReloadFailed` (the rest) on each
/// object that changed in the refused snapshot. `public` is the detail safe to show when
/// Secrets are watched, `detail` the full one.
#[must_use]
pub(crate) fn refused(
    regarding: &[ObjectReference],
    hash: ContentHash,
    label: &str,
    detail: &str,
    public: &str,
    redact: bool,
) -> Vec<Notice> {
    let (reason, action, what) = match label {
        "syntax" | "command" => ("ValidationFailed", "Validate", "validation refused the snapshot"),
        _ => ("ReloadFailed", "Reload", "the app refused the reload of the snapshot"),
    };
    let detail = if redact { public } else { detail };
    let note = format!("{what} {hash} ({label}): {detail}; the files on disk stay as they were");
    regarding.iter().map(|r| warning(reason, action, note.clone(), r.clone())).collect()
}

/// Warning `RolledBack` on each object of the refused snapshot: what was restored.
#[must_use]
pub(crate) fn rolled_back(regarding: &[ObjectReference], bad: ContentHash, good: ContentHash) -> Vec<Notice> {
    let note = format!(
        "the app refused snapshot {bad}; configsnap restored the last good snapshot {good} and reloaded the app; \
         this content stays refused until the object changes"
    );
    regarding.iter().map(|r| warning("RolledBack", "Reload", note.clone(), r.clone())).collect()
}

/// Warning `SelectionHeld` on each object that went away (or the Pod when none is known).
#[must_use]
pub(crate) fn held(regarding: &[ObjectReference], message: &str) -> Vec<Notice> {
    let note = format!("empty selection held: {message}");
    regarding.iter().map(|r| warning("SelectionHeld", "Swap", note.clone(), r.clone())).collect()
}

/// Normal `Applied` on each changed object: its content in the new snapshot.
#[must_use]
pub(crate) fn applied(objects: &[&Object], hash: ContentHash) -> Vec<Notice> {
    objects
        .iter()
        .take(MAX_REGARDED)
        .filter_map(|o| {
            let s = &o.source;
            let regarding = reference(s.kind, &s.namespace, &s.name, &s.uid, &s.resource_version)?;
            let digest: String = o.digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let note = format!(
                "resourceVersion {} applied: object content {digest}, snapshot {hash}",
                s.resource_version
            );
            Some(Notice { type_: EventType::Normal, reason: "Applied", action: "Swap", note, regarding })
        })
        .collect()
}

fn warning(reason: &'static str, action: &'static str, note: String, regarding: ObjectReference) -> Notice {
    Notice { type_: EventType::Warning, reason, action, note: bounded(note), regarding }
}

/// `note` cut at a char boundary within [`NOTE_BYTES`], with `…` when cut.
fn bounded(mut note: String) -> String {
    if note.len() > NOTE_BYTES {
        let mut end = NOTE_BYTES - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_output_is_withheld_but_the_exit_code_stays() {
        let cases = [
            (
                "validation command exited with 1: password=hunter2",
                "validation command exited with 1 (output withheld: Secrets are watched)",
            ),
            ("webhook http://127.0.0.1/reload answered 500", "webhook http://127.0.0.1/reload answered 500"),
            (
                "reload command exited with 2: x; webhook timed out",
                "reload command exited with 2 (output withheld: Secrets are watched); webhook timed out",
            ),
            (
                "reload command was killed by a signal: out",
                "reload command was killed by a signal (output withheld: Secrets are watched)",
            ),
        ];
        for (detail, want) in cases {
            assert_eq!(crate::outcome::without_output(detail), want, "{detail}");
        }
    }

    #[test]
    fn notes_stay_within_what_the_api_accepts() {
        let note = bounded("é".repeat(NOTE_BYTES));
        assert!(note.len() <= NOTE_BYTES && note.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn directory_sources_are_not_api_objects() {
        assert!(reference(SourceKind::Directory, "", "web", "", "").is_none());
        let cm =
            reference(SourceKind::ConfigMap, "ns", "web", "u1", "7").expect("a ConfigMap is an API object");
        assert_eq!(cm.kind.as_deref(), Some("ConfigMap"));
        assert_eq!(cm.api_version.as_deref(), Some("v1"));
        assert_eq!(cm.resource_version.as_deref(), Some("7"));
    }
}
