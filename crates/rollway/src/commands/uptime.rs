//! `rollway uptime`, `rollway slo` and `rollway maintenance add|list|rm`:
//! the seed 003 numbers per month and the error budget, and the windows
//! removed from both.

use clap::{Args, Subcommand};
use rollway_app::Result;
use rollway_app::model::maintenance::{MaintenanceWindow, Schedule};
use rollway_app::model::rollup::Verdict;
use rollway_app::uptime::NewWindow;

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct UptimeArgs {
    /// An environment (its monitors) or one monitor; default: every monitor.
    pub target: Option<String>,
    /// The calendar month, YYYY-MM, in each environment's time zone
    /// (default: the current month, counted to now).
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
}

#[derive(Debug, Args)]
pub struct SloArgs {
    /// The environment.
    pub environment: String,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCmd {
    /// Add a window: one-off (--start, --end) or recurring (--cron, --duration).
    Add {
        /// The environment the window applies to (or --monitor).
        environment: Option<String>,
        /// Only this monitor (its environment is implied).
        #[arg(long, value_name = "NAME", conflicts_with = "environment")]
        monitor: Option<String>,
        /// Start, RFC 3339 on a whole minute (2026-11-01T02:00:00Z).
        #[arg(long, value_name = "T", requires = "end", conflicts_with_all = ["cron", "duration"])]
        start: Option<String>,
        /// End, RFC 3339 on a whole minute, after the start.
        #[arg(long, value_name = "T", requires = "start")]
        end: Option<String>,
        /// A five-field cron expression read in the environment's time zone ("0 3 * * SUN").
        #[arg(long, value_name = "EXPR", requires = "duration")]
        cron: Option<String>,
        /// How long each occurrence lasts, whole minutes (30m, 2h).
        #[arg(long, value_name = "D", requires = "cron")]
        duration: Option<String>,
        /// Why (masked before it is stored).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// List the windows (of one environment, or all).
    List { environment: Option<String> },
    /// Remove a window by its id.
    Rm { id: i64 },
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |p| format!("{p:.4} %"))
}

fn verdict_cell(v: Verdict) -> Cell {
    match v {
        Verdict::Ok => cell("ok", Tone::Good),
        Verdict::Breached => cell("breached", Tone::Bad),
        Verdict::NoData => cell("no data", Tone::Dim),
    }
}

fn secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.3} s")
    }
}

pub fn uptime(s: &Session, args: UptimeArgs) -> Result<()> {
    let rows = rollway_app::uptime::uptime_report(s, args.target.as_deref(), args.month.as_deref())?;
    s.printer.answer(&rows);
    if rows.is_empty() {
        s.printer.line(Tone::Dim, "no monitors");
        return Ok(());
    }
    let table: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            vec![
                Cell::from(r.monitor.clone()),
                Cell::from(if r.month_to_date {
                    format!("{} (to date)", r.month)
                } else {
                    r.month.to_string()
                }),
                Cell::from(pct(r.uptime_percent)),
                Cell::from(format!("{:.2} %", r.target_percent)),
                verdict_cell(r.verdict),
                Cell::from(format!("{} ({:.2} min)", secs(r.downtime_seconds), r.downtime_minutes)),
                Cell::from(secs(r.maintenance_seconds)),
                Cell::from(secs(r.no_data_seconds)),
            ]
        })
        .collect();
    s.printer.table(
        &[
            "MONITOR",
            "MONTH",
            "UPTIME",
            "TARGET",
            "VERDICT",
            "DOWNTIME",
            "MAINTENANCE",
            "NO DATA",
        ],
        &table,
    );
    let zones: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.timezone.as_str()).collect();
    s.printer.line(
        Tone::Dim,
        format!(
            "months in {}; uptime = 1 − downtime / (period − maintenance − no data)",
            zones.into_iter().collect::<Vec<_>>().join(", ")
        ),
    );
    for r in rows.iter().filter(|r| r.maintenance_from == "stored") {
        s.printer.line(
            Tone::Warn,
            format!(
                "{}: minute rollups of {} are pruned (kept 35 days): maintenance is the seconds stored with the hours and days",
                r.monitor, r.month
            ),
        );
    }
    Ok(())
}

fn burn(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |b| format!("{b:.2}"))
}

