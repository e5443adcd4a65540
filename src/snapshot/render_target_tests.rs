//! Tests of the target-dir annotation: files moved, directories shared, collisions
//! inside a shared directory, and the annotation's own rules.

use super::tests::{cm, content, paths, renderer, with_target};
use super::*;
use crate::source::{Delta, Input};

#[test]
fn the_annotation_moves_an_objects_files_in_both_layouts() {
    for layout in [Layout::ByName, Layout::Flat] {
        let mut r = renderer(layout);
        let out = r.render(&[with_target(cm("web", "1", &[("nginx.conf", "x")]), "conf.d")]);
        assert_eq!(paths(&out), ["conf.d/nginx.conf"], "{layout}");
        assert_eq!(content(&out, "conf.d/nginx.conf"), "x");
        assert_eq!(out.snapshot.top_level().collect::<Vec<_>>(), ["conf.d"]);
        assert!(out.rejections.is_empty());
    }
}

#[test]
fn objects_naming_the_same_dir_share_it() {
    for layout in [Layout::ByName, Layout::Flat] {
        let mut r = renderer(layout);
        let out = r.render(&[
            with_target(cm("a", "1", &[("a.conf", "1")]), "rules"),
            with_target(cm("b", "1", &[("b.conf", "2")]), "rules"),
            cm("c", "1", &[("c.conf", "3")]),
        ]);
        let want: &[&str] = match layout {
            Layout::ByName => &["c/c.conf", "rules/a.conf", "rules/b.conf"],
            Layout::Flat => &["c.conf", "rules/a.conf", "rules/b.conf"],
        };
        assert_eq!(paths(&out), want, "{layout}");
        assert_eq!(content(&out, "rules/b.conf"), "2");
        assert_eq!((out.snapshot.object_count(), out.snapshot.file_count()), (3, 3));
        assert!(out.rejections.is_empty());
    }
}

#[test]
fn an_unannotated_object_shares_its_by_name_dir_with_objects_naming_it() {
    let mut r = renderer(Layout::ByName);
    let out = r.render(&[
        cm("web", "1", &[("nginx.conf", "x")]),
        with_target(cm("extra", "1", &[("extra.conf", "y")]), "web"),
    ]);
    assert_eq!(paths(&out), ["web/extra.conf", "web/nginx.conf"]);
    assert!(out.rejections.is_empty());
}

#[test]
fn a_key_twice_in_a_shared_dir_rejects_the_change_and_keeps_its_previous_version() {
    let mut r = renderer(Layout::ByName);
    let a = with_target(cm("a", "1", &[("x.conf", "from-a")]), "rules");
    let b1 = with_target(cm("b", "1", &[("y.conf", "from-b")]), "rules");
    r.render_delta(Delta::Full(vec![a.clone(), b1]));
    let b2 = with_target(cm("b", "2", &[("x.conf", "b-too")]), "rules");
    let out = r.render_delta(Delta::Changed(vec![(b2.id(), Some(b2.clone()))]));
    assert_eq!(paths(&out), ["rules/x.conf", "rules/y.conf"]);
    assert_eq!(content(&out, "rules/x.conf"), "from-a");
    let rejection = &out.rejections[0];
    assert_eq!(rejection.id.name, "b");
    assert!(rejection.kept_previous);
    assert!(
        matches!(&rejection.reason, Reason::Collision { entry, other } if entry == "rules/x.conf" && other.name == "a")
    );
    let full = r.render(&[a, b2]);
    assert!(full.rejections.is_empty(), "reported once per version");
    assert_eq!(full.snapshot.hash, out.snapshot.hash);
}

#[test]
fn a_shared_dir_and_a_file_of_the_same_name_collide() {
    let mut r = renderer(Layout::Flat);
    let out =
        r.render(&[cm("a", "1", &[("rules", "file")]), with_target(cm("b", "1", &[("x", "y")]), "rules")]);
    assert_eq!(paths(&out), ["rules"]);
    assert_eq!(out.rejections[0].reason.label(), "collision");
}

