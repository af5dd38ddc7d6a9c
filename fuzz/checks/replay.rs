//! Replays a fuzz target's committed inputs on the stable toolchain: every
//! file of `fuzz/seeds/TARGET` (handwritten and generated seeds),
//! `fuzz/corpus/TARGET` (the minimised corpus of the runs) and
//! `fuzz/regressions/TARGET` (the crash inputs, kept after their fix) goes
//! through the target's check. Used by
//! the `tests/fuzz_regressions.rs` of each crate.

use std::path::{Path, PathBuf};

/// The committed inputs of `target`, sorted; `crate_dir` is the crate's
/// `CARGO_MANIFEST_DIR` (the fuzz directory is two levels up).
pub fn inputs(crate_dir: &str, target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(crate_dir).join("../../fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

/// Runs `check` on every input of `target`; a failure names the file.
pub fn replay(crate_dir: &str, target: &str, check: fn(&[u8])) {
    let files = inputs(crate_dir, target);
    assert!(!files.is_empty(), "no committed inputs for fuzz target {target}");
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("fuzz input {} fails its check (message above)", f.display());
        }
    }
}
