use super::*;
use k8s_openapi::api::core::v1::ConfigMap;

fn cm(name: &str, rv: &str, value: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.uid = Some(format!("uid-{name}"));
    cm.metadata.resource_version = Some(rv.into());
    cm.data = Some([("k".to_string(), value.to_string())].into());
    cm
}

fn listed(cache: &Cache<ConfigMap>, objects: &[ConfigMap]) {
    cache.apply(&watcher::Event::Init);
    for object in objects {
        cache.apply(&watcher::Event::InitApply(object.clone()));
    }
    cache.apply(&watcher::Event::InitDone);
}

fn all(_: &str) -> bool {
    true
}

/// name → (settled, value of key `k`), for every current object.
fn state(cache: &Cache<ConfigMap>) -> Vec<(String, bool, Option<Vec<u8>>)> {
    let mut out: Vec<_> = cache
        .current(all)
        .iter()
        .map(|i| (i.id().name, i.is_settled(), i.value("k").map(<[u8]>::to_vec)))
        .collect();
    out.sort();
    out
}

#[test]
fn bytes_are_dropped_only_after_the_versions_taken_were_rendered() {
    let cache = Cache::new();
    listed(&cache, &[cm("a", "1", "va"), cm("b", "1", "vb")]);
    let Delta::Full(inputs) = cache.take(all) else { panic!("the first take is everything") };
    assert_eq!(inputs.len(), 2);
    assert!(inputs.iter().all(|i| i.value("k").is_some()), "the first render sees every value");
    cache.apply(&watcher::Event::Apply(cm("b", "2", "vb2")));
    cache.settle();
    assert_eq!(
        state(&cache),
        vec![("a".into(), true, None), ("b".into(), false, Some(b"vb2".to_vec()))],
        "b's new version came after the take: it keeps its bytes"
    );
    let Delta::Changed(changed) = cache.take(all) else { panic!("only b changed") };
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].1.as_ref().and_then(|i| i.value("k")), Some(&b"vb2"[..]));
    cache.settle();
    assert!(state(&cache).iter().all(|(_, settled, value)| *settled && value.is_none()));
}

#[test]
fn a_settled_version_keeps_its_identity_and_version() {
    let cache = Cache::new();
    listed(&cache, &[cm("a", "7", "va")]);
    let Delta::Full(inputs) = cache.take(all) else { panic!("everything") };
    let fresh = inputs[0].clone();
    cache.settle();
    let settled = cache.current(all).remove(0);
    assert!(settled.is_settled());
    assert_eq!((settled.id(), settled.version()), (fresh.id(), fresh.version()));
    assert_eq!((settled.uid(), settled.resource_version()), ("uid-a".into(), "7".into()));
}

#[test]
fn a_peek_lets_go_of_nothing_and_a_relist_brings_bytes_back() {
    let cache = Cache::new();
    listed(&cache, &[cm("a", "1", "va")]);
    assert!(matches!(cache.peek(all), Delta::Full(_)));
    cache.settle();
    assert_eq!(state(&cache), vec![("a".into(), false, Some(b"va".to_vec()))], "peeked, not taken");
    let _ = cache.take(all);
    cache.settle();
    assert_eq!(state(&cache), vec![("a".into(), true, None)]);
    listed(&cache, &[cm("a", "1", "va"), cm("c", "1", "vc")]);
    let Delta::Full(inputs) = cache.take(all) else { panic!("a relist renders everything") };
    assert!(inputs.iter().all(|i| !i.is_settled()), "listed again, with bytes");
}

#[test]
fn a_delete_is_a_change_to_nothing_and_unselected_names_are_left_out() {
    let cache = Cache::new();
    listed(&cache, &[cm("a", "1", "va"), cm("b", "1", "vb")]);
    let _ = cache.take(all);
    cache.apply(&watcher::Event::Delete(cm("a", "1", "va")));
    cache.apply(&watcher::Event::Apply(cm("b", "2", "vb2")));
    let Delta::Changed(mut changed) = cache.take(|name| name != "b") else { panic!("names") };
    changed.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|(_, input)| input.is_none()), "a is gone, b is not selected");
}
