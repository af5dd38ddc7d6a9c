//! `rollway status` and `rollway history`: what each environment runs and
//! every deployment with its transitions, reasons and host results, as the
//! app layer's queries answer them.

use clap::Args;
use rollway_app::Result;
use rollway_app::model::{CheckResult, Deployment, DeploymentStatus, Verification};
use rollway_app::queries::{HistoryItem, LiveHost};

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this environment.
    pub env: Option<String>,
    /// At most this many deployments, newest first (1 or more).
    #[arg(long, default_value_t = 20, value_parser = parse_limit)]
    pub limit: usize,
    /// Only deployments in this status, in any case; the seeds' words work
    /// too (SUCCESS, completed, FAILED, ROLLED_BACK, and IN_PROGRESS for
    /// building, synthesizing, deploying or verifying).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
}

/// `--limit`: a count of at least one (0 would list nothing and look like
/// an empty history).
fn parse_limit(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 would show nothing: use 1 or more".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number: use 1 or more".to_owned()),
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment.
    pub env: Option<String>,
}

pub fn status_cell(s: DeploymentStatus) -> Cell {
    let tone = match s {
        DeploymentStatus::Succeeded => Tone::Good,
        DeploymentStatus::Failed => Tone::Bad,
        DeploymentStatus::RolledBack | DeploymentStatus::Cancelled => Tone::Warn,
        _ => Tone::Plain,
    };
    cell(s.as_str(), tone)
}

pub fn history(s: &Session, args: HistoryArgs) -> Result<()> {
    let items = rollway_app::queries::history(s, args.env.as_deref(), args.limit, args.status.as_deref())?;
    if s.printer.is_json() {
        s.printer.answer(&items);
        return Ok(());
    }
    if items.is_empty() {
        s.printer.line(Tone::Dim, "no deployments yet");
        return Ok(());
    }
    for HistoryItem {
        deployment: d,
        verifications: vs,
        stacks,
        alerts,
        backups,
        ..
    } in &items
    {
        print_deployment(s, d, vs);
        for b in backups {
            s.printer.line(
                Tone::Plain,
                format!(
                    "  pre-migration backup {} {} ({}, {} bytes)",
                    b.id,
                    b.name,
                    b.status(),
                    b.size_bytes
                ),
            );
        }
        for a in alerts {
            s.printer.line(
                Tone::Warn,
                format!(
                    "  alert {} {} {} min after: {} ({})",
                    a.id,
                    a.severity.as_str(),
                    a.minutes_after_deployment.unwrap_or_default(),
                    a.summary,
                    a.status()
                ),
            );
        }
        // The release alone is the common case; its hosts say enough.
        if stacks.len() > 1 || stacks.iter().any(|st| st.stack.name != "release") {
            for st in stacks {
                let error = st
                    .stack
                    .error_message
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                s.printer.line(
                    Tone::Plain,
                    format!("  stack {} {}{error}", st.stack.name, st.stack.status()),
                );
                for r in &st.resources {
                    s.printer.line(
                        Tone::Dim,
                        format!("    {} {} {}", r.resource_type, r.logical_id, r.status()),
                    );
                }
            }
            s.printer.line(Tone::Plain, "");
        }
    }
    Ok(())
}

