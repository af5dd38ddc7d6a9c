//! `rollway env list|show|activate|deprecate`: the environments rollway.toml
//! defines, with the lifecycle the store keeps for them.

use clap::Subcommand;
use rollway_app::Result;
use rollway_app::model::EnvironmentStatus;

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum EnvCmd {
    /// List environments with kind, lifecycle status and domain.
    List,
    /// Show one environment's record, lifecycle history and hosts.
    Show { name: String },
    /// Mark an environment active (created → active).
    Activate { name: String },
    /// Mark an environment deprecated (active → deprecated).
    Deprecate { name: String },
}

fn status_cell(status: EnvironmentStatus) -> Cell {
    let tone = match status {
        EnvironmentStatus::Active => Tone::Good,
        EnvironmentStatus::Created => Tone::Plain,
        EnvironmentStatus::Deprecated => Tone::Warn,
    };
    cell(status.as_str(), tone)
}

pub fn run(s: &Session, cmd: EnvCmd) -> Result<()> {
    match cmd {
        EnvCmd::List => {
            let envs = rollway_app::env::list(s)?;
            s.printer.json(&envs);
            let rows: Vec<Vec<Cell>> = envs
                .iter()
                .map(|e| {
                    vec![
                        Cell::from(e.name.clone()),
                        Cell::from(e.kind.as_str()),
                        status_cell(e.status()),
                        Cell::from(e.platform.as_str()),
                        Cell::from(e.domain.clone().unwrap_or_else(|| "-".into())),
                        Cell::from(if e.https { "yes" } else { "no" }),
                    ]
                })
                .collect();
            s.printer
                .table(&["NAME", "KIND", "STATUS", "PLATFORM", "DOMAIN", "HTTPS"], &rows);
        }
        EnvCmd::Show { name } => {
            let shown = rollway_app::env::show(s, &name)?;
            if s.printer.is_json() {
                s.printer.answer(&shown);
                return Ok(());
            }
            let env = shown.environment;
            s.printer.fields(&[
                ("name", Cell::from(env.name.clone())),
                ("id", Cell::from(env.id.to_string())),
                ("kind", Cell::from(env.kind.as_str())),
                ("status", status_cell(env.status())),
                ("platform", Cell::from(env.platform.as_str())),
                ("app", Cell::from(env.app.clone().unwrap_or_else(|| "-".into()))),
                ("domain", Cell::from(env.domain.clone().unwrap_or_else(|| "-".into()))),
                ("https", Cell::from(if env.https { "yes" } else { "no" })),
                (
                    "nginx config",
                    Cell::from(env.nginx_config.clone().unwrap_or_else(|| "-".into())),
                ),
                ("config", Cell::from(env.config.to_string())),
                ("created", Cell::from(env.created_at.to_string())),
                ("updated", Cell::from(env.updated_at.to_string())),
            ]);
            s.printer.line(Tone::Plain, "");
            let rows: Vec<Vec<Cell>> = env
                .lifecycle
                .history()
                .iter()
                .map(|r| {
                    vec![
                        Cell::from(r.at.to_string()),
                        Cell::from(r.from.map_or("-", |f| f.as_str())),
                        status_cell(r.to),
                    ]
                })
                .collect();
            s.printer.table(&["AT", "FROM", "TO"], &rows);
        }
        EnvCmd::Activate { name } => transition(s, &name, EnvironmentStatus::Active)?,
        EnvCmd::Deprecate { name } => transition(s, &name, EnvironmentStatus::Deprecated)?,
    }
    Ok(())
}

fn transition(s: &Session, name: &str, to: EnvironmentStatus) -> Result<()> {
    let env = rollway_app::env::transition(s, name, to)?;
    s.printer.json(&env);
    s.printer
        .line(Tone::Good, format!("environment {name} is {}", env.status()));
    Ok(())
}
