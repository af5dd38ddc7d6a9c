//! `rollway metrics ENV [--type T]`: the seed 003 Monitoring Data records
//! of an environment (refreshed before they are shown), as a table or
//! `--json`.

use clap::Args;
use rollway_app::Result;
use rollway_app::model::{HealthStatus, MetricRecord, MetricType, MetricUnit};

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The environment.
    pub environment: String,
    /// Only records of this type.
    #[arg(long = "type", value_name = "TYPE",
          value_parser = clap::builder::PossibleValuesParser::new(MetricType::NAMES))]
    pub metric_type: Option<String>,
}

/// A value in its unit: 4 decimals for percentages (as `uptime`), 1 for
/// milliseconds, whole counts.
fn value(unit: MetricUnit, v: f64) -> String {
    match unit {
        MetricUnit::Percent => format!("{v:.4} %"),
        MetricUnit::Ms => format!("{v:.1} ms"),
        MetricUnit::Count => format!("{v:.0}"),
    }
}

fn status_cell(s: HealthStatus) -> Cell {
    match s {
        HealthStatus::Healthy => cell("healthy", Tone::Good),
        HealthStatus::Warning => cell("warning", Tone::Warn),
        HealthStatus::Critical => cell("critical", Tone::Bad),
    }
}

pub fn run(s: &Session, args: MetricsArgs) -> Result<()> {
    let rows: Vec<MetricRecord> =
        rollway_app::records::metrics_report(s, &args.environment, args.metric_type.as_deref())?;
    s.printer.answer(&rows);
    if rows.is_empty() {
        s.printer.line(
            Tone::Dim,
            format!(
                "no metric records in {}: its monitors have no samples yet",
                args.environment
            ),
        );
        return Ok(());
    }
    let table: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            vec![
                Cell::from(r.metric_type.as_str()),
                Cell::from(r.source.clone()),
                Cell::from(value(r.unit, r.metric_value)),
                Cell::from(value(r.unit, r.threshold_warning)),
                Cell::from(value(r.unit, r.threshold_critical)),
                status_cell(r.status),
                Cell::from(if r.window_start == r.timestamp {
                    r.timestamp.to_string()
                } else {
                    format!("{} – {}", r.window_start, r.timestamp)
                }),
            ]
        })
        .collect();
    s.printer.table(
        &["TYPE", "SOURCE", "VALUE", "WARNING", "CRITICAL", "STATUS", "WINDOW"],
        &table,
    );
    s.printer.line(
        Tone::Dim,
        "health_check: failed checks in a row; performance: 5-minute average; error_rate: per UTC hour; uptime: month to date",
    );
    Ok(())
}