/// One deployment for people: a headline, its transitions, reasons and hosts.
pub fn print_deployment(s: &Session, d: &Deployment, vs: &[Verification]) {
    let tone = match d.status() {
        DeploymentStatus::Succeeded => Tone::Good,
        DeploymentStatus::Failed => Tone::Bad,
        DeploymentStatus::RolledBack | DeploymentStatus::Cancelled => Tone::Warn,
        _ => Tone::Plain,
    };
    s.printer.line(
        tone,
        format!(
            "{} {} {} of {} by {}{}",
            d.id,
            d.status(),
            d.kind.as_str(),
            d.environment,
            d.operator,
            d.version_tag.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        ),
    );
    let rows: Vec<Vec<Cell>> = d
        .lifecycle
        .history()
        .iter()
        .map(|r| {
            vec![
                Cell::from(format!("  {}", r.at)),
                Cell::from(r.from.map_or("-", |f| f.as_str())),
                status_cell(r.to),
            ]
        })
        .collect();
    s.printer.table(&["  AT", "FROM", "TO"], &rows);
    if let Some(r) = &d.failure_reason {
        s.printer.line(Tone::Bad, format!("  failure: {r}"));
    }
    if let Some(r) = &d.rollback_reason {
        s.printer.line(Tone::Warn, format!("  rollback: {r}"));
    }
    if let Some(to) = &d.rollback_to {
        s.printer.line(Tone::Plain, format!("  returned to: release {to}"));
    }
    let phases = rollway_app::deploy::phases_line(&rollway_app::deploy::phases(d, vs));
    if !phases.is_empty() {
        s.printer.line(Tone::Dim, format!("  phases: {phases}"));
    }
    for v in vs {
        // Seed 000 PASS: a window that tolerated failed probes says how many.
        if v.failed_probes > 0 {
            let text = match v.result {
                Some(CheckResult::Pass) => format!(
                    "  window: PASS with {} failed probe(s) tolerated (window_failures allows fewer in a row)",
                    v.failed_probes
                ),
                other => format!(
                    "  window: {} with {} failed probe(s)",
                    other.map_or("pending", |r| r.as_str()),
                    v.failed_probes
                ),
            };
            s.printer.line(Tone::Warn, text);
        }
        for h in &v.hosts {
            // The last probe: the one that failed the window, if one did.
            s.printer.line(
                Tone::Plain,
                format!(
                    "  host {}: {} (HTTP {}, {} ms, {} restart(s), {} bytes sent{})",
                    h.host,
                    h.result.map_or("pending", |r| r.as_str()),
                    h.http_status.map_or("-".into(), |c| c.to_string()),
                    h.latency_ms.map_or("-".into(), |c| c.to_string()),
                    h.restarts_observed,
                    h.bytes_sent,
                    h.returned_to
                        .as_ref()
                        .map(|r| format!(", returned to {r}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    s.printer.line(Tone::Plain, "");
}

pub fn status(s: &Session, args: StatusArgs) -> Result<()> {
    let out = rollway_app::queries::status(s, args.env.as_deref())?;
    if s.printer.is_json() {
        s.printer.answer(&out);
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = out
        .iter()
        .map(|e| {
            let name = &e.environment;
            vec![
                Cell::from(name.clone()),
                Cell::from(e.status.map_or("-", |st| st.as_str())),
                Cell::from(e.current.as_ref().map_or("-".to_owned(), |d| d.id.to_string())),
                Cell::from(
                    e.current
                        .as_ref()
                        .and_then(|d| d.version_tag.clone())
                        .unwrap_or_else(|| "-".into()),
                ),
                match e.in_progress.first() {
                    Some(_) if e.window_ended_unwatched => cell(
                        format!("verifying (window ended unwatched; run rollway verify {name})"),
                        Tone::Warn,
                    ),
                    Some(d) => status_cell(d.status()),
                    None => cell("idle", Tone::Dim),
                },
                Cell::from(
                    e.lock
                        .as_ref()
                        .map_or("-".to_owned(), |l| format!("{} until {}", l.owner, l.expires_at)),
                ),
            ]
        })
        .collect();
    s.printer.table(
        &["ENVIRONMENT", "STATUS", "CURRENT RELEASE", "VERSION", "NOW", "LOCK"],
        &rows,
    );
    if let Some(e) = out.first()
        && let Some(hosts) = &e.hosts
    {
        print_live(s, hosts, e.current.as_ref().map(|d| d.id.to_string()));
    }
    Ok(())
}

/// The hosts' table; `current` is the environment's current deployment,
/// whose release a host may run from an earlier directory (a rollback
/// that switched back shipped nothing of its own).
fn print_live(s: &Session, hosts: &[LiveHost], current: Option<String>) {
    if s.printer.is_json() {
        return;
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<Cell>> = hosts
        .iter()
        .map(|h| match &h.error {
            Some(e) => vec![
                Cell::from(h.host.clone()),
                cell(format!("unreachable: {e}"), Tone::Bad),
                Cell::from(dash()),
                Cell::from(dash()),
                Cell::from(dash()),
                Cell::from(dash()),
            ],
            None => vec![
                Cell::from(h.host.clone()),
                match (&h.release, h.runs_current) {
                    (Some(r), Some(true)) if Some(r) != current.as_ref() => Cell::from(format!(
                        "{r} (current: rollback {} returned to it)",
                        current.as_deref().unwrap_or("-")
                    )),
                    (Some(r), Some(false)) => cell(format!("{r} (not the current release)"), Tone::Warn),
                    (r, _) => Cell::from(r.clone().unwrap_or_else(dash)),
                },
                match h.pid {
                    Some(p) => cell(format!("running (pid {p})"), Tone::Good),
                    None => cell("stopped", Tone::Bad),
                },
                Cell::from(h.uptime_ms.map_or_else(dash, |ms| {
                    rollway_app::model::time::format_duration(std::time::Duration::from_secs(ms / 1000))
                })),
                Cell::from(h.restarts.map_or_else(dash, |n| n.to_string())),
                cell(
                    h.health.clone().unwrap_or_else(dash),
                    if h.healthy == Some(true) { Tone::Good } else { Tone::Bad },
                ),
            ],
        })
        .collect();
    s.printer.table(
        &["HOST", "RELEASE", "SERVICE", "UPTIME", "RESTARTS", "HEALTH NOW"],
        &rows,
    );
}
