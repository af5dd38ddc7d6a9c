//! Property of the `dotenv` fuzz target, shared with
//! `crates/rollway-secrets/tests/fuzz_regressions.rs`: the dotenv parser
//! behind `rollway secrets import` never panics; an accepted text gives
//! valid, distinct keys, and rendering those entries (what the secrets file
//! and the release's env file hold) parses back to exactly them; a refusal
//! names at least one position inside the text.

use rollway_secrets::dotenv::{is_valid_key, parse, render, render_env_file};

/// Runs one input; panics when the property does not hold.
pub fn check(data: &[u8]) {
    // `secrets import` refuses non-UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(entries) => {
            let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            assert!(keys.iter().all(|k| is_valid_key(k)), "invalid key in {keys:?}");
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), entries.len(), "a key twice");
            let rendered = render(&entries);
            assert_eq!(
                parse(&rendered).ok(),
                Some(entries.clone()),
                "render does not round-trip: {rendered:?}"
            );
            assert_eq!(render_env_file(&entries), rendered);
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "a refusal without an error");
            // Lines count '\n' only, as the parser does; columns count characters.
            let lines: Vec<&str> = text.split('\n').collect();
            for pe in &e.errors {
                assert!(pe.line >= 1 && pe.line <= lines.len(), "line out of the text: {pe}");
                let width = lines[pe.line - 1].chars().count();
                assert!(pe.col >= 1 && pe.col <= width + 1, "column out of the line: {pe}");
            }
            let _ = e.to_string();
        }
    }
}
