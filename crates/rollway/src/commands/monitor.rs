//! `rollway monitor list|check`: the monitors of rollway.toml, and one probe
//! run now (no server needed; nothing stored).

use clap::Subcommand;
use rollway_app::Result;
use rollway_app::error::Error;

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum MonitorCmd {
    /// List the monitors: [monitors.NAME] and each domain's default one.
    List,
    /// Probe one monitor now and print the sample; exit 1 unless it is ok.
    Check {
        /// The monitor's name (`rollway monitor list`).
        name: String,
    },
    /// Stop probing a monitor (a running `serve` follows within seconds);
    /// the paused stretch is no data, never downtime.
    Pause {
        /// The monitor's name (`rollway monitor list`).
        name: String,
    },
    /// Probe a paused monitor again.
    Resume {
        /// The monitor's name (`rollway monitor list`).
        name: String,
    },
}

fn duration(ms: u64) -> String {
    rollway_app::model::time::format_duration(std::time::Duration::from_millis(ms))
}

/// `monitor pause|resume NAME`.
fn set_paused(s: &Session, name: &str, pause: bool) -> Result<()> {
    let row = rollway_app::monitors::set_paused(s, name, pause)?;
    s.printer.answer(&row);
    s.printer.line(
        Tone::Good,
        if pause {
            format!("monitor {name} paused: `rollway serve` stops probing it (no data, not downtime)")
        } else {
            format!("monitor {name} resumed")
        },
    );
    Ok(())
}

pub fn run(s: &Session, cmd: MonitorCmd) -> Result<()> {
    match cmd {
        MonitorCmd::List => {
            let rows = rollway_app::monitors::list(s)?;
            s.printer.answer(&rows);
            if rows.is_empty() {
                s.printer.line(
                    Tone::Dim,
                    "no monitors: add a [monitors.NAME] table, or a domain to an environment",
                );
                return Ok(());
            }
            let table: Vec<Vec<Cell>> = rows
                .iter()
                .map(|m| {
                    vec![
                        Cell::from(m.name.clone()),
                        Cell::from(m.environment.clone()),
                        Cell::from(m.kind),
                        Cell::from(m.probes.clone()),
                        Cell::from(duration(m.interval_ms)),
                        Cell::from(m.timeout_ms.map_or_else(|| "-".to_owned(), duration)),
                        Cell::from(m.retries.to_string()),
                        if m.paused {
                            cell("paused", Tone::Warn)
                        } else {
                            Cell::from("-")
                        },
                    ]
                })
                .collect();
            s.printer.table(
                &["NAME", "ENV", "KIND", "PROBES", "EVERY", "TIMEOUT", "RETRIES", "PAUSED"],
                &table,
            );
        }
        MonitorCmd::Pause { name } => set_paused(s, &name, true)?,
        MonitorCmd::Resume { name } => set_paused(s, &name, false)?,
        MonitorCmd::Check { name } => {
            let checked = rollway_app::monitors::check(s, &name)?;
            let sample = &checked.sample;
            let outcome = sample.outcome.as_str();
            let tone = match outcome {
                "ok" => Tone::Good,
                "error" => Tone::Warn,
                _ => Tone::Bad,
            };
            let mut fields = vec![
                ("monitor", Cell::from(checked.monitor.name.clone())),
                ("probes", Cell::from(checked.monitor.probes.clone())),
                ("outcome", cell(outcome, tone)),
                ("latency", Cell::from(format!("{} ms", sample.latency_ms))),
            ];
            if let Some(status) = sample.http_status {
                fields.push(("http status", Cell::from(status.to_string())));
            }
            if let Some(c) = sample.cache_status {
                fields.push(("cache", Cell::from(c.as_str())));
            }
            if let Some(l) = &sample.location {
                fields.push(("location", Cell::from(l.clone())));
            }
            if let Some(e) = &sample.error {
                fields.push(("error", cell(e.clone(), tone)));
            }
            s.printer.fields(&fields);
            if outcome != "ok" {
                let details = serde_json::to_value(&checked).unwrap_or_default();
                return Err(Error::failed(format_args!(
                    "monitor {name}: {outcome}: {}",
                    sample.error.as_deref().unwrap_or("the probe did not pass")
                ))
                .with_details(details));
            }
            s.printer.answer(&checked);
        }
    }
    Ok(())
}
