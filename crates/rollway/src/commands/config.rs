//! `rollway config check|schema`.

use clap::Subcommand;

use crate::output::{Cell, Tone};
use crate::session::Session;
use rollway_app::Result;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check rollway.toml: every problem at once, each with file:line:col (exit 2).
    Check,
    /// Print the JSON Schema of rollway.toml, for editors.
    Schema,
}

pub fn run(s: &Session, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Check => {
            let config = s.config()?;
            let envs: Vec<_> = config.environment_specs();
            if s.printer.is_json() {
                s.printer.json(&serde_json::json!({
                    "ok": true,
                    "file": s.config_path(),
                    "project": config.project,
                    "environments": envs,
                }));
            } else {
                s.printer
                    .line(Tone::Good, format!("{} is valid", s.config_path().display()));
                let rows: Vec<Vec<Cell>> = envs
                    .iter()
                    .map(|e| {
                        vec![
                            Cell::from(e.name.clone()),
                            Cell::from(e.kind.as_str()),
                            Cell::from(e.platform.as_str()),
                            Cell::from(e.domain.clone().unwrap_or_default()),
                        ]
                    })
                    .collect();
                s.printer.table(&["ENVIRONMENT", "KIND", "PLATFORM", "DOMAIN"], &rows);
            }
            Ok(())
        }
        ConfigCmd::Schema => {
            // The schema is itself the machine answer, in both modes.
            let schema = rollway_config::json_schema();
            let text = serde_json::to_string_pretty(&schema)?;
            if s.printer.is_json() {
                s.printer.json(&schema);
            } else {
                s.printer.line(Tone::Plain, text);
            }
            Ok(())
        }
    }
}
