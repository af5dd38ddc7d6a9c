//! `rollway status` and `rollway history`: what each environment runs and
//! every deployment with its transitions, reasons and host results. They
//! only read: no recovery runs here.

use clap::Args;
use rollway_model::{Deployment, DeploymentStatus, Lock, Verification};

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this environment.
    pub env: Option<String>,
    /// At most this many deployments, newest first (1 or more).
    #[arg(long, default_value_t = 20, value_parser = parse_limit)]
    pub limit: usize,
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

fn short(id: &impl ToString) -> String {
    id.to_string().chars().take(8).collect()
}

pub fn history(s: &Session, args: HistoryArgs) -> anyhow::Result<()> {
    let (config, store) = s.synced_store()?;
    if let Some(e) = &args.env {
        s.env_ref(&config, e)?;
    }
    let deps = store.deployments(args.env.as_deref(), args.limit)?;
    let mut full = Vec::new();
    for d in &deps {
        let mut stacks = Vec::new();
        for st in store.stacks(d.id)? {
            let resources = store.resources(st.id)?;
            stacks.push((st, resources));
        }
        full.push((d.clone(), store.verifications(d.id)?, stacks));
    }
    if s.printer.is_json() {
        let items: Vec<serde_json::Value> = full
            .iter()
            .map(|(d, v, st)| {
                let stacks: Vec<serde_json::Value> = st
                    .iter()
                    .map(|(s, r)| {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        v["resources"] = serde_json::to_value(r).unwrap_or_default();
                        v
                    })
                    .collect();
                serde_json::json!({ "deployment": d, "verifications": v, "stacks": stacks })
            })
            .collect();
        s.printer.json(&items);
        return Ok(());
    }
    if deps.is_empty() {
        s.printer.line(Tone::Dim, "no deployments yet");
        return Ok(());
    }
    for (d, vs, stacks) in &full {
        print_deployment(s, d, vs);
        // The release alone is the common case; its hosts say enough.
        if stacks.len() > 1 || stacks.iter().any(|(st, _)| st.name != "release") {
            for (st, resources) in stacks {
                let error = st.error_message.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
                s.printer
                    .line(Tone::Plain, format!("  stack {} {}{error}", st.name, st.status()));
                for r in resources {
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
    let mut rows: Vec<Vec<Cell>> = d
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
    rows.insert(0, vec![Cell::from("  AT"), Cell::from("FROM"), Cell::from("TO")]);
    s.printer.table(&["", "", ""], &rows);
    if let Some(r) = &d.failure_reason {
        s.printer.line(Tone::Bad, format!("  failure: {r}"));
    }
    if let Some(r) = &d.rollback_reason {
        s.printer.line(Tone::Warn, format!("  rollback: {r}"));
    }
    if let Some(to) = &d.rollback_to {
        s.printer.line(Tone::Plain, format!("  returned to: release {to}"));
    }
    for v in vs {
        for h in &v.hosts {
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
                        .map(|r| format!(", returned to {}", short(r)))
                        .unwrap_or_default()
                ),
            );
        }
    }
    s.printer.line(Tone::Plain, "");
}

pub fn status(s: &Session, args: StatusArgs) -> anyhow::Result<()> {
    let (config, store) = s.synced_store()?;
    let names: Vec<String> = match &args.env {
        Some(e) => vec![s.env_ref(&config, e)?.name],
        None => config.environments.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    for name in &names {
        let env = store.environment(name)?;
        let current = store.last_succeeded(name)?;
        let active = store.active_deployments(Some(name))?;
        let lock = store.lock(&Lock::env_name(name))?;
        out.push((name.clone(), env, current, active, lock));
    }
    if s.printer.is_json() {
        let items: Vec<serde_json::Value> = out
            .iter()
            .map(|(name, env, current, active, lock)| {
                serde_json::json!({
                    "environment": name,
                    "status": env.as_ref().map(|e| e.status()),
                    "current": current,
                    "in_progress": active,
                    "lock": lock,
                })
            })
            .collect();
        s.printer.json(&items);
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = out
        .iter()
        .map(|(name, env, current, active, lock)| {
            vec![
                Cell::from(name.clone()),
                Cell::from(env.as_ref().map_or("-", |e| e.status().as_str())),
                Cell::from(current.as_ref().map_or("-".to_owned(), |d| d.id.to_string())),
                Cell::from(
                    current
                        .as_ref()
                        .and_then(|d| d.version_tag.clone())
                        .unwrap_or_else(|| "-".into()),
                ),
                match active.first() {
                    Some(d) => status_cell(d.status()),
                    None => cell("idle", Tone::Dim),
                },
                Cell::from(
                    lock.as_ref()
                        .map_or("-".to_owned(), |l| format!("{} until {}", l.owner, l.expires_at)),
                ),
            ]
        })
        .collect();
    s.printer.table(
        &["ENVIRONMENT", "STATUS", "CURRENT RELEASE", "VERSION", "NOW", "LOCK"],
        &rows,
    );
    Ok(())
}
