//! Tests of the renderer: layouts, key rules, collisions, last-accepted versions.

use super::*;
use crate::source::{Delta, Input, ObjectId, SourceKind};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

pub(super) fn cm(name: &str, rv: &str, data: &[(&str, &str)]) -> Input {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.namespace = Some("ns".into());
    cm.metadata.uid = Some(format!("uid-{name}"));
    cm.metadata.resource_version = Some(rv.into());
    cm.data = Some(data.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect());
    Input::ConfigMap(Arc::new(cm))
}

fn with_mode(input: Input, mode: &str) -> Input {
    annotated(input, crate::source::FILE_MODE_ANNOTATION, mode)
}

/// `input` (a ConfigMap) with the target-dir annotation.
pub(super) fn with_target(input: Input, dir: &str) -> Input {
    annotated(input, crate::source::TARGET_DIR_ANNOTATION, dir)
}

fn annotated(input: Input, annotation: &str, value: &str) -> Input {
    let Input::ConfigMap(cm) = input else { unreachable!("test helper takes ConfigMaps") };
    let mut cm = ConfigMap::clone(&cm);
    cm.metadata.annotations.get_or_insert_default().insert(annotation.into(), value.into());
    Input::ConfigMap(Arc::new(cm))
}

pub(super) fn paths(r: &Rendered) -> Vec<String> {
    let mut paths: Vec<String> = r.snapshot.files().map(|(path, ..)| path).collect();
    paths.sort();
    paths
}

pub(super) fn content(r: &Rendered, path: &str) -> String {
    String::from_utf8(r.snapshot.read(path).expect("file present").to_vec()).expect("utf-8 test content")
}

fn mode(r: &Rendered, path: &str) -> u32 {
    r.snapshot.files().find(|(p, ..)| p == path).map(|(_, _, f)| f.mode).expect("file present")
}

pub(super) fn renderer(layout: Layout) -> Renderer {
    Renderer::new(RenderOptions { layout, ..RenderOptions::default() })
}

#[test]
fn by_name_layout_puts_keys_under_the_object_name() {
    let mut r = renderer(Layout::ByName);
    let out = r.render(&[cm("web", "1", &[("nginx.conf", "x")]), cm("api", "1", &[("a.yaml", "y")])]);
    assert_eq!(paths(&out), ["api/a.yaml", "web/nginx.conf"]);
    assert!(out.rejections.is_empty());
    assert_eq!(out.snapshot.object_count(), 2);
}

#[test]
fn file_mode_comes_from_annotation_else_default() {
    let mut r = renderer(Layout::ByName);
    let out = r.render(&[with_mode(cm("a", "1", &[("k", "v")]), "0600"), cm("b", "1", &[("k", "v")])]);
    assert_eq!(mode(&out, "a/k"), 0o600);
    assert_eq!(mode(&out, "b/k"), 0o644);
}

#[test]
fn a_bad_mode_annotation_rejects_the_object() {
    let mut r = renderer(Layout::ByName);
    let out = r.render(&[with_mode(cm("a", "1", &[("k", "v")]), "rwx")]);
    assert!(paths(&out).is_empty());
    assert_eq!(out.rejections[0].reason.label(), "bad_mode");
}

#[test]
fn unsafe_mode_annotations_are_rejected_and_the_previous_files_stay() {
    for bad in ["0777", "0666", "0", "4755"] {
        let mut r = renderer(Layout::ByName);
        r.render(&[with_mode(cm("a", "1", &[("k", "v1")]), "0640")]);
        let out = r.render(&[with_mode(cm("a", "2", &[("k", "v2")]), bad)]);
        assert_eq!(content(&out, "a/k"), "v1", "{bad}");
        assert_eq!(mode(&out, "a/k"), 0o640, "{bad}");
        let rejection = &out.rejections[0];
        assert_eq!(rejection.reason.label(), "bad_mode", "{bad}");
        assert!(rejection.kept_previous);
        let text = rejection.reason.to_string();
        assert!(text.contains("configsnap.io/file-mode") && text.contains(bad), "{text}");
    }
}