fn window_name(ms: i64) -> String {
    rollway_app::model::time::format_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

pub fn slo(s: &Session, args: SloArgs) -> Result<()> {
    let rows = rollway_app::uptime::slo_report(s, &args.environment)?;
    s.printer.answer(&rows);
    if rows.is_empty() {
        s.printer
            .line(Tone::Dim, format!("no monitors in {}", args.environment));
        return Ok(());
    }
    for r in &rows {
        let b = &r.budget;
        s.printer.fields(&[
            ("monitor", Cell::from(r.monitor.clone())),
            (
                "target",
                Cell::from(format!("{:.2} % over {} days", r.target_percent, r.slo_window_days)),
            ),
            (
                "error budget",
                Cell::from(format!(
                    "{:.2} % = {} s of downtime allowed",
                    b.budget * 100.0,
                    b.allowed_ms / 1000
                )),
            ),
            (
                "used",
                Cell::from(format!(
                    "{} s ({})",
                    b.downtime_ms as f64 / 1000.0,
                    b.used.map_or_else(|| "-".to_owned(), |u| format!("{:.2} %", u * 100.0))
                )),
            ),
            (
                "left",
                cell(
                    b.left.map_or_else(|| "-".to_owned(), |l| format!("{:.2} %", l * 100.0)),
                    if b.left.is_some_and(|l| l <= 0.0) {
                        Tone::Bad
                    } else {
                        Tone::Plain
                    },
                ),
            ),
            (
                "verdict",
                cell(
                    r.verdict,
                    match r.verdict {
                        "page" => Tone::Bad,
                        "ticket" => Tone::Warn,
                        _ => Tone::Good,
                    },
                ),
            ),
        ]);
        let table: Vec<Vec<Cell>> = r
            .windows
            .iter()
            .map(|w| {
                vec![
                    Cell::from(window_name(w.window_ms)),
                    Cell::from(format!("{} s", w.downtime_ms as f64 / 1000.0)),
                    Cell::from(format!("{} s", w.observed_ms as f64 / 1000.0)),
                    Cell::from(burn(w.burn_rate)),
                ]
            })
            .collect();
        s.printer
            .table(&["WINDOW", "DOWNTIME", "OBSERVED", "BURN RATE"], &table);
        let rules: Vec<Vec<Cell>> = r
            .rules
            .iter()
            .map(|x| {
                vec![
                    Cell::from(format!("{:?}", x.severity).to_lowercase()),
                    Cell::from(format!(
                        "> {} over {} and {}",
                        x.factor,
                        window_name(x.long.window_ms),
                        window_name(x.short.window_ms)
                    )),
                    if x.firing {
                        cell("firing", Tone::Bad)
                    } else {
                        cell("quiet", Tone::Good)
                    },
                ]
            })
            .collect();
        s.printer.table(&["RULE", "WHEN", "NOW"], &rules);
    }
    Ok(())
}

fn schedule_text(w: &MaintenanceWindow) -> String {
    match &w.schedule {
        Schedule::Once { start, end } => format!("{start} → {end}"),
        Schedule::Cron {
            expression,
            duration_ms,
        } => format!("cron \"{expression}\" for {}", window_name(*duration_ms)),
    }
}

pub fn maintenance(s: &Session, cmd: MaintenanceCmd) -> Result<()> {
    match cmd {
        MaintenanceCmd::Add {
            environment,
            monitor,
            start,
            end,
            cron,
            duration,
            note,
        } => {
            let w = rollway_app::uptime::maintenance_add(
                s,
                NewWindow {
                    environment,
                    monitor,
                    start,
                    end,
                    cron,
                    duration,
                    note,
                },
            )?;
            s.printer.answer(&w);
            s.printer.line(
                Tone::Good,
                format!(
                    "maintenance window {} added to {}: {}",
                    w.id,
                    w.monitor.as_deref().unwrap_or(&w.environment),
                    schedule_text(&w)
                ),
            );
        }
        MaintenanceCmd::List { environment } => {
            let rows = rollway_app::uptime::maintenance_list(s, environment.as_deref())?;
            s.printer.answer(&rows);
            if rows.is_empty() {
                s.printer
                    .line(Tone::Dim, "no maintenance windows: `rollway maintenance add` adds one");
                return Ok(());
            }
            let table: Vec<Vec<Cell>> = rows
                .iter()
                .map(|w| {
                    vec![
                        Cell::from(w.id.to_string()),
                        Cell::from(w.environment.clone()),
                        Cell::from(w.monitor.clone().unwrap_or_else(|| "(all)".to_owned())),
                        Cell::from(schedule_text(w)),
                        Cell::from(w.operator.clone()),
                        Cell::from(w.note.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            s.printer.table(&["ID", "ENV", "MONITOR", "WHEN", "BY", "NOTE"], &table);
        }
        MaintenanceCmd::Rm { id } => {
            let w = rollway_app::uptime::maintenance_rm(s, id)?;
            s.printer.answer(&w);
            s.printer.line(
                Tone::Good,
                format!("maintenance window {id} removed: {}", schedule_text(&w)),
            );
        }
    }
    Ok(())
}
