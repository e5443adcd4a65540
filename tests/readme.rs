//! The README says what the binary and the shipped files do: its flags and defaults are
//! `configsnap --help`'s, its performance figures are quoted from `docs/benchmarks.md`, its
//! RBAC statements are `deploy/base/role.yaml`'s, and its set-up commands are the ones CI
//! runs. Each test reads the files as they are and runs the built binary.

use saphyr_parser::{Event, Parser};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Flags the README mentions that belong to other programs, and whose they are.
const FOREIGN_FLAGS: &[(&str, &str)] = &[
    ("--all-targets", "cargo"),
    ("--bench", "cargo"),
    ("--example", "cargo"),
    ("--locked", "cargo"),
    ("--test", "cargo"),
    ("--workspace", "cargo"),
    ("--keep", "the demo example"),
    ("--quick", "the benchmark"),
    ("--install-only", "scripts/test"),
    ("--from-file", "kubectl"),
    ("--watch-progress-notify-interval", "etcd"),
    ("--web.listen-address", "configmap-reload"),
];

/// What a table's default cell may say for a flag without a default: unset, no filter.
const NO_DEFAULT: &[&str] = &["—", "off", "all"];

/// Kubernetes' read verbs; any other verb in the Role is a write.
const READ_VERBS: &[&str] = &["get", "list", "watch"];

/// What the README may never say about a Role that writes anything.
const READ_ONLY_CLAIMS: &[&str] = &["no write access", "read-only role", "only reads", "never writes"];

fn file(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("read {full}: {err}"))
}

fn readme() -> String {
    file("README.md")
}

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_configsnap")).arg("--help").output().expect("run --help");
    assert!(out.status.success(), "configsnap --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The text from the heading `## {title}` to the next `## ` heading.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let heading = format!("\n## {title}\n");
    let start = text.find(&heading).unwrap_or_else(|| panic!("no section '## {title}'")) + 1;
    let rest = &text[start + heading.len() - 1..];
    let end = rest.find("\n## ").map_or(text.len(), |i| start + heading.len() - 1 + i);
    &text[start..end]
}

/// The cells of a markdown table row, trimmed.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

fn is_separator(row: &str) -> bool {
    row.trim().chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

// === flags ===

/// One flag of `configsnap --help`.
#[derive(Debug, Default)]
struct HelpFlag {
    takes_value: bool,
    /// `[default: X]` on a line of its own: a literal value.
    literal: Option<String>,
    /// `[default: X]` inside the description: a description of the default.
    described: Option<String>,
    env: Option<String>,
    aliases: Vec<String>,
}

fn help_flags(help: &str) -> BTreeMap<String, HelpFlag> {
    let mut flags: BTreeMap<String, HelpFlag> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let trimmed = line.trim();
        let flag_line =
            trimmed.strip_prefix("-h, ").or_else(|| trimmed.strip_prefix("-V, ")).unwrap_or(trimmed);
        if line.starts_with("  ") && flag_line.starts_with("--") {
            let name = flag_line.split([' ', '=']).next().expect("a flag name").to_owned();
            let takes_value = flag_line.contains('<');
            flags.insert(name.clone(), HelpFlag { takes_value, ..HelpFlag::default() });
            current = Some(name);
            continue;
        }
        let Some(flag) = current.as_ref().and_then(|name| flags.get_mut(name)) else { continue };
        if let Some(value) = trimmed.strip_prefix("[default: ").and_then(|v| v.strip_suffix(']')) {
            flag.literal = Some(value.trim_matches('"').to_owned());
        } else if let Some(value) = trimmed.strip_prefix("[env: ").and_then(|v| v.strip_suffix("=]")) {
            flag.env = Some(value.to_owned());
        } else if let Some(value) = trimmed.strip_prefix("[alias: ").and_then(|v| v.strip_suffix(']')) {
            flag.aliases.extend(value.split(", ").map(str::to_owned));
        } else if let Some(at) = trimmed.find("[default: ") {
            let value = &trimmed[at + "[default: ".len()..];
            flag.described = Some(value[..value.rfind(']').expect("closing ]")].to_owned());
        }
    }
    flags.remove("--help");
    flags.remove("--version");
    flags
}

/// Flags in the Usage line outside `[...]`: required.
fn required_flags(help: &str) -> BTreeSet<String> {
    let usage = help.lines().find(|l| l.starts_with("Usage:")).expect("a Usage line");
    usage.split_whitespace().filter(|w| w.starts_with("--")).map(str::to_owned).collect()
}

