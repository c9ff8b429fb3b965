//! The import directions of the broker's folders, checked on the source: the log knows nothing of handlers,
//! the wire protocol, the server or the cluster; the protocol imports nothing of the crate; metrics, the
//! clock and the durable-write helpers are leaves. A `crate::` path in a file (a `use` or an inline path,
//! tests included) counts as an import of the module it names.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// (folder or file under src/, top-level modules it must never reach).
const RULES: &[(&str, Forbidden)] = &[
    (
        "log",
        Forbidden::These(&[
            "handlers",
            "protocol",
            "server",
            "cluster",
            "replication",
            "group",
            "broker",
            "log_manager",
            "partition",
            "http",
        ]),
    ),
    ("protocol", Forbidden::AllBut(&["protocol"])),
    ("metrics", Forbidden::AllBut(&["metrics"])),
    // Quotas are a model and meters: the image holds them, handlers and the server consult them.
    ("quota", Forbidden::AllBut(&["quota"])),
    ("clock", Forbidden::AllBut(&["clock"])),
    ("durable", Forbidden::AllBut(&["durable"])),
    (
        "cluster",
        Forbidden::These(&["handlers", "server", "http", "broker", "replication"]),
    ),
    (
        "group",
        Forbidden::These(&["handlers", "server", "http", "broker", "cluster", "metrics"]),
    ),
    // Replication tells the group coordinator about leadership through `replication::leadership`, whose
    // listener the composition root implements; it never reaches into the coordinator.
    (
        "replication",
        Forbidden::These(&["group", "handlers", "server", "http", "broker"]),
    ),
];

#[derive(Debug)]
enum Forbidden {
    These(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

impl Forbidden {
    fn forbids(&self, module: &str) -> bool {
        match self {
            Forbidden::These(list) => list.contains(&module),
            Forbidden::AllBut(list) => !list.contains(&module),
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files of a module: `name.rs` and everything under `name/`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src().join(format!("{name}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "module {name} has no source files");
    files
}

/// The top-level modules a source text reaches through `crate::` paths, including inside `use crate::{a,
/// b::{c}}` groups. Comments are skipped so that docs may mention anything.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // e.g. `tributary_broker::...` is not this crate's `crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a group: split on commas at brace depth 0.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            if !item.trim().is_empty() {
                found.insert(first_segment(&item));
            }
        } else {
            found.insert(first_segment(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn folders_import_only_what_they_may() {
    let mut violations = Vec::new();
    for (module, forbidden) in RULES {
        for file in module_files(module) {
            let text = fs::read_to_string(&file).unwrap();
            for import in crate_imports(&text) {
                // `crate::error_chain` is a free function at the root, a leaf like the rest of lib.rs.
                if forbidden.forbids(&import) && import != "error_chain" {
                    violations.push(format!(
                        "{} imports crate::{import}",
                        file.strip_prefix(src()).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden imports:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_checker_sees_grouped_nested_and_inline_paths() {
    let text =
        "use crate::{\n    log::{Log, LogError},\n    metrics::Traffic, // crate::ignored\n};\n\
                fn f() { crate::handlers::x(); tributary_broker::server::y(); }\n\
                /// docs may name crate::cluster\n";
    let found: Vec<String> = crate_imports(text).into_iter().collect();
    assert_eq!(found, ["handlers", "log", "metrics"]);
}
