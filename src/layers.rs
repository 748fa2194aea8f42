//! The module import rules, checked against the source files.
//!
//! Each top-level module sits on a layer and may import only modules on
//! lower layers, so no import goes upward and none forms a circle:
//!
//! ```text
//!   6  cli
//!   5  pipeline
//!   4  config
//!   3  filter   sink
//!   2  source   enrich   detect
//!   1  linux
//!   0  event
//! ```
//!
//! Modules on the same layer do not import each other (sources never reach
//! into enrichment, nor sinks into filters). Test code is exempt: a test
//! may build its fixtures with whatever module it likes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer.
const LAYERS: &[(&str, u8)] = &[
    ("event", 0),
    ("linux", 1),
    ("source", 2),
    ("enrich", 2),
    ("detect", 2),
    ("filter", 3),
    ("sink", 3),
    ("config", 4),
    ("pipeline", 5),
    ("cli", 6),
];

/// Imports allowed against the rules, each to be justified here; there are
/// none. An entry whose import no longer occurs fails the test.
const KNOWN: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/enrich/table/mod.rs` is
/// `["enrich", "table"]`, `src/sink/csv.rs` is `["sink", "csv"]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// Whether an attribute line compiles what follows only for tests.
fn is_test_cfg(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("#[cfg(") && t.contains("test") && !t.contains("not(test")
}

/// The files that `#[cfg(test)] mod name;` declarations make test-only.
fn test_files(src: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Children of `a/mod.rs` and `lib.rs` live beside them; children
        // of `a/b.rs` in `a/b/`.
        let dir = match f.file_name().unwrap().to_str().unwrap() {
            "mod.rs" | "lib.rs" => f.parent().unwrap().to_path_buf(),
            name => f.parent().unwrap().join(name.trim_end_matches(".rs")),
        };
        for w in lines.windows(2) {
            let decl = w[1].trim();
            if is_test_cfg(w[0]) && decl.contains("mod ") && decl.ends_with(';') {
                let name = decl.trim_end_matches(';').rsplit(' ').next().unwrap();
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    out.into_iter().filter(|p| p.starts_with(src)).collect()
}

/// The lines of non-test code: comments, and items under a test-only
/// `cfg`, are left out (rustfmt closes an item at its own indentation).
fn code_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        if !is_test_cfg(line) {
            out.push(line);
            continue;
        }
        let Some(item) = lines.next() else { break };
        if item.trim_end().ends_with(';') {
            continue;
        }
        let indent = &item[..item.len() - item.trim_start().len()];
        for rest in lines.by_ref() {
            let closes = rest
                .strip_prefix(indent)
                .is_some_and(|r| r.starts_with('}') && r.trim_end().len() <= 2);
            if closes {
                break;
            }
        }
    }
    out
}

/// The top-level modules a line refers to, through `crate::` or through
/// enough `super::` to leave its own top-level module.
fn referenced(line: &str, module: &[String], out: &mut BTreeSet<String>) {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in line.match_indices("crate::") {
        // `procwatch_crate::` and the like are other names.
        let before = line[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.insert(ident(&line[i + "crate::".len()..]));
    }
    for (i, _) in line.match_indices("super::") {
        if line[..i].ends_with("super::") {
            continue;
        }
        let mut rest = &line[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
            ups += 1;
        }
        if ups >= module.len() {
            out.insert(ident(rest));
        }
    }
}

#[test]
fn imports_follow_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let tests_only = test_files(&src, &files);
    let mut wrong = Vec::new();
    let mut seen_known = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_str().unwrap();
        // The crate root and the binary sit above every layer.
        if top == "lib.rs" || top == "main.rs" || tests_only.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let module = module_path(rel);
        let from = module[0].as_str();
        let Some(from_layer) = layer(from) else {
            wrong.push(format!(
                "{}: module `{from}` has no layer in LAYERS",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(f).unwrap();
        let mut refs = BTreeSet::new();
        for line in code_lines(&text) {
            referenced(line, &module, &mut refs);
        }
        for to in refs.iter().filter(|to| to.as_str() != from) {
            let Some(to_layer) = layer(to) else {
                continue; // crate-root items (the allocator), or `self`
            };
            if to_layer < from_layer {
                continue;
            }
            if KNOWN.contains(&(from, to.as_str())) {
                seen_known.insert((from.to_string(), to.clone()));
                continue;
            }
            wrong.push(format!(
                "{}: `{from}` (layer {from_layer}) imports `{to}` (layer {to_layer})",
                rel.display()
            ));
        }
    }
    for (from, to) in KNOWN {
        if !seen_known.contains(&(from.to_string(), to.to_string())) {
            wrong.push(format!(
                "KNOWN lists `{from}` -> `{to}`, which no longer occurs: delete the line"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn test_code_is_left_out() {
    let text = "use crate::event::X;\n\
                // crate::cli in a comment\n\
                #[cfg(test)]\n\
                mod tests {\n    use crate::cli::Cli;\n    fn f() {\n    }\n}\n\
                #[cfg(test)]\n\
                use crate::sink::Y;\n\
                fn g() -> crate::linux::Z {}\n";
    let mut refs = BTreeSet::new();
    for line in code_lines(text) {
        referenced(line, &["enrich".to_string(), "a".to_string()], &mut refs);
    }
    assert_eq!(refs, BTreeSet::from(["event".into(), "linux".into()]));
}

#[test]
fn super_paths_that_leave_the_module_count() {
    let module = ["sink".to_string(), "csv".to_string()];
    let mut refs = BTreeSet::new();
    referenced("use super::escape::x;", &module, &mut refs);
    assert!(refs.is_empty(), "{refs:?}");
    referenced("use super::super::enrich::x;", &module, &mut refs);
    assert_eq!(refs, BTreeSet::from(["enrich".into()]));
}