/// The README flag table: flag → default cell.
fn readme_flag_table(readme: &str) -> BTreeMap<String, String> {
    section(readme, "Flags")
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let row = cells(l);
            (row[0].trim_matches('`').to_owned(), row[1].clone())
        })
        .collect()
}

/// Why the README's default cell is not what `--help` says, if it is not.
fn default_mismatch(flag: &str, cell: &str, help: &HelpFlag, required: bool) -> Option<String> {
    let plain = cell.replace('`', "");
    let ok = match (&help.literal, &help.described) {
        _ if required => cell == "required",
        (Some(value), _) if value.is_empty() => !cell.contains('`') && !cell.is_empty(),
        (Some(value), _) => cell == format!("`{value}`"),
        (None, Some(text)) => *text == plain || text.starts_with(&format!("{plain}:")),
        (None, None) if !help.takes_value => cell == "off",
        (None, None) => {
            NO_DEFAULT.contains(&cell)
                || help
                    .env
                    .as_ref()
                    .is_some_and(|e| !e.starts_with("CONFIGSNAP_") && cell == format!("`{e}`"))
        }
    };
    let said = help.literal.as_ref().or(help.described.as_ref()).map_or("no default", String::as_str);
    (!ok).then(|| format!("{flag}: README says {cell:?}, --help says {said:?}"))
}

/// Every `--flag` the README mentions outside the flag table.
fn prose_flags(readme: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in readme.lines().filter(|l| !l.starts_with("| `--")) {
        let bytes: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i + 2 < bytes.len() {
            let before = if i == 0 { ' ' } else { bytes[i - 1] };
            if bytes[i] == '-'
                && bytes[i + 1] == '-'
                && bytes[i + 2].is_ascii_lowercase()
                && !before.is_alphanumeric()
                && before != '-'
            {
                let end = (i + 2..bytes.len())
                    .find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == '-' || bytes[j] == '.'))
                    .unwrap_or(bytes.len());
                let flag: String = bytes[i..end].iter().collect();
                found.insert(flag.trim_end_matches(['.', '-']).to_owned());
                i = end;
            } else {
                i += 1;
            }
        }
    }
    found
}

/// Defaults the README states in prose: "`--flag` (default V)", "`--flag` (`V` by default",
/// "`--flag` (5s)", "`--flag` (default port P)". Flag → (claimed value, the words).
fn prose_defaults(readme: &str) -> Vec<(String, String, String)> {
    let text = readme.replace('\n', " ");
    let mut claims = Vec::new();
    for (at, _) in text.match_indices("`--") {
        let rest = &text[at + 1..];
        let Some(end) = rest.find('`') else { continue };
        let flag = rest[..end].split('=').next().expect("a flag").to_owned();
        let after = rest[end + 1..].trim_start_matches('*');
        let Some(paren) = after.strip_prefix(" (") else { continue };
        let Some(close) = paren.find(')') else { continue };
        let words = &paren[..close];
        let claimed = if words.chars().all(|c| c.is_ascii_alphanumeric())
            && words.starts_with(|c: char| c.is_ascii_digit())
        {
            words.to_owned()
        } else if let Some(by) = words.find(" by default") {
            words[..by].trim().trim_matches('`').to_owned()
        } else if let Some(d) = words.find("default ") {
            let tail: Vec<&str> = words[d + "default ".len()..].split_whitespace().collect();
            match tail.as_slice() {
                ["port", port, ..] => format!(":{}", port.trim_matches('`')),
                [value, ..] => value.trim_matches(['`', ',', ';']).to_owned(),
                [] => continue,
            }
        } else {
            continue;
        };
        claims.push((flag, claimed, words.to_owned()));
    }
    claims
}

#[test]
fn every_flag_of_the_binary_is_in_the_readme_table_with_its_default_and_no_other() {
    let help = help();
    let flags = help_flags(&help);
    let required = required_flags(&help);
    let table = readme_flag_table(&readme());
    assert!(flags.len() > 30, "parsed too few flags from --help: {flags:?}");
    let missing: Vec<&String> = flags.keys().filter(|f| !table.contains_key(*f)).collect();
    let extra: Vec<&String> = table.keys().filter(|f| !flags.contains_key(*f)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README flag table: missing {missing:?}, not in --help {extra:?}"
    );
    let wrong: Vec<String> = flags
        .iter()
        .filter_map(|(flag, h)| default_mismatch(flag, &table[flag], h, required.contains(flag)))
        .collect();
    assert!(wrong.is_empty(), "README flag table defaults differ from --help:\n{}", wrong.join("\n"));
}

