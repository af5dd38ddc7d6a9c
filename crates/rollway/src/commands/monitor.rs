//! `rollway monitor list|check|show|push`: the monitors of rollway.toml,
//! one probe run now (no server needed; nothing stored), one monitor's
//! state and seed 003 numbers, and samples pushed from elsewhere.

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
    /// One monitor: state, latest samples, response-time targets over the
    /// last hour, this month's uptime, a latency sparkline on a terminal.
    Show { name: String },
    /// Record samples from stdin, one JSON object a line:
    /// {"time": "2026-11-01T00:00:00Z" or milliseconds (default now),
    /// "outcome": "ok|error|unavailable", "status": 200, "latency_ms": 12,
    /// "location": "…", "error": "…"}. For kind = "push" monitors; a
    /// probed monitor takes them only with --import.
    Push {
        name: String,
        /// Bring history into a monitor Rollway probes itself.
        #[arg(long)]
        import: bool,
    },
}

/// Unicode blocks, lowest to highest.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One block per value scaled to the largest; a space where there is none.
fn sparkline(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if max <= 0.0 => BLOCKS[0],
            Some(x) => BLOCKS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn target_cell(t: &rollway_app::model::rollup::TargetCheck, unit: &str, scale: f64) -> Cell {
    use rollway_app::model::rollup::Verdict;
    let value = t
        .value
        .map_or_else(|| "-".to_owned(), |v| format!("{:.1}{unit}", v * scale));
    let target = format!("< {}{unit}", t.target * scale);
    match t.verdict {
        Verdict::Ok => cell(format!("{value} ({target}) ok"), Tone::Good),
        Verdict::Breached => cell(format!("{value} ({target}) breached"), Tone::Bad),
        Verdict::NoData => cell(format!("no data ({target})"), Tone::Dim),
    }
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
                        match m.state.map(|st| st.as_str()) {
                            None => Cell::from("-"),
                            Some("up") => cell("up", Tone::Good),
                            Some(st @ ("down" | "pending")) => cell(st, Tone::Bad),
                            Some(st) => cell(st, Tone::Warn),
                        },
                    ]
                })
                .collect();
            s.printer.table(
                &["NAME", "ENV", "KIND", "PROBES", "EVERY", "TIMEOUT", "RETRIES", "STATE"],
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
        MonitorCmd::Show { name } => {
            let m = rollway_app::uptime::show(s, &name)?;
            s.printer.answer(&m);
            let state = match (m.paused, m.last_outcome) {
                (true, _) => cell("paused", Tone::Dim),
                (false, None) => cell("no samples yet", Tone::Dim),
                (false, Some(o)) => cell(
                    o.as_str(),
                    match o.as_str() {
                        "ok" => Tone::Good,
                        "error" => Tone::Warn,
                        _ => Tone::Bad,
                    },
                ),
            };
            let month = &m.month;
            let mut fields = vec![
                ("monitor", Cell::from(m.monitor.clone())),
                ("environment", Cell::from(m.environment.clone())),
                ("kind", Cell::from(m.kind.clone())),
                ("last status", state),
                (
                    "last checked",
                    Cell::from(m.last_checked_at.map_or_else(|| "-".to_owned(), |t| t.to_string())),
                ),
                (
                    "average 5m",
                    Cell::from(m.average_5m_ms.map_or_else(|| "-".to_owned(), |a| format!("{a:.1} ms"))),
                ),
                ("p95 1h", target_cell(&m.targets_1h.p95_ms, " ms", 1.0)),
                ("average 1h", target_cell(&m.targets_1h.average_ms, " ms", 1.0)),
                ("error rate 1h", target_cell(&m.targets_1h.error_rate, " %", 100.0)),
                (
                    "uptime",
                    Cell::from(format!(
                        "{} in {}{}: downtime {} s ({:.2} min), maintenance {} s, no data {} s, target {:.2} %",
                        month
                            .uptime_percent
                            .map_or_else(|| "-".to_owned(), |u| format!("{u:.4} %")),
                        month.month,
                        if month.month_to_date { " to date" } else { "" },
                        month.downtime_seconds,
                        month.downtime_minutes,
                        month.maintenance_seconds,
                        month.no_data_seconds,
                        month.target_percent
                    )),
                ),
            ];
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                fields.push(("latency 1h", Cell::from(sparkline(&m.latency_per_minute_ms))));
            }
            s.printer.fields(&fields);
            let rows: Vec<Vec<Cell>> = m
                .latest
                .iter()
                .map(|x| {
                    vec![
                        Cell::from(x.slot.to_string()),
                        Cell::from(x.outcome.as_str()),
                        Cell::from(x.http_status.map_or_else(|| "-".to_owned(), |c| c.to_string())),
                        Cell::from(x.latency_ms.map_or_else(|| "-".to_owned(), |l| format!("{l} ms"))),
                        Cell::from(x.error.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                s.printer
                    .table(&["TIME", "OUTCOME", "STATUS", "LATENCY", "ERROR"], &rows);
            }
        }
        MonitorCmd::Push { name, import } => {
            let pushed = rollway_app::uptime::push(s, &name, std::io::stdin().lock(), import)?;
            s.printer.answer(&pushed);
            s.printer.line(
                Tone::Good,
                format!(
                    "{}: {} sample{} recorded, {} already there{}",
                    pushed.monitor,
                    pushed.inserted,
                    if pushed.inserted == 1 { "" } else { "s" },
                    pushed.duplicates,
                    match (pushed.first, pushed.last) {
                        (Some(a), Some(b)) => format!(" ({a} to {b})"),
                        _ => String::new(),
                    }
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparklines_scale_to_the_largest_value() {
        assert_eq!(super::sparkline(&[Some(0.0), Some(50.0), None, Some(100.0)]), "▁▅ █");
        assert_eq!(super::sparkline(&[None, Some(0.0)]), " ▁");
    }
}
