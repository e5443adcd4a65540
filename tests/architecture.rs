//! The shape of the code, checked from its text so it cannot drift: no import cycle between
//! top-level modules; no stage imports an observer; `lib.rs` exports at most 10 modules;
//! `cli::Args` is made of flattened groups; `run::run` stays wiring; `ARCHITECTURE.md`
//! names every top-level module and only modules that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Stages: they report outcomes and must not know who listens.
const STAGES: [&str; 7] = ["source", "snapshot", "writer", "pipeline", "reload", "validate", "lastgood"];
/// Observers: they listen to outcomes.
const OBSERVERS: [&str; 5] = ["events", "kube_events", "metrics", "status", "telemetry"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules declared in `lib.rs`, with whether each is `pub`, and those
/// compiled only for tests.
fn declared_modules() -> (BTreeMap<String, bool>, BTreeSet<String>) {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let (mut modules, mut test_only) = (BTreeMap::new(), BTreeSet::new());
    let mut cfg_test = false;
    for line in lib.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            cfg_test = true;
            continue;
        }
        let (public, rest) = match line.strip_prefix("pub mod ") {
            Some(rest) => (true, rest),
            None => match line.strip_prefix("mod ") {
                Some(rest) => (false, rest),
                None => continue,
            },
        };
        let name = rest.trim_end_matches(';').to_owned();
        if std::mem::take(&mut cfg_test) {
            test_only.insert(name);
        } else {
            modules.insert(name, public);
        }
    }
    (modules, test_only)
}

/// The top-level module a file under `src/` belongs to.
fn top_module(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of `file` that is compiled into the library: no comment lines, nothing after
/// a `#[cfg(test)]` test module opens, and none of it when the file is a test module.
fn library_code(file: &Path) -> String {
    let name = file.file_name().expect("a name").to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") || name == "fuzz.rs" {
        return String::new();
    }
    let text = std::fs::read_to_string(file).expect("read source");
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// The top-level modules `code` refers to through `crate::`.
fn referenced(code: &str, modules: &BTreeMap<String, bool>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        } else {
            found.insert(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
        }
    }
    found.retain(|name| modules.contains_key(name));
    found
}

/// Module → the other top-level modules its library code uses.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let (modules, test_only) = declared_modules();
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        modules.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in rust_files(&src()) {
        let module = top_module(&file);
        if test_only.contains(&module) || !modules.contains_key(&module) {
            continue;
        }
        let uses = referenced(&library_code(&file), &modules);
        graph.get_mut(&module).expect("declared").extend(uses.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle through `start`, if any, as the path of modules.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in &graph[&module] {
            if next == start {
                return Some([path.clone(), vec![start.to_owned()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = import_graph();
    assert!(graph.len() >= 10, "the graph was read: {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_stage_imports_an_observer_and_observers_see_only_outcomes() {
    let graph = import_graph();
    for stage in STAGES {
        let wrong: Vec<&String> = graph[stage].iter().filter(|m| OBSERVERS.contains(&m.as_str())).collect();
        assert!(wrong.is_empty(), "stage `{stage}` imports observer(s) {wrong:?}");
    }
    for observer in OBSERVERS {
        let wrong: Vec<&String> = graph[observer].iter().filter(|m| STAGES.contains(&m.as_str())).collect();
        assert!(
            wrong.is_empty(),
            "observer `{observer}` imports stage(s) {wrong:?}: import their types from `outcome`"
        );
    }
    assert!(graph["pipeline"].contains("outcome"), "the pipeline reports through `outcome`: {graph:?}");
}

#[test]
fn the_library_exports_at_most_ten_modules() {
    let (modules, _) = declared_modules();
    let public: Vec<&String> = modules.iter().filter(|(_, public)| **public).map(|(m, _)| m).collect();
    assert!(!public.is_empty() && public.len() <= 10, "lib.rs exports {} modules: {public:?}", public.len());
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    assert!(
        lib.contains("#![warn(unreachable_pub)]"),
        "pub items outside the public modules must be pub(crate)"
    );
}

#[test]
fn args_are_flattened_groups_and_run_is_wiring() {
    let cli = std::fs::read_to_string(src().join("cli.rs")).expect("cli.rs");
    let args = &cli[cli.find("pub struct Args {").expect("Args")..];
    let args = &args[..args.find("\n}\n").expect("end of Args")];
    let groups = args.matches("#[command(flatten)]").count();
    let fields = args.lines().skip(1).filter(|l| l.trim_start().starts_with("pub ")).count();
    assert!(groups >= 4 && groups == fields, "Args has {fields} fields of which {groups} flattened groups");
    let run = std::fs::read_to_string(src().join("run.rs")).expect("run.rs");
    let body = &run[run.find("pub async fn run(").expect("run::run")..];
    let lines = body.lines().position(|l| l == "}").expect("end of run::run") + 1;
    assert!(lines <= 60, "run::run is {lines} lines (at most 60: wiring only)");
}

#[test]
fn architecture_md_names_every_module_and_only_modules() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let map = std::fs::read_to_string(&path).expect("ARCHITECTURE.md at the root");
    let (modules, test_only) = declared_modules();
    let named: BTreeSet<String> = map
        .match_indices("**`")
        .filter_map(|(at, _)| {
            let rest = &map[at + 3..];
            rest.find("`**").map(|end| rest[..end].to_owned())
        })
        .collect();
    for module in modules.keys().chain(&test_only) {
        let in_map = named.contains(module) || map.contains(&format!("`{module}` (test-only)"));
        assert!(in_map, "ARCHITECTURE.md has no entry **`{module}`**");
    }
    for name in &named {
        assert!(
            modules.contains_key(name),
            "ARCHITECTURE.md names **`{name}`**, which is not a module of src/lib.rs"
        );
    }
}