#[test]
fn every_flag_the_readme_mentions_exists_and_its_stated_defaults_are_the_binary_s() {
    let help = help();
    let flags = help_flags(&help);
    let mut known: BTreeSet<&str> = flags
        .iter()
        .flat_map(|(f, h)| std::iter::once(f.as_str()).chain(h.aliases.iter().map(String::as_str)))
        .collect();
    known.extend(["--help", "--version"]);
    let readme = readme();
    let mentioned = prose_flags(&readme);
    let foreign: BTreeMap<&str, &str> = FOREIGN_FLAGS.iter().copied().collect();
    let unknown: Vec<&String> = mentioned
        .iter()
        .filter(|f| !known.contains(f.as_str()) && !foreign.contains_key(f.as_str()))
        .collect();
    assert!(unknown.is_empty(), "the README mentions flags configsnap --help does not have: {unknown:?}");
    for (flag, owner) in &foreign {
        assert!(!known.contains(flag), "{flag} is configsnap's, not {owner}'s: drop it from FOREIGN_FLAGS");
        assert!(
            mentioned.contains(*flag),
            "{flag} ({owner}) is no longer in the README: drop it from FOREIGN_FLAGS"
        );
    }
    let claims = prose_defaults(&readme);
    assert!(claims.len() >= 5, "found too few defaults stated in prose: {claims:?}");
    let wrong: Vec<String> = claims
        .iter()
        .filter(|(flag, claimed, _)| {
            let value = flags.get(flag).and_then(|h| h.literal.as_ref());
            !value
                .is_some_and(|v| v == claimed || (claimed.starts_with(':') && v.ends_with(claimed.as_str())))
        })
        .map(|(flag, claimed, words)| {
            let value = flags.get(flag).and_then(|h| h.literal.clone());
            format!("{flag} ({words}): README says {claimed:?}, --help {value:?}")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "defaults stated in the README's prose differ from --help:\n{}",
        wrong.join("\n")
    );
}

// === figures ===

/// The numbers in a text, as written ("1,000", "0.48"); digits inside words ("p99",
/// "ext4", "v1.36.5") are not numbers.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let before = if i == 0 { ' ' } else { chars[i - 1] };
        let in_word = before.is_alphanumeric() || matches!(before, '.' | ',' | '_');
        if !chars[i].is_ascii_digit() || in_word {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (matches!(chars[i], '.' | ',') && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            i += 1;
        }
        found.push(chars[start..i].iter().collect());
    }
    found
}

/// The first date (YYYY-MM-DD) in a text.
fn date(text: &str) -> Option<String> {
    dates(text).into_iter().next()
}

fn dates(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(9))
        .filter(|&i| {
            let d = |j: usize| b[i + j].is_ascii_digit();
            (i == 0 || !b[i - 1].is_ascii_digit())
                && d(0)
                && d(1)
                && d(2)
                && d(3)
                && b[i + 4] == b'-'
                && d(5)
                && d(6)
                && b[i + 7] == b'-'
                && d(8)
                && d(9)
        })
        .map(|i| text[i..i + 10].to_owned())
        .collect()
}

/// A table row or a paragraph (or list item) of docs/benchmarks.md, with the date of the
/// run its `## ` section reports.
struct Block {
    date: Option<String>,
    /// A table row (else a paragraph or list item).
    row: bool,
    numbers: Vec<String>,
}

/// Paragraphs, list items and table rows of a markdown text, code blocks left out.
fn blocks(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
            continue;
        }
        let row = line.trim_start().starts_with('|');
        let starts_block = line.trim().is_empty() || row || line.starts_with('#') || line.starts_with("- ");
        if code || starts_block {
            if !current.trim().is_empty() {
                found.push(std::mem::take(&mut current));
            }
            current.clear();
        }
        if code || line.trim().is_empty() {
            continue;
        }
        if row {
            if !is_separator(line) {
                found.push(line.to_owned());
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        found.push(current);
    }
    found
}

