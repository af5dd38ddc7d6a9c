//! `rollway status` and `rollway history`: what each environment runs and
//! every deployment with its transitions, reasons and host results. They
//! only read: no recovery runs here.

use clap::Args;
use rollway_model::{Deployment, DeploymentStatus, Lock, Verification};

use crate::exit::{Code, coded};
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

fn short(id: &impl ToString) -> String {
    id.to_string().chars().take(8).collect()
}

pub fn history(s: &Session, args: HistoryArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    if let Some(e) = &args.env {
        s.env_ref(&config, e)?;
    }
    let wanted = args
        .status
        .as_deref()
        .map(DeploymentStatus::matching)
        .transpose()
        .map_err(|e| coded(Code::Invalid, anyhow::anyhow!("--status: {e} (or in_progress)")))?;
    let deps = match wanted {
        None => store.deployments(args.env.as_deref(), args.limit)?,
        // The filter reads every deployment, so the limit counts matches.
        Some(wanted) => store
            .deployments(args.env.as_deref(), usize::MAX)?
            .into_iter()
            .filter(|d| wanted.contains(&d.status()))
            .take(args.limit)
            .collect(),
    };
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
                let phases = crate::commands::deploy::phases(d, v);
                serde_json::json!({ "deployment": d, "verifications": v, "stacks": stacks, "phases": phases })
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
    let phases = crate::commands::deploy::phases_line(&crate::commands::deploy::phases(d, vs));
    if !phases.is_empty() {
        s.printer.line(Tone::Dim, format!("  phases: {phases}"));
    }
    for v in vs {
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
                        .map(|r| format!(", returned to {}", short(r)))
                        .unwrap_or_default()
                ),
            );
        }
    }
    s.printer.line(Tone::Plain, "");
}

pub fn status(s: &Session, args: StatusArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    let names: Vec<String> = match &args.env {
        Some(e) => vec![s.env_ref(&config, e)?.name],
        None => config.environments.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    let now = store.clock().now();
    for name in &names {
        let env = store.environment(name)?;
        let current = store.last_succeeded(name)?;
        let active = store.active_deployments(Some(name))?;
        let lock = store.lock(&Lock::env_name(name))?;
        // A window that ended with nobody watching is not "verifying": it
        // waits for `rollway verify`, which watches a fresh full window.
        let unwatched = match active.first() {
            Some(d) if d.status() == DeploymentStatus::Verifying => store
                .verifications(d.id)?
                .first()
                .and_then(|v| v.window_ends_at)
                .is_some_and(|end| now >= end),
            _ => false,
        };
        out.push((name.clone(), env, current, active, lock, unwatched));
    }
    // One environment named: ask its hosts now, too.
    let live = match args.env.as_deref() {
        Some(env) => {
            // Restarts count from the start Rollway made when it deployed
            // the current release (each host's baseline).
            let mut baselines = std::collections::BTreeMap::new();
            if let Some(d) = store.last_succeeded(env)? {
                for v in store.verifications(d.id)? {
                    for h in v.hosts {
                        if let Some(b) = h.restart_baseline {
                            baselines.insert(h.host, b);
                        }
                    }
                }
            }
            Some(live_hosts(s, env, &baselines))
        }
        None => None,
    };
    if s.printer.is_json() {
        let items: Vec<serde_json::Value> = out
            .iter()
            .map(|(name, env, current, active, lock, unwatched)| {
                serde_json::json!({
                    "environment": name,
                    "status": env.as_ref().map(|e| e.status()),
                    "current": current,
                    "in_progress": active,
                    "window_ended_unwatched": unwatched,
                    "lock": lock,
                    "hosts": live,
                })
            })
            .collect();
        s.printer.json(&items);
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = out
        .iter()
        .map(|(name, env, current, active, lock, unwatched)| {
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
                    Some(_) if *unwatched => cell(
                        format!("verifying (window ended unwatched; run rollway verify {name})"),
                        Tone::Warn,
                    ),
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
    if let Some(hosts) = &live {
        print_live(s, hosts);
    }
    Ok(())
}

/// What one host says now, through its agent.
#[derive(Debug, serde::Serialize)]
struct LiveHost {
    host: String,
    /// Why the host could not be asked (then nothing else is known).
    error: Option<String>,
    release: Option<String>,
    pid: Option<u32>,
    uptime_ms: Option<u64>,
    /// The service's start count since it was first started.
    starts: Option<u64>,
    /// Restarts since the current release was deployed (its baseline start).
    restarts: Option<u64>,
    /// The health endpoint now: `HTTP 200 in 3 ms`, or why it did not answer.
    health: Option<String>,
    healthy: Option<bool>,
}

/// Every host of `env`, asked now (like `kamal app details`): a host that
/// cannot be reached is reported, not fatal.
fn live_hosts(s: &Session, env: &str, baselines: &std::collections::BTreeMap<String, u64>) -> Vec<LiveHost> {
    let unreachable = |host: String, e: String| LiveHost {
        host,
        error: Some(e),
        release: None,
        pid: None,
        uptime_ms: None,
        starts: None,
        restarts: None,
        health: None,
        healthy: None,
    };
    let (prepared, hosts, _) = match crate::commands::service::sessions(s, env, None) {
        Ok(x) => x,
        Err(e) => return vec![unreachable("*".into(), format!("{e:#}"))],
    };
    let health = &prepared.health;
    hosts
        .into_iter()
        .map(|mut h| {
            let status = match h.session.service_status(&h.spec) {
                Ok(st) => st,
                Err(e) => return unreachable(h.name, e.to_string()),
            };
            let probe = h.session.probe(h.spec.port, &health.path, health.timeout);
            let (health_text, healthy) = match probe {
                Ok(p) => match (p.status, p.error) {
                    (Some(code), _) => (
                        format!("HTTP {code} in {} ms", p.latency_ms),
                        code == health.expect_status,
                    ),
                    (None, e) => (e.unwrap_or_else(|| "no answer".into()), false),
                },
                Err(e) => (e.to_string(), false),
            };
            let restarts = baselines.get(&h.name).map(|b| status.starts.saturating_sub(*b));
            LiveHost {
                host: h.name,
                error: None,
                release: h.current,
                pid: status.pid,
                uptime_ms: status.uptime_ms,
                starts: Some(status.starts),
                restarts,
                health: Some(prepared.masker.mask(&health_text)),
                healthy: Some(healthy),
            }
        })
        .collect()
}

fn print_live(s: &Session, hosts: &[LiveHost]) {
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
                Cell::from(h.release.clone().unwrap_or_else(dash)),
                match h.pid {
                    Some(p) => cell(format!("running (pid {p})"), Tone::Good),
                    None => cell("stopped", Tone::Bad),
                },
                Cell::from(h.uptime_ms.map_or_else(dash, |ms| {
                    rollway_model::time::format_duration(std::time::Duration::from_secs(ms / 1000))
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
