//! `rollway alerts list|show|ack|resolve` and `rollway metric push`: the
//! alerts `serve` opened, acknowledged and resolved by hand, and business
//! metrics for the `[alerts.NAME]` rules of type business.

use clap::{Args, Subcommand};
use rollway_app::Result;
use rollway_app::model::Alert;
use rollway_app::model::status::AlertStatus;

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// The alerts, newest first.
    List {
        /// Only open and acknowledged ones.
        #[arg(long)]
        open: bool,
        /// Only this environment's.
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
    },
    /// One alert (by id or a unique prefix) with its notifications.
    Show { id: String },
    /// Acknowledge an alert: you (the operator) and the time are recorded.
    Ack {
        id: String,
        /// No reminders until then: RFC 3339 or a duration from now (4h).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Why (masked before it is stored).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Resolve an alert by hand; a breach still going on opens a new one.
    Resolve {
        id: String,
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MetricCmd {
    /// Store one value of a business metric (for `type = "business"` alert rules).
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    pub name: String,
    /// A number.
    #[arg(allow_negative_numbers = true)]
    pub value: String,
    /// The environment (default: the only one).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// When it was measured, RFC 3339 (default: now).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
}

fn status_cell(a: &Alert) -> Cell {
    let s = a.status();
    cell(
        s.as_str(),
        match s {
            AlertStatus::Open => Tone::Bad,
            AlertStatus::Ack => Tone::Warn,
            AlertStatus::Resolved => Tone::Good,
        },
    )
}

fn fields(s: &Session, a: &Alert) {
    let opt = |v: Option<String>| Cell::from(v.unwrap_or_else(|| "-".to_owned()));
    s.printer.fields(&[
        ("id", Cell::from(a.id.to_string())),
        ("status", status_cell(a)),
        ("environment", Cell::from(a.environment.clone())),
        ("rule", Cell::from(a.rule.clone())),
        ("subject", Cell::from(a.subject.clone())),
        ("type", Cell::from(a.alert_type.as_str())),
        ("severity", Cell::from(a.severity.as_str())),
        ("metric", Cell::from(a.metric.clone())),
        ("threshold", Cell::from(a.threshold.to_string())),
        ("value", opt(a.value.map(|v| format!("{v:.2}")))),
        ("summary", Cell::from(a.summary.clone())),
        ("triggered", Cell::from(a.triggered_at.to_string())),
        ("deployment", opt(a.deployment_id.map(|d| d.to_string()))),
        (
            "acknowledged",
            opt(a
                .acknowledged_at
                .map(|t| format!("{t} by {}", a.acknowledged_by.as_deref().unwrap_or("?")))),
        ),
        ("silenced until", opt(a.ack_until.map(|t| t.to_string()))),
        ("resolved", opt(a.resolved_at.map(|t| t.to_string()))),
        ("note", opt(a.note.clone())),
    ]);
}

pub fn run(s: &Session, cmd: AlertsCmd) -> Result<()> {
    match cmd {
        AlertsCmd::List { open, env } => {
            let alerts = rollway_app::alerts::list(s, open, env.as_deref())?;
            s.printer.answer(&alerts);
            if alerts.is_empty() {
                s.printer
                    .line(Tone::Dim, if open { "no open alerts" } else { "no alerts" });
                return Ok(());
            }
            let rows: Vec<Vec<Cell>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        Cell::from(a.id.to_string()),
                        status_cell(a),
                        Cell::from(a.severity.as_str()),
                        Cell::from(a.environment.clone()),
                        Cell::from(a.rule.clone()),
                        Cell::from(a.subject.clone()),
                        Cell::from(a.triggered_at.to_string()),
                        Cell::from(a.summary.clone()),
                    ]
                })
                .collect();
            s.printer.table(
                &[
                    "ID",
                    "STATUS",
                    "SEVERITY",
                    "ENV",
                    "RULE",
                    "SUBJECT",
                    "TRIGGERED",
                    "SUMMARY",
                ],
                &rows,
            );
        }
        AlertsCmd::Show { id } => {
            let shown = rollway_app::alerts::show(s, &id)?;
            s.printer.answer(&shown);
            fields(s, &shown.alert);
            let rows: Vec<Vec<Cell>> = shown
                .deliveries
                .iter()
                .map(|d| {
                    vec![
                        Cell::from(d.event.clone()),
                        Cell::from(d.channel.clone()),
                        Cell::from(d.status.as_str()),
                        Cell::from(d.attempts.to_string()),
                        Cell::from(d.last_error.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                s.printer
                    .table(&["EVENT", "CHANNEL", "STATUS", "ATTEMPTS", "LAST ERROR"], &rows);
            }
        }
        AlertsCmd::Ack { id, until, note } => {
            let a = rollway_app::alerts::ack(s, &id, until.as_deref(), note.as_deref())?;
            s.printer.answer(&a);
            s.printer.line(
                Tone::Good,
                format!(
                    "alert {} acknowledged by {}",
                    a.id,
                    a.acknowledged_by.as_deref().unwrap_or("?")
                ),
            );
        }
        AlertsCmd::Resolve { id, note } => {
            let a = rollway_app::alerts::resolve(s, &id, note.as_deref())?;
            s.printer.answer(&a);
            s.printer.line(Tone::Good, format!("alert {} resolved", a.id));
        }
    }
    Ok(())
}

pub fn metric(s: &Session, cmd: MetricCmd) -> Result<()> {
    match cmd {
        MetricCmd::Push(a) => {
            let p = rollway_app::alerts::push_metric(s, &a.name, &a.value, a.env.as_deref(), a.time.as_deref())?;
            s.printer.answer(&p);
            s.printer.line(
                Tone::Good,
                format!("{} = {} in {} at {}", p.name, p.value, p.environment, p.time),
            );
        }
    }
    Ok(())
}
