//! rollway.toml: parsed into a spanned document, read into typed values and
//! checked as a whole, so one run reports every problem as
//! `rollway.toml:LINE:COL: what is wrong — what to do`.

mod checks;
mod diagnostic;
mod hosts;
mod parse;
mod reader;
mod schema;
mod serde_duration;
mod template;
mod types;

use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Diagnostics};
pub use hosts::{parse_host, parse_ssh};
pub use schema::json_schema;
pub use template::{PRESETS, template, template_for};
pub use types::{
    BuildConfig, Config, DeployConfig, EnvironmentConfig, HealthConfig, HealthOverrides, HostConfig, HostTarget,
    JobConfig, PRODUCTION_MIN_STABILITY_WINDOW, SecretsConfig, ServiceConfig, ServiceOverrides, SshConfig,
    SshDestination, StackConfig, VariableConfig, VariableFormat,
};

/// `ROLLWAY_OUTPUT_<STACK>_<KEY>`: how a stack output reaches later stacks.
pub fn output_var(stack: &str, key: &str) -> String {
    rollway_model::outputs::output_var(stack, key)
}

/// Parses and checks `source`; `file_name` is what diagnostics call the file.
/// Every problem found is returned, sorted by position.
pub fn parse(source: &str, file_name: &str) -> Result<Config, Diagnostics> {
    let lines = diagnostic::LineIndex::new(source);
    let locate = |at: usize, message: String, hint: String| {
        let (line, col) = lines.position(at);
        Diagnostic {
            file: file_name.to_owned(),
            line,
            col,
            message,
            hint,
        }
    };
    let doc = match toml_edit::Document::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let at = e.span().map_or(0, |r| r.start);
            let hint = if e.message().contains("duplicate key") {
                "each key may appear once in a table; remove or rename the repeated one"
            } else {
                "fix the TOML syntax here; strings need double quotes, tables are [name]"
            };
            return Err(Diagnostics(vec![locate(
                at,
                format!("invalid TOML: {}", e.message().trim()),
                hint.to_owned(),
            )]));
        }
    };
    let cx = reader::Ctx::new(source);
    let mut marks = parse::Marks::default();
    let config = parse::read_config(&cx, doc.as_table(), &mut marks);
    checks::check(&cx, &config, &marks);
    let mut found = cx.into_found();
    if found.is_empty() {
        return Ok(config);
    }
    // Stable: problems at one position keep the order they were found in.
    found.sort_by_key(|f| f.at);
    Err(Diagnostics(
        found.into_iter().map(|f| locate(f.at, f.message, f.hint)).collect(),
    ))
}

/// Reads and checks the file at `path`; diagnostics name it as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&source, &path.display().to_string()).map_err(ConfigError::Invalid)
}