/// The `## ` sections of a markdown text (the text before the first one included).
fn sections(text: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for line in text.lines() {
        if line.starts_with("## ") {
            found.push(String::new());
        }
        let last = found.last_mut().expect("a section");
        last.push_str(line);
        last.push('\n');
    }
    found
}

fn docs_blocks(docs: &str) -> Vec<Block> {
    sections(docs)
        .iter()
        .flat_map(|s| {
            let run = if s.starts_with("## ") { date(s) } else { None };
            blocks(s).into_iter().map(move |b| Block {
                date: run.clone(),
                row: b.starts_with('|'),
                numbers: numbers(&b),
            })
        })
        .collect()
}

fn run_at(haystack: &[String], at: usize, needle: &[String]) -> bool {
    haystack.get(at..at + needle.len()).is_some_and(|w| w == needle)
}

/// Whether `block` quotes `value` for `label`: the value's numbers in a row, and the
/// label's numbers (its N, its update count) in the same table row, or, in a paragraph,
/// right before or after the value, or after a parallel series of the same length
/// ("p99 1.82 / 2.45 ms and RSS 6.9 / 7.9 MiB at N = 1 / 100").
fn quotes(block: &Block, value: &[String], label: &[String]) -> bool {
    let n = &block.numbers;
    (0..n.len()).filter(|&i| !value.is_empty() && run_at(n, i, value)).any(|i| {
        let len = value.len();
        if block.row || label.is_empty() {
            return label.iter().all(|l| n.contains(l));
        }
        let before = |gap: usize| i.checked_sub(gap + label.len()).is_some_and(|at| run_at(n, at, label));
        run_at(n, i + len, label) || run_at(n, i + 2 * len, label) || before(0) || before(len)
    })
}

/// Why a README figures row is not quoted from one docs row of the run `date`, if not.
fn unquoted(row: &[String], date: &str, docs: &[Block], all: &BTreeSet<String>) -> Option<String> {
    let (label, value, target) =
        (numbers(&row[0]), numbers(&row[1]), row.get(2).map_or(vec![], |t| numbers(t)));
    let source = docs.iter().find(|b| b.date.as_deref() == Some(date) && quotes(b, &value, &label));
    let stray: Vec<&String> = target.iter().filter(|n| !all.contains(*n)).collect();
    match (source, stray.is_empty()) {
        (None, _) => Some(format!(
            "| {} | {} |: no row of the {date} run in docs/benchmarks.md has these figures {value:?} with {label:?}",
            row[0], row[1]
        )),
        (Some(_), false) => {
            Some(format!("| {} |: target numbers {stray:?} are not in docs/benchmarks.md", row[0]))
        }
        (Some(_), true) => None,
    }
}

#[test]
fn the_readme_figures_are_quoted_row_by_row_from_docs_benchmarks_with_their_run() {
    let docs_text = file("docs/benchmarks.md");
    let docs = docs_blocks(&docs_text);
    let all: BTreeSet<String> = numbers(&docs_text).into_iter().collect();
    let readme = readme();
    let figures = section(&readme, "Benchmarks");
    let parts = blocks(figures);
    let mut wrong = Vec::new();
    let mut rows = 0;
    let mut lead: Option<(String, String)> = None;
    for part in &parts {
        if !part.starts_with('|') {
            let run = dates(part);
            let stray: Vec<String> = numbers(part).into_iter().filter(|n| !all.contains(n)).collect();
            if !stray.is_empty() {
                wrong.push(format!("prose numbers {stray:?} are not in docs/benchmarks.md: {part}"));
            }
            lead = (run.len() == 1).then(|| (run[0].clone(), part.clone()));
            continue;
        }
        let row = cells(part);
        if row[0] == "figure" {
            // A table starts: the paragraph just before it names its run and machine.
            let Some((run, text)) = &lead else {
                wrong.push(format!(
                    "the table at {part:?} is not preceded by a paragraph naming one run date"
                ));
                continue;
            };
            let section: Vec<String> = docs
                .iter()
                .filter(|b| b.date.as_ref() == Some(run))
                .flat_map(|b| b.numbers.clone())
                .collect();
            assert!(!section.is_empty(), "docs/benchmarks.md has no section of the {run} run");
            assert!(
                text.contains("core"),
                "the paragraph before a figures table names the machine (cores): {text}"
            );
            let stray: Vec<String> = numbers(text).into_iter().filter(|n| !section.contains(n)).collect();
            if !stray.is_empty() {
                wrong.push(format!(
                    "the {run} run's description has {stray:?}, not in that run's docs section"
                ));
            }
            continue;
        }
        let Some((run, _)) = &lead else { continue };
        rows += 1;
        wrong.extend(unquoted(&row, run, &docs, &all));
    }
    assert!(rows >= 10, "found only {rows} figures rows in the README's Benchmarks section");
    assert!(wrong.is_empty(), "README figures differ from docs/benchmarks.md:\n{}", wrong.join("\n"));
}

