//! Property of the `config` fuzz target, shared with
//! `crates/rollway-config/tests/fuzz_regressions.rs`: `rollway_config::parse`
//! (what `rollway config check` runs) never panics on any text; a refusal
//! carries at least one diagnostic, each pointing inside the text, sorted by
//! position; an accepted config answers what `config check` and `deploy`
//! ask of it, and its stacks all fall into dependency waves (the checks
//! refused every cycle and unknown name).

use rollway_config::parse;

/// Runs one input; panics when the property does not hold.
pub fn check(data: &[u8]) {
    // The CLI reads the file with `read_to_string`: non-UTF-8 never gets here.
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match parse(source, "rollway.toml") {
        Ok(config) => {
            let specs = config.environment_specs();
            assert_eq!(specs.len(), config.environments.len());
            for name in config.environments.keys() {
                let _ = config.health_for(name);
            }
            let waves = config.stack_waves();
            let placed: usize = waves.iter().map(Vec::len).sum();
            assert_eq!(placed, config.stacks.len(), "stacks left out of the waves: {waves:?}");
            // `config check --json` and `config schema` print these.
            assert!(serde_json::to_string(&config).is_ok());
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "a refusal without a diagnostic");
            let lines: Vec<&str> = source.split('\n').collect();
            let mut last = (0, 0);
            for d in &diags {
                assert!(d.line >= 1 && d.line <= lines.len(), "line out of the text: {d}");
                let width = lines[d.line - 1].chars().count();
                assert!(d.col >= 1 && d.col <= width + 1, "column out of the line: {d}");
                assert!(!d.message.is_empty(), "empty message at {}:{}", d.line, d.col);
                assert!((d.line, d.col) >= last, "diagnostics out of order: {diags}");
                last = (d.line, d.col);
                let _ = d.to_string();
            }
        }
    }
}
