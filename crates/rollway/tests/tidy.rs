#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tidy: plain tests that read the repository and fail on what reviews keep
//! catching (after rust-analyzer's `xtask/src/tidy.rs`):
//!
//! - a path into the `shared/` folder beside the repository: a published
//!   clone has no such folder, so nothing may read it;
//! - a Rust file without a `//!` doc saying what the module is for;
//! - a print macro outside the CLI's printer (`crates/rollway/src/output.rs`)
//!   and outside tests and examples: every line a user sees goes through
//!   `output::Printer`;
//! - ARCHITECTURE.md's code map drifting from the workspace's crates as
//!   `cargo metadata --no-deps` lists them, and its dependency diagram
//!   from the crates' declared dependencies;
//! - the binary reaching past the application layer: it may name only
//!   `rollway_app`, `rollway_config` and `rollway_server` (the other front
//!   door over the application layer), in its manifest and its code.
//! - a public module in the engine: its modules are private and its API
//!   is what `crates/rollway-engine/src/lib.rs` re-exports at the root; the
//!   one exception, the `#[doc(hidden)]` `fuzzing` facade, is for the fuzz
//!   targets and the engine's replay of them, nobody else.
//!
//! The files are those git tracks (a walk of the tree, `target/` and dot
//! directories left out, where git is not there to ask).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The repository's files, relative to its root, `/`-separated.
fn files() -> Vec<String> {
    let root = root();
    let git = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output();
    if let Some(out) = git.ok().filter(|o| o.status.success() && !o.stdout.is_empty()) {
        return String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty() && root.join(p).is_file())
            .map(str::to_owned)
            .collect();
    }
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                let skipped = name.starts_with('.') || (dir == root && name == "target");
                if !skipped {
                    stack.push(path);
                }
            } else {
                out.push(path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

fn read(rel: &str) -> Option<String> {
    std::fs::read_to_string(root().join(rel)).ok()
}

/// Files allowed to hold the steering folder's path, each with why.
const SHARED_PATH_ALLOWED: &[(&str, &str)] = &[(
    "crates/rollway-engine/src/target/tests.rs",
    "release symlinks into ROOT/shared/, the release layout's own shared directory",
)];

#[test]
fn nothing_reads_the_folder_beside_the_repository() {
    // Built from parts so this file does not match itself.
    let needle = ["..", "/shared"].concat();
    let mut problems = Vec::new();
    for rel in files() {
        if SHARED_PATH_ALLOWED.iter().any(|(p, _)| *p == rel) {
            continue;
        }
        let Some(text) = read(&rel) else { continue };
        for (i, line) in text.lines().enumerate() {
            if line.contains(&needle) {
                problems.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "a clone has no {needle} folder; use the repository's own copy (docs/, examples/):\n{}",
        problems.join("\n")
    );
}

/// Whether a Rust file opens with a `//!` doc, after any inner attributes
/// (`#![allow(…)]`), which may come first.
fn has_module_doc(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("#!["))
        .is_some_and(|l| l.starts_with("//!"))
}

#[test]
fn every_module_says_what_it_is_for() {
    let missing: Vec<String> = files()
        .into_iter()
        .filter(|rel| rel.starts_with("crates/") && rel.ends_with(".rs"))
        .filter(|rel| read(rel).is_some_and(|t| !has_module_doc(&t)))
        .collect();
    assert!(
        missing.is_empty(),
        "these files start without a `//!` doc saying what the module is for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn print_macros_only_in_the_printer() {
    let print = regex::Regex::new(r"\b(print|println|eprint|eprintln)!\s*\(").unwrap();
    let mut problems = Vec::new();
    for rel in files() {
        let in_src = rel.starts_with("crates/") && rel.contains("/src/") && rel.ends_with(".rs");
        if !in_src || rel == "crates/rollway/src/output.rs" {
            continue;
        }
        let text = read(&rel).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            // Unit tests at the end of a source file may print like any test.
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or_default();
            if print.is_match(code) {
                problems.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "print macros outside crates/rollway/src/output.rs (use output::Printer, or return the text):\n{}",
        problems.join("\n")
    );
}

/// `cargo metadata --no-deps` of the workspace.
fn metadata() -> serde_json::Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each workspace crate with the workspace crates it depends on (normal
/// dependencies only; tests may use more).
fn workspace_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let names: std::collections::BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn the_code_map_names_every_workspace_crate() {
    let crates: Vec<String> = workspace_graph().into_keys().collect();

    // The code map's sections: "### `crates/NAME` — its job".
    let arch = read("ARCHITECTURE.md").unwrap();
    let heading = regex::Regex::new(r"(?m)^### `crates/([A-Za-z0-9_-]+)`").unwrap();
    let mut mapped: Vec<String> = heading.captures_iter(&arch).map(|c| c[1].to_owned()).collect();
    mapped.sort();

    let unmapped: Vec<&String> = crates.iter().filter(|c| !mapped.contains(c)).collect();
    let gone: Vec<&String> = mapped.iter().filter(|m| !crates.contains(m)).collect();
    assert!(
        unmapped.is_empty() && gone.is_empty(),
        "ARCHITECTURE.md's code map and `cargo metadata` disagree: crates without a `### \\`crates/NAME\\`` \
         section: {unmapped:?}; sections naming no workspace crate: {gone:?}"
    );
}

/// The diagram in ARCHITECTURE.md: the first fenced block after the title,
/// one line per crate, `NAME ──► DEP, DEP` (no arrow: no workspace dependency).
fn diagram() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let arch = read("ARCHITECTURE.md").unwrap();
    let block = arch
        .split("```")
        .nth(1)
        .expect("ARCHITECTURE.md opens with a fenced dependency diagram");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, deps) = l.split_once("──►").unwrap_or((l, ""));
            let name = name.trim().trim_end_matches(" (bin)").trim().to_owned();
            let deps = deps
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn the_crate_diagram_matches_the_manifests() {
    let actual = workspace_graph();
    let drawn = diagram();
    let mut problems = Vec::new();
    for (name, deps) in &actual {
        match drawn.get(name) {
            None => problems.push(format!("{name} is not in the diagram")),
            Some(d) if d != deps => problems.push(format!("{name}: the diagram says {d:?}, Cargo.toml says {deps:?}")),
            Some(_) => {}
        }
    }
    for name in drawn.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!("the diagram names {name}, which is no workspace crate"));
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's diagram drifted:\n{}",
        problems.join("\n")
    );
}

/// What the binary may name: the application layer, the config crate and
/// the server (`rollway serve`'s HTTP side, itself over the application layer).
const BINARY_MAY_USE: &[&str] = &["rollway-app", "rollway-config", "rollway-server"];

#[test]
fn the_binary_reaches_only_the_application_layer() {
    let graph = workspace_graph();
    let deps = &graph["rollway"];
    let beyond: Vec<&String> = deps.iter().filter(|d| !BINARY_MAY_USE.contains(&d.as_str())).collect();
    assert!(
        beyond.is_empty(),
        "the rollway binary depends on {beyond:?}; call them through rollway-app"
    );

    let path = regex::Regex::new(r"\brollway_(model|store|secrets|engine|artifact|fs)\s*::").unwrap();
    let mut problems = Vec::new();
    for rel in files()
        .into_iter()
        .filter(|r| r.starts_with("crates/rollway/src/") && r.ends_with(".rs"))
    {
        let text = read(&rel).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if path.is_match(line.split("//").next().unwrap_or_default()) {
                problems.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the binary names crates below the application layer (use rollway_app):\n{}",
        problems.join("\n")
    );
}

/// Who may name the engine's `fuzzing` facade: the fuzz workspace and the
/// engine's own replay of its corpus.
fn may_use_fuzzing(rel: &str) -> bool {
    rel.starts_with("fuzz/") || rel.starts_with("crates/rollway-engine/")
}

#[test]
fn the_engine_exposes_no_module() {
    let lib = "crates/rollway-engine/src/lib.rs";
    let text = read(lib).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or_default().trim();
        if code.contains('*') {
            problems.push(format!("{lib}:{}: a glob re-export: {}", i + 1, line.trim()));
        }
        let Some(rest) = code.strip_prefix("pub mod ") else {
            continue;
        };
        let name = rest.trim_end_matches([';', '{', ' ']);
        // The attributes right above it (doc comments and blank lines end them).
        let hidden = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#["))
            .any(|l| l == "#[doc(hidden)]");
        if !(name == "fuzzing" && hidden) {
            problems.push(format!("{lib}:{}: {}", i + 1, line.trim()));
        }
    }
    assert!(
        problems.is_empty(),
        "the engine's modules are private; re-export what callers need at its root:\n{}",
        problems.join("\n")
    );

    let facade = regex::Regex::new(r"\brollway_engine\s*::\s*fuzzing\b").unwrap();
    let mut users = Vec::new();
    for rel in files()
        .into_iter()
        .filter(|r| r.ends_with(".rs") && !may_use_fuzzing(r))
    {
        let text = read(&rel).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if facade.is_match(line.split("//").next().unwrap_or_default()) {
                users.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        users.is_empty(),
        "only the fuzz targets may use the engine's fuzzing facade:\n{}",
        users.join("\n")
    );
}