// === RBAC ===

/// A YAML node as JSON (scalars as strings), from saphyr's events.
fn yaml_node<'a>(events: &mut impl Iterator<Item = Event<'a>>, first: Event<'a>) -> Value {
    match first {
        Event::Scalar(value, ..) => Value::String(value.into_owned()),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                match events.next().expect("YAML sequence ends") {
                    Event::SequenceEnd => return Value::Array(items),
                    event => items.push(yaml_node(events, event)),
                }
            }
        }
        Event::MappingStart(..) => {
            let mut map = serde_json::Map::new();
            loop {
                let key = match events.next().expect("YAML mapping ends") {
                    Event::MappingEnd => return Value::Object(map),
                    event => yaml_node(events, event),
                };
                let value = events.next().expect("a YAML value");
                map.insert(
                    key.as_str().map_or_else(|| key.to_string(), str::to_owned),
                    yaml_node(events, value),
                );
            }
        }
        other => panic!("unexpected YAML event {other:?}"),
    }
}

fn yaml(text: &str) -> Value {
    let mut events = Parser::new_from_str(text).map(|e| e.expect("valid YAML").0).filter(|e| {
        !matches!(e, Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd)
    });
    let first = events.next().expect("one YAML document");
    yaml_node(&mut events, first)
}

/// (API group, resource) → verbs, for each rule of a Role.
type Grants = BTreeMap<(String, String), BTreeSet<String>>;

fn grants(role: &Value) -> Grants {
    let mut found = Grants::new();
    for rule in role["rules"].as_array().expect("rules") {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                found.entry((group.clone(), resource)).or_default().extend(list("verbs"));
            }
        }
    }
    found
}

/// The Role's rules, and the opt-in rules it carries commented out (uncommented).
fn role_grants() -> (Value, Grants, Grants) {
    let text = file("deploy/base/role.yaml");
    let role = yaml(&text);
    let active = grants(&role);
    let uncommented: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("# ") {
            Some((indent, rule))
                if indent.trim().is_empty()
                    && ["- apiGroups:", "  resources:", "  verbs:"].iter().any(|k| rule.starts_with(k)) =>
            {
                format!("{indent}{rule}")
            }
            _ => line.to_owned(),
        })
        .collect();
    let mut opt_in = grants(&yaml(&uncommented.join("\n")));
    opt_in.retain(|key, _| !active.contains_key(key));
    (role, active, opt_in)
}

/// One "`get`, `list`, `watch` on `configmaps`" or "`create` on `events.k8s.io` events".
#[derive(Debug)]
struct Claim {
    group: Option<String>,
    resource: String,
    verbs: BTreeSet<String>,
    context: String,
}

fn rbac_claims(readme: &str) -> Vec<Claim> {
    const VERBS: &[&str] =
        &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*"];
    let text = readme.replace('\n', " ");
    let mut claims = Vec::new();
    for (at, _) in text.match_indices(" on `") {
        let before = &text[..at];
        let words: Vec<&str> = before.rsplit('`').collect();
        // words[1] is the last backticked word, words[2] the text before it, and so on.
        let mut verbs = BTreeSet::new();
        let mut i = 1;
        while i < words.len() {
            let candidates: Vec<&str> = words[i].split('/').collect();
            if !candidates.iter().all(|v| VERBS.contains(v)) {
                break;
            }
            verbs.extend(candidates.iter().map(|v| (*v).to_owned()));
            let sep = words.get(i + 1).copied().unwrap_or("");
            if ![", ", " and ", ", and ", " or "].contains(&sep) {
                break;
            }
            i += 2;
        }
        if verbs.is_empty() {
            continue;
        }
        let after = &text[at + " on `".len()..];
        let Some(end) = after.find('`') else { continue };
        let quoted = &after[..end];
        let (group, resource) = if quoted.contains('.') {
            let resource = after[end + 1..].split_whitespace().next().unwrap_or("");
            (Some(quoted.to_owned()), resource.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned())
        } else {
            (None, quoted.to_owned())
        };
        let context = text[at.saturating_sub(200)..(at + 200).min(text.len())].to_owned();
        claims.push(Claim { group, resource, verbs, context });
    }
    claims
}