#[test]
fn two_unannotated_objects_of_one_name_still_collide() {
    let mut r = renderer(Layout::ByName);
    let secret = {
        let mut s = k8s_openapi::api::core::v1::Secret::default();
        s.metadata.name = Some("web".into());
        s.metadata.resource_version = Some("1".into());
        s.data = Some([("other".to_string(), k8s_openapi::ByteString(b"s".to_vec()))].into());
        Input::Secret(Arc::new(s))
    };
    let out = r.render(&[cm("web", "1", &[("nginx.conf", "x")]), secret]);
    assert_eq!(paths(&out), ["web/nginx.conf"]);
    assert_eq!(out.rejections[0].reason.label(), "collision");
}

#[test]
fn bad_target_dirs_are_rejected_and_the_previous_files_stay() {
    for bad in ["a/b", "/etc", "..", ".", "..data", "", "sp ace", &"x".repeat(254)] {
        let mut r = renderer(Layout::ByName);
        r.render(&[with_target(cm("a", "1", &[("k", "v1")]), "good")]);
        let out = r.render(&[with_target(cm("a", "2", &[("k", "v2")]), bad)]);
        assert_eq!(paths(&out), ["good/k"], "{bad}");
        assert_eq!(content(&out, "good/k"), "v1");
        let rejection = &out.rejections[0];
        assert_eq!(rejection.reason.label(), "bad_target_dir", "{bad}");
        assert!(rejection.kept_previous);
        assert!(rejection.reason.to_string().contains("configsnap.io/target-dir"));
    }
}

#[test]
fn removing_the_annotation_moves_the_files_back() {
    let mut r = renderer(Layout::ByName);
    let before = r.render(&[cm("web", "1", &[("k", "v")])]).snapshot;
    let moved = with_target(cm("web", "2", &[("k", "v")]), "elsewhere");
    let out = r.render_delta(Delta::Changed(vec![(moved.id(), Some(moved))]));
    assert_eq!(paths(&out), ["elsewhere/k"]);
    let back = cm("web", "3", &[("k", "v")]);
    let out = r.render_delta(Delta::Changed(vec![(back.id(), Some(back))]));
    assert_eq!(paths(&out), ["web/k"]);
    assert_eq!(out.snapshot.hash, before.hash, "the same content as before the move");
}

#[test]
fn deleting_one_member_of_a_shared_dir_leaves_the_others() {
    let mut r = renderer(Layout::ByName);
    let a = with_target(cm("a", "1", &[("a.conf", "1")]), "rules");
    let b = with_target(cm("b", "1", &[("b.conf", "2")]), "rules");
    let both = r.render_delta(Delta::Full(vec![a.clone(), b])).snapshot;
    let out = r.render_delta(Delta::Changed(vec![(a.id(), None)]));
    assert_eq!(paths(&out), ["rules/b.conf"]);
    assert_eq!(out.snapshot.object_count(), 1);
    assert_eq!(out.snapshot.removed_since(&both), ["a"]);
    assert!(out.snapshot.changed_since(Some(&both)).is_empty());
}

#[test]
fn a_collision_loser_in_a_shared_dir_gets_in_once_the_owner_goes() {
    let mut r = renderer(Layout::Flat);
    let a = with_target(cm("a", "1", &[("k", "from-a")]), "d");
    let b = with_target(cm("b", "1", &[("k", "from-b")]), "d");
    r.render_delta(Delta::Full(vec![a.clone()]));
    let out = r.render_delta(Delta::Changed(vec![(b.id(), Some(b))]));
    assert_eq!(out.rejections.len(), 1);
    assert!(!out.rejections[0].kept_previous);
    let out = r.render_delta(Delta::Changed(vec![(a.id(), None)]));
    assert_eq!(content(&out, "d/k"), "from-b");
}
