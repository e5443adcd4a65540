//! Property tests ("fuzzing" on the stable toolchain) of every parser that sees untrusted
//! bytes: key, path and name rules, the escaping of untrusted strings, manifests, label
//! selectors, durations and file modes. Each must never panic, and what it accepts must
//! keep its promise. `CONFIGSNAP_FUZZ_CASES` sets the cases per target (default 256; CI
//! runs more for a bounded time, see `.ci/run`). A failure found here stays below as a
//! plain regression test.

use crate::cli::{DurationArg, FileMode};
use crate::keypath;
use crate::snapshot::manifest::{ObjectManifest, RootManifest};
use proptest::prelude::*;
use std::time::Duration;

/// Cases per property: `CONFIGSNAP_FUZZ_CASES`, else 256.
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("CONFIGSNAP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    // No persistence files in the source tree: regressions are kept as named tests.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// For properties that build directories on disk (~50 ms a case): an eighth as many.
pub(crate) fn fs_config() -> ProptestConfig {
    let base = config();
    ProptestConfig { cases: (base.cases / 8).max(8), ..base }
}

/// Strings biased towards what breaks path and log handling.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[./a-zA-Z0-9\\-_]{0,40}",
        "(\\.\\.|\\.|/|a|\\x00|\\n|\\x1b|é){0,30}",
        proptest::collection::vec(any::<char>(), 250..300).prop_map(|c| c.into_iter().collect()),
        (0usize..5000).prop_map(|n| "k".repeat(n)),
    ]
}

/// A valid object manifest with arbitrary (hostile) paths, then serialized.
fn object_manifest_json() -> impl Strategy<Value = Vec<u8>> {
    (hostile_string(), any::<u64>(), any::<u32>()).prop_map(|(path, size, mode)| {
        serde_json::json!({
            "format": 1,
            "source": {"kind": "ConfigMap", "namespace": "ns", "name": "web", "uid": "u", "resourceVersion": "1"},
            "files": [{"path": path, "size": size, "mode": mode, "sha256": "00".repeat(32)}],
        })
        .to_string()
        .into_bytes()
    })
}

/// Bytes with a few of them overwritten, cut or extended.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len().max(1);
    (
        proptest::collection::vec((0..len, any::<u8>()), 0..6),
        0..=len,
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(flips, cut, tail)| {
            let mut bytes = base.clone();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            bytes.truncate(cut);
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_rules_never_panic_and_accepted_keys_are_safe(key in hostile_string()) {
        let as_key = keypath::validate_key(&key);
        let as_path = keypath::validate_path(&key);
        if as_key.is_ok() {
            prop_assert!(as_path.is_ok());
            prop_assert!(key.len() <= keypath::MAX_API_NAME_BYTES);
            prop_assert!(!key.contains('/') && !key.starts_with("..") && key != ".");
        }
        if as_path.is_ok() {
            prop_assert!(!key.starts_with('/') && !key.contains('\0'));
            prop_assert!(key.split('/').all(|e| !matches!(e, "" | "." | "..")));
        }
        for err in [as_key.err(), as_path.err()].into_iter().flatten() {
            let text = err.to_string();
            prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            prop_assert!(text.len() < 1_200, "{}", text.len());
        }
    }

    #[test]
    fn accepted_names_are_dns_subdomains(name in hostile_string()) {
        if keypath::validate_name(&name).is_ok() {
            prop_assert!(!name.is_empty() && name.len() <= 253);
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            prop_assert!(keypath::validate_path(&name).is_ok());
        }
    }

    #[test]
    fn escaped_strings_fit_on_one_short_line(s in hostile_string()) {
        let shown = keypath::escape(&s);
        prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
        prop_assert!(shown.len() < 1_100);
        let field = keypath::Escaped(&s).to_string();
        prop_assert!(!field.chars().any(char::is_control), "{field:?}");
        prop_assert!(field.len() < 3_000);
    }

    #[test]
    fn manifests_parse_arbitrary_bytes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = RootManifest::parse(&bytes);
        let _ = ObjectManifest::parse(&bytes);
    }

    #[test]
    fn mutated_object_manifests_parse_without_panicking(bytes in object_manifest_json().prop_flat_map(mutated)) {
        let _ = RootManifest::parse(&bytes);
        if let Ok(manifest) = ObjectManifest::parse(&bytes) {
            for record in &manifest.files {
                let _ = manifest.check_file(record, b"content");
            }
        }
    }

    #[test]
    fn label_selectors_never_panic(selector in prop_oneof![
        any::<String>(),
        "[a-z0-9=!,()\\. /_-]{0,60}",
        "(app|in|notin|!|=|==|!=|,|\\(|\\)| |x\\.io/y){0,20}",
    ]) {
        let _ = crate::selector::validate(&selector);
    }

    #[test]
    fn durations_and_modes_never_panic_and_stay_in_bounds(text in prop_oneof![
        any::<String>(),
        "[0-9]{0,30}(ms|s|m|h|d|)",
        "(0o)?[0-9]{0,8}",
    ]) {
        if let Ok(DurationArg(duration)) = text.parse::<DurationArg>() {
            prop_assert!(duration <= crate::cli::MAX_DURATION);
        }
        if let Ok(FileMode(mode)) = text.parse::<FileMode>() {
            prop_assert!(mode != 0 && mode <= 0o777 && mode & 0o002 == 0);
        }
    }

    #[test]
    fn a_mode_is_accepted_as_written_exactly_when_it_is_safe(
        mode in 0_u32..0o10_000,
        prefix in prop_oneof![Just(""), Just("0"), Just("0o")],
        space in prop_oneof![Just(""), Just(" ")],
    ) {
        // The rule, stated apart from the parser: permission bits only (no setuid, setgid
        // or sticky), not writable by every user, not 0.
        let safe = mode != 0 && mode <= 0o777 && mode & 0o002 == 0;
        let text = format!("{space}{prefix}{mode:o}{space}");
        let parsed = text.parse::<FileMode>().map(|FileMode(m)| m);
        if safe {
            prop_assert_eq!(parsed, Ok(mode), "{:?}", text);
        } else {
            prop_assert!(parsed.is_err(), "{:?} accepted as {:?}", text, parsed);
        }
    }

    #[test]
    fn a_go_duration_means_the_sum_of_its_parts(
        h in 0_u64..8_784, m in 0_u64..60, s in 0_u64..60, ms in 0_u64..1_000, tenths in 0_u64..10,
    ) {
        // What each unit is worth, written out: the product's table is not consulted.
        let want = Duration::from_millis((((h * 60) + m) * 60 + s) * 1_000 + ms) + Duration::from_micros(tenths * 100);
        let text = format!("{h}h{m}m{s}s{ms}.{tenths}ms");
        let parsed = text.parse::<DurationArg>().map(|DurationArg(d)| d);
        if want <= crate::cli::MAX_DURATION {
            prop_assert_eq!(parsed, Ok(want), "{}", text);
        } else {
            prop_assert!(parsed.is_err(), "{} is over the 366-day cap", text);
        }
    }
}