#[test]
fn names_and_keys_outside_the_api_rules_are_rejected_with_escaped_reasons() {
    let mut r = renderer(Layout::ByName);
    let long_key = "k".repeat(4097);
    let out = r.render(&[
        cm("web\nlevel=ERROR forged", "1", &[("k", "v")]),
        cm("a/b", "1", &[("k", "v")]),
        cm("newline-key", "1", &[("bad\nkey", "v")]),
        cm("esc-key", "1", &[("\u{1b}[31mred", "v")]),
        cm("nul-key", "1", &[("a\0b", "v")]),
        cm("long-key", "1", &[(long_key.as_str(), "v")]),
        cm("fine", "1", &[("k", "v")]),
    ]);
    assert_eq!(paths(&out), ["fine/k"]);
    let mut labels: Vec<&str> = out.rejections.iter().map(|r| r.reason.label()).collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        ["invalid_key", "invalid_key", "invalid_key", "invalid_key", "invalid_name", "invalid_name"]
    );
    for rejection in &out.rejections {
        let text = rejection.reason.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.len() < 300, "{text}");
    }
    let shown = |name: &str| out.rejections.iter().find(|r| r.id.name == name).map(|r| r.reason.to_string());
    assert!(shown("nul-key").is_some_and(|t| t.contains(r#""a\0b""#)), "{:?}", shown("nul-key"));
    assert!(shown("long-key").is_some_and(|t| t.contains("kkkk") && t.contains("4097")));
}

#[test]
fn invalid_key_keeps_the_previous_version_while_others_update() {
    let mut r = renderer(Layout::ByName);
    r.render(&[cm("bad", "1", &[("ok.txt", "v1")]), cm("good", "1", &[("g", "v1")])]);
    let out = r.render(&[cm("bad", "2", &[("..data", "evil")]), cm("good", "2", &[("g", "v2")])]);
    assert_eq!(paths(&out), ["bad/ok.txt", "good/g"]);
    assert_eq!(content(&out, "bad/ok.txt"), "v1");
    assert_eq!(content(&out, "good/g"), "v2");
    assert_eq!(out.rejections.len(), 1);
    assert_eq!(out.rejections[0].id.name, "bad");
    assert!(out.rejections[0].kept_previous);
    assert_eq!(out.rejections[0].reason.label(), "invalid_key");
    // The same bad version is reported once, not on every render.
    let again = r.render(&[cm("bad", "2", &[("..data", "evil")]), cm("good", "3", &[("g", "v3")])]);
    assert!(again.rejections.is_empty());
    assert_eq!(content(&again, "good/g"), "v3");
}

#[test]
fn hostile_keys_are_all_rejected() {
    for key in ["../x", "..data", "/etc/passwd", "a/b", ""] {
        let mut r = renderer(Layout::ByName);
        let out = r.render(&[cm("x", "1", &[(key, "v")])]);
        assert!(paths(&out).is_empty(), "{key:?} was accepted");
        assert_eq!(out.rejections.len(), 1, "{key:?}");
    }
}

#[test]
fn oversized_values_are_rejected() {
    let mut r = Renderer::new(RenderOptions { max_file_bytes: 4, ..RenderOptions::default() });
    let out = r.render(&[cm("x", "1", &[("k", "12345")]), cm("y", "1", &[("k", "1234")])]);
    assert_eq!(paths(&out), ["y/k"]);
    assert_eq!(out.rejections[0].reason.label(), "oversized");
}

#[test]
fn flat_collision_rejects_the_change_and_keeps_the_current_owner() {
    let mut r = renderer(Layout::Flat);
    let first = r.render(&[cm("a", "1", &[("app.conf", "from-a")]), cm("b", "1", &[("other", "b1")])]);
    assert_eq!(paths(&first), ["app.conf", "other"]);
    let out = r.render(&[
        cm("a", "1", &[("app.conf", "from-a")]),
        cm("b", "2", &[("other", "b2"), ("app.conf", "from-b")]),
    ]);
    assert_eq!(content(&out, "app.conf"), "from-a");
    assert_eq!(content(&out, "other"), "b1", "the colliding change is rejected whole");
    assert_eq!(out.rejections.len(), 1);
    let rejection = &out.rejections[0];
    assert_eq!(rejection.id.name, "b");
    assert!(
        matches!(&rejection.reason, Reason::Collision { other, entry } if other.name == "a" && entry == "app.conf")
    );
}

#[test]
fn new_objects_colliding_at_first_sync_keep_the_first_by_name() {
    let mut r = renderer(Layout::Flat);
    let out = r.render(&[cm("a", "1", &[("k", "a")]), cm("b", "1", &[("k", "b")])]);
    assert_eq!(content(&out, "k"), "a");
    assert_eq!(out.rejections.len(), 1);
    assert_eq!(out.rejections[0].id.name, "b");
}

#[test]
fn deleting_an_object_removes_its_files_and_same_content_hashes_equal() {
    let mut r = renderer(Layout::ByName);
    let one = r.render(&[cm("a", "1", &[("k", "v")]), cm("b", "1", &[("k", "v")])]);
    let two = r.render(&[cm("a", "1", &[("k", "v")])]);
    assert_eq!(paths(&two), ["a/k"]);
    assert_ne!(one.snapshot.hash, two.snapshot.hash);
    let relabelled = r.render(&[cm("a", "9", &[("k", "v")])]);
    assert_eq!(relabelled.snapshot.hash, two.snapshot.hash);
}

#[test]
fn seeded_versions_survive_an_invalid_object_at_start() {
    let mut first = renderer(Layout::ByName);
    let on_disk = first.render(&[cm("a", "1", &[("k", "good")])]).snapshot;
    let mut restarted = renderer(Layout::ByName);
    restarted.seed(&on_disk);
    let out = restarted.render(&[cm("a", "2", &[("../k", "bad")])]);
    assert_eq!(out.snapshot.hash, on_disk.hash);
}

#[test]
fn mode_parsing_table() {
    for (text, want) in [
        ("0644", Ok(0o644)),
        ("600", Ok(0o600)),
        ("0o755", Ok(0o755)),
        ("0664", Ok(0o664)),
        ("0400", Ok(0o400)),
        ("999", Err(ModeError::NotOctal)),
        ("", Err(ModeError::NotOctal)),
        ("-644", Err(ModeError::NotOctal)),
        ("+644", Err(ModeError::NotOctal)),
        ("00000000644", Err(ModeError::NotOctal)),
        ("1777", Err(ModeError::Special)),
        ("4755", Err(ModeError::Special)),
        ("2644", Err(ModeError::Special)),
        ("0777", Err(ModeError::WorldWritable)),
        ("0666", Err(ModeError::WorldWritable)),
        ("0002", Err(ModeError::WorldWritable)),
        ("0", Err(ModeError::Zero)),
        ("0000", Err(ModeError::Zero)),
    ] {
        assert_eq!(parse_mode(text), want, "{text:?}");
    }
}

#[test]
fn values_are_held_in_the_cached_object_not_copied() {
    let mut r = renderer(Layout::ByName);
    let input = cm("web", "1", &[("k", "shared bytes")]);
    let Input::ConfigMap(cached) = &input else { unreachable!("a ConfigMap") };
    let out = r.render(std::slice::from_ref(&input));
    let object = out.snapshot.objects().next().expect("one object");
    let crate::snapshot::object::Content::Memory(Input::ConfigMap(held)) = object.payload() else {
        panic!("a fresh object holds the source's object")
    };
    assert!(Arc::ptr_eq(&held, cached), "the snapshot must hold the cached object itself");
    assert_eq!(out.snapshot.read("web/k"), Some(b"shared bytes".to_vec()));
}

#[test]
fn an_unchanged_render_reuses_the_same_tree() {
    let mut r = renderer(Layout::ByName);
    let inputs: Vec<Input> = (0..200).map(|i| cm(&format!("cm{i}"), "1", &[("k", "v")])).collect();
    let first = r.render(&inputs).snapshot;
    let again = r.render(&inputs).snapshot;
    assert_eq!(again.tree().changed_leaves(first.tree()).count(), 0);
    let mut changed = inputs.clone();
    changed[3] = cm("cm3", "2", &[("k", "w")]);
    let third = r.render(&changed).snapshot;
    assert_eq!(third.tree().changed_leaves(first.tree()).count(), 1);
    assert_eq!(third.changed_since(Some(&first)).len(), 1);
}

/// Renders every step both ways, from scratch and by changes only: same content.
#[test]
fn rendering_only_the_changes_matches_rendering_everything() {
    for layout in [Layout::ByName, Layout::Flat] {
        let (mut full, mut delta) = (renderer(layout), renderer(layout));
        let mut objects: BTreeMap<String, Input> = BTreeMap::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..400_u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let name = format!("o{}", state % 12);
            let key = ["a", "b", "shared", "..bad"][usize::try_from((state >> 8) % 4).expect("small")];
            let target = [None, None, None, Some("o1"), Some("dir"), Some("a"), Some("..bad")]
                [usize::try_from((state >> 16) % 7).expect("small")];
            let mut changes = Vec::new();
            if state.is_multiple_of(5) {
                objects.remove(&name);
                changes.push((ObjectId { kind: SourceKind::ConfigMap, name: name.clone() }, None));
            } else {
                let mut input = cm(&name, &step.to_string(), &[(key, &format!("v{step}"))]);
                if let Some(target) = target {
                    input = with_target(input, target);
                }
                objects.insert(name.clone(), input.clone());
                changes.push((input.id(), Some(input)));
            }
            let inputs: Vec<Input> = objects.values().cloned().collect();
            let expected = full.render(&inputs).snapshot;
            let got = delta.render_delta(Delta::Changed(changes)).snapshot;
            assert_eq!(got.hash, expected.hash, "{layout} step {step}");
        }
    }
}

#[test]
fn a_collision_loser_gets_the_entry_once_its_owner_goes() {
    let mut r = renderer(Layout::Flat);
    let a = cm("a", "1", &[("k", "from-a")]);
    let b = cm("b", "1", &[("k", "from-b")]);
    r.render_delta(Delta::Full(vec![a.clone()]));
    let out = r.render_delta(Delta::Changed(vec![(b.id(), Some(b.clone()))]));
    assert_eq!(out.rejections.len(), 1, "b collides with a");
    assert_eq!(content(&out, "k"), "from-a");
    let out = r.render_delta(Delta::Changed(vec![(a.id(), None)]));
    assert_eq!(content(&out, "k"), "from-b", "b takes the entry when a goes");
}

#[test]
fn would_change_tells_a_content_change_from_a_relabel() {
    let mut r = renderer(Layout::ByName);
    r.render_delta(Delta::Full(vec![cm("web", "1", &[("k", "v")])]));
    let relabel = cm("web", "2", &[("k", "v")]);
    assert!(!r.would_change(&Delta::Changed(vec![(relabel.id(), Some(relabel))])));
    let edit = cm("web", "3", &[("k", "w")]);
    assert!(r.would_change(&Delta::Changed(vec![(edit.id(), Some(edit))])));
    assert!(r.would_change(&Delta::Changed(vec![(cm("web", "1", &[]).id(), None)])));
}

fn secret(name: &str, uid: &str, data: &[(&str, &str)]) -> Input {
    use k8s_openapi::ByteString;
    let mut secret = k8s_openapi::api::core::v1::Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some("ns".into());
    secret.metadata.uid = Some(uid.into());
    secret.metadata.resource_version = Some("1".into());
    secret.data =
        Some(data.iter().map(|(k, v)| ((*k).to_string(), ByteString(v.as_bytes().to_vec()))).collect());
    Input::Secret(Arc::new(secret))
}

#[test]
fn secret_digests_are_salted_by_uid_so_names_on_disk_reveal_no_guessable_hash() {
    let digest = |input: Input| {
        let out = renderer(Layout::ByName).render(&[input]);
        out.snapshot.objects().next().expect("one object").digest
    };
    let same_value = [("password", "hunter2")];
    assert_ne!(
        digest(secret("creds", "uid-1", &same_value)),
        digest(secret("creds", "uid-2", &same_value)),
        "a reader who knows name, key, mode and size must still not be able to test a guess"
    );
    assert_eq!(digest(secret("creds", "uid-1", &same_value)), digest(secret("creds", "uid-1", &same_value)));
    let mut configmap = cm("web", "1", &[("k", "v")]);
    let first = digest(configmap.clone());
    let Input::ConfigMap(inner) = &mut configmap else { unreachable!("a ConfigMap") };
    Arc::make_mut(inner).metadata.uid = Some("another-uid".into());
    assert_eq!(digest(configmap), first, "ConfigMaps are public anyway: their dirs stay shared");
}
