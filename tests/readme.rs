//! The README's flag table and `configsnap --help` describe the same flags.

use std::collections::BTreeSet;
use std::process::Command;

fn flags_in(text: &str, line_filter: impl Fn(&str) -> bool) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line_filter(line))
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_flag_table_matches_configsnap_help() {
    let help = Command::new(env!("CARGO_BIN_EXE_configsnap")).arg("--help").output().expect("run --help");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).expect("utf-8 help");
    let mut from_help =
        flags_in(&help, |line| line.trim_start().starts_with("--") || line.trim_start().starts_with("-h"));
    from_help.remove("--help");
    from_help.remove("--version");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let documented: BTreeSet<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(documented, from_help, "the first column of the README flag table");
}

#[test]
fn the_readme_gives_the_two_setup_commands() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    assert!(readme.contains("cargo run --example demo"));
    assert!(readme.contains("cargo test --workspace"));
}