/// Why a README claim is not what the Role grants, if it is not.
fn false_claim(claim: &Claim, active: &Grants, opt_in: &Grants) -> Option<String> {
    let matches = |grants: &Grants| {
        grants
            .iter()
            .find(|((group, resource), _)| {
                *resource == claim.resource && claim.group.as_ref().is_none_or(|g| g == group)
            })
            .map(|(_, verbs)| verbs.clone())
    };
    let what = format!("{:?} on {:?} {}", claim.verbs, claim.group, claim.resource);
    match (matches(active), matches(opt_in)) {
        (Some(verbs), _) if verbs == claim.verbs => None,
        (Some(verbs), _) => Some(format!("README: {what}; the Role grants {verbs:?}")),
        // "uncomment that rule", "the commented rule": says it is opt-in.
        (None, Some(verbs)) if verbs == claim.verbs && claim.context.contains("comment") => None,
        (None, Some(verbs)) => {
            Some(format!("README: {what}; the Role grants {verbs:?} only once uncommented (say so)"))
        }
        (None, None) => Some(format!("README: {what}; the Role grants nothing on {}", claim.resource)),
    }
}

#[test]
fn the_readme_rbac_statements_are_what_deploy_base_role_yaml_grants() {
    let (role, active, opt_in) = role_grants();
    assert_eq!(role["kind"], "Role", "the README says nothing cluster-wide: a namespaced Role");
    assert!(!active.is_empty() && !opt_in.is_empty(), "parsed no rules: {active:?} {opt_in:?}");
    let readme = readme();
    let claims = rbac_claims(&readme);
    let wrong: Vec<String> = claims.iter().filter_map(|c| false_claim(c, &active, &opt_in)).collect();
    assert!(wrong.is_empty(), "RBAC statements differ from deploy/base/role.yaml:\n{}", wrong.join("\n"));
    let security = section(&readme, "Security");
    let stated = rbac_claims(security);
    for ((group, resource), verbs) in active.iter().chain(&opt_in) {
        assert!(
            stated.iter().any(|c| c.resource == *resource && c.verbs == *verbs),
            "the Security section does not state the Role's {verbs:?} on {group:?} {resource}"
        );
    }
    let writes: Vec<String> = active
        .iter()
        .flat_map(|((_, resource), verbs)| {
            verbs.iter().filter(|v| !READ_VERBS.contains(&v.as_str())).map(move |v| format!("{v} {resource}"))
        })
        .collect();
    let lower = readme.to_lowercase().replace('\n', " ");
    for phrase in READ_ONLY_CLAIMS {
        assert!(
            writes.is_empty() || !lower.contains(phrase),
            "the README says {phrase:?}; the Role grants {writes:?}"
        );
    }
    if lower.contains("the one write is creating events") {
        assert_eq!(writes, ["create events"], "the README says the one write is creating Events");
    }
}

// === set-up ===

#[test]
fn the_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one() {
    let readme = readme();
    let quick = section(&readme, "Quick start (a fresh machine, no cluster)");
    let block = quick.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block");
    let commands: Vec<&str> =
        block.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|c| !c.is_empty()).collect();
    assert_eq!(commands, ["cargo run --example demo", "scripts/test"], "the two set-up commands");
    assert!(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo.rs")).exists());
    let script = file("scripts/test");
    let mode = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test")).expect("scripts/test");
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111 != 0,
        "scripts/test is executable"
    );
    assert!(script.contains("cargo test --workspace --locked"), "scripts/test runs every test");
    assert!(script.contains("scripts/control-plane build"), "scripts/test builds the control plane");
    for package in ["nginx-light", "prometheus", "util-linux", "e2fsprogs", "busybox-static"] {
        assert!(script.contains(&format!("need+=({package})")), "scripts/test installs {package}");
    }
    let ci = file(".ci/run");
    assert!(ci.lines().any(|l| l.trim() == "bash scripts/test"), ".ci/run's test step is scripts/test");
    assert!(
        !ci.lines().any(|l| l.trim_start().starts_with("cargo test --workspace")),
        ".ci/run tests only through scripts/test"
    );
}
