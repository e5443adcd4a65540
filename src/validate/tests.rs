//! Tests of the syntax checks (table-driven) and of the validation command (real `sh`).

use super::*;
use crate::snapshot::tests::snapshot_of;

/// The objects of a by-name snapshot of `(path, content)`.
fn objects(files: &[(&str, &[u8])]) -> Vec<Arc<Object>> {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (*p, *c, 0o644)).collect();
    snapshot_of(&files).objects().cloned().collect()
}

fn position(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

#[test]
fn formats_are_chosen_by_extension_ignoring_case() {
    let cases = [
        ("web/app.json", Some(Format::Json)),
        ("APP.JSON", Some(Format::Json)),
        ("a/b.yaml", Some(Format::Yaml)),
        ("a/b.YML", Some(Format::Yaml)),
        ("Cargo.Toml", Some(Format::Toml)),
        ("nginx.conf", None),
        ("json", None),
        ("web/.json", None),
        ("a.json.bak", None),
        ("a.jsonl", None),
    ];
    for (path, want) in cases {
        assert_eq!(Format::of(path), want, "{path}");
    }
}

#[test]
fn positions_count_lines_and_characters_from_one() {
    let cases: [(&[u8], usize, usize, usize); 6] = [
        (b"abc", 0, 1, 1),
        (b"abc", 2, 1, 3),
        (b"ab\ncd", 3, 2, 1),
        (b"ab\ncd\nef", 7, 3, 2),
        ("é=1\nxé".as_bytes(), 8, 2, 3),
        (b"ab", 99, 1, 3),
    ];
    for (text, offset, line, column) in cases {
        let got = Position::of_offset(text, offset);
        assert_eq!(got, Position { line, column }, "{text:?} at {offset}");
    }
}

#[test]
fn valid_files_of_every_format_pass() {
    let cases: [(&str, &str); 15] = [
        ("a.json", r#"{"a": [1, 2, {"b": null}]}"#),
        ("a.json", "  \"just a string\"\n"),
        ("a.json", "42"),
        ("a.yaml", ""),
        ("a.yaml", "a: 1\nb: [x, y]\n"),
        ("a.yml", "---\na: 1\n---\nb: 2\n...\n"),
        ("a.yaml", "# only a comment\n"),
        ("a.yaml", "base: &b {x: 1}\nuse: *b\n"),
        ("a.yaml", "text: |\n  line one\n  line two\n"),
        ("a.toml", ""),
        ("a.toml", "a = 1\n[server]\nport = 8080\nhosts = [\"a\", \"b\"]\n"),
        ("a.toml", "[[items]]\nx = 1\n[[items]]\nx = 2\n"),
        ("a.conf", "{{{ not checked"),
        ("a.txt", ""),
        ("bin.dat", "\u{0}\u{1}"),
    ];
    for (path, text) in cases {
        let result = check_file(path, text.as_bytes());
        assert!(result.is_ok(), "{path} {text:?}: {result:?}");
    }
}

#[test]
fn invalid_files_report_path_line_and_column() {
    let cases: [(&str, &str, Format, Option<Position>); 10] = [
        ("web/app.json", "{\n  \"a\": 1,\n  \"b\" 2\n}", Format::Json, position(3, 7)),
        ("a.json", "", Format::Json, position(1, 0)),
        ("a.json", "{\"a\": 1} trailing", Format::Json, position(1, 10)),
        ("a.json", "[1, 2", Format::Json, position(1, 5)),
        ("a.yaml", "a: 1\nb: [x, y\n", Format::Yaml, position(3, 1)),
        ("a.yaml", "a: 1\n  b: 2\n", Format::Yaml, position(2, 4)),
        ("a.yml", "---\nok: 1\n---\nbad: \"x\n", Format::Yaml, position(4, 6)),
        ("a.yaml", "use: *missing\n", Format::Yaml, position(1, 6)),
        ("a.toml", "a = 1\nb = \n", Format::Toml, position(2, 5)),
        ("a.toml", "a = 1\na = 2\n", Format::Toml, position(2, 1)),
    ];
    for (path, text, format, want) in cases {
        let err = check_file(path, text.as_bytes()).expect_err(path);
        match &err {
            Error::Syntax { path: got_path, format: got_format, position: got, message } => {
                assert_eq!(got_path, path);
                assert_eq!(*got_format, format, "{path}");
                assert_eq!(*got, want, "{path} {text:?}: {err}");
                assert!(!message.is_empty() && !message.contains(" at line "), "{err}");
            }
            other => panic!("{path}: not a syntax error: {other}"),
        }
        assert_eq!(err.label(), "syntax");
    }
}

#[test]
fn syntax_error_message_names_the_file_and_the_place() {
    let err = check_file("web/app.json", b"{\n  \"a\" 1\n}").expect_err("invalid");
    let text = err.to_string();
    assert!(text.starts_with("failed to parse web/app.json: line 2, column 7: expected `:`"), "{text}");
}

#[test]
fn invalid_utf8_in_a_checked_format_is_an_error_with_its_position() {
    for path in ["a.json", "a.yaml", "a.toml"] {
        let err = check_file(path, b"a: 1\nb: \xff\n").expect_err(path);
        assert!(matches!(err, Error::Encoding { .. }), "{err}");
        assert_eq!(err.to_string(), format!("failed to parse {path}: line 2, column 4: invalid UTF-8"));
        assert_eq!(err.label(), "syntax");
    }
    assert!(check_file("a.bin", b"\xff\xfe").is_ok());
}

#[test]
fn deeply_nested_files_are_checked_without_overflowing_the_stack() {
    let depth = 100_000;
    let closed = "[".repeat(depth) + &"]".repeat(depth);
    // saphyr stops at its nesting limit with an error; serde_json skips iteratively.
    let err = check_file("a.yaml", closed.as_bytes()).expect_err("too deep");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    assert!(check_file("a.yaml", "[".repeat(depth).as_bytes()).is_err());
    assert!(check_file("a.json", closed.as_bytes()).is_ok());
}

#[test]
fn check_syntax_returns_the_first_bad_file_in_path_order() {
    let validator = Validator::new(true, None, Duration::from_secs(1));
    let snap = objects(&[("b/bad.json", b"{"), ("a/bad.toml", b"= 1"), ("a/good.yaml", b"a: 1")]);
    let err = validator.check_syntax(&snap, Layout::ByName).expect_err("invalid");
    assert!(matches!(&err, Error::Syntax { path, .. } if path == "a/bad.toml"), "{err}");
    let good = objects(&[("a/good.yaml", b"a: 1"), ("x/x.conf", b"{")]);
    assert!(validator.check_syntax(&good, Layout::ByName).is_ok());
}

#[test]
fn check_syntax_passes_everything_when_syntax_checks_are_off() {
    let validator = Validator::new(false, None, Duration::from_secs(1));
    assert!(!validator.is_enabled());
    assert!(validator.check_syntax(&objects(&[("a/a.json", b"{")]), Layout::ByName).is_ok());
}

#[test]
fn validator_is_enabled_by_either_check() {
    let timeout = Duration::from_secs(1);
    assert!(Validator::new(true, None, timeout).is_enabled());
    let command = Validator::new(false, Some("true".into()), timeout);
    assert!(command.is_enabled() && command.has_command());
}

#[tokio::test]
async fn command_exit_zero_accepts_the_snapshot() {
    let validator = Validator::new(false, Some("exit 0".into()), Duration::from_secs(10));
    let result = validator.check_command(Path::new("/tmp"), ContentHash::default()).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn command_failure_rejects_the_snapshot_with_its_output() {
    let command = "echo 'nginx: bad directive' >&2; exit 1";
    let validator = Validator::new(false, Some(command.into()), Duration::from_secs(10));
    let err = validator.check_command(Path::new("/tmp"), ContentHash::default()).await.expect_err("exit 1");
    assert_eq!(err.label(), "command");
    let text = err.to_string();
    assert!(text.starts_with("failed to validate the staged snapshot: "), "{text}");
    assert!(text.contains("exited with 1") && text.contains("bad directive"), "{text}");
}

#[tokio::test]
async fn command_that_outlives_the_timeout_is_killed_and_rejects() {
    // The command would outlive the test: only the 200 ms timeout can end the check.
    let validator = Validator::new(false, Some("sleep 3600".into()), Duration::from_millis(200));
    let check = validator.check_command(Path::new("/tmp"), ContentHash::default());
    let err = tokio::time::timeout(Duration::from_secs(60), check)
        .await
        .expect("the timeout must end the check, not the command")
        .expect_err("timeout");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn command_sees_the_staged_dir_and_hash_in_its_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.conf"), "ok").expect("write");
    let hash = ContentHash([7; 32]);
    let command = format!(
        "test \"${STAGED_DIR_ENV}\" = '{}' && test \"${HASH_ENV}\" = '{hash}' \
         && test \"$(cat \"${STAGED_DIR_ENV}/app.conf\")\" = ok",
        dir.path().display()
    );
    let validator = Validator::new(false, Some(command), Duration::from_secs(10));
    let result = validator.check_command(dir.path(), hash).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn no_command_means_nothing_to_run() {
    let validator = Validator::new(true, None, Duration::from_secs(1));
    let result = validator.check_command(Path::new("/nonexistent"), ContentHash::default()).await;
    assert!(result.is_ok());
}
