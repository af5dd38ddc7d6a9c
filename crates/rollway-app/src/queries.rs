//! History and status: what each environment runs, what is in progress,
//! every deployment with its transitions, reasons, stacks and host results,
//! and what an environment's hosts say now. They only read: no recovery
//! runs here.

use std::collections::BTreeMap;

use rollway_model::{
    Deployment, DeploymentStatus, Environment, EnvironmentStatus, Lock, Resource, Stack, Verification,
};

use crate::error::{Error, Result};
use crate::project::Project;

/// One deployment with everything `history` shows of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryItem {
    pub deployment: Deployment,
    pub verifications: Vec<Verification>,
    pub stacks: Vec<StackResources>,
    pub phases: BTreeMap<String, u64>,
    /// Alerts that opened within the lookback after it and name it
    /// (OPERATIONS.md "Deploy-aware"), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<rollway_model::Alert>,
    /// The pre-migration backups it took (`[deploy] pre_migration_backup`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<rollway_model::Backup>,
}

/// A command stack of a deployment and its resources.
#[derive(Debug, Clone)]
pub struct StackResources {
    pub stack: Stack,
    pub resources: Vec<Resource>,
}

impl serde::Serialize for StackResources {
    /// The stack's own fields, and `resources` beside them.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.stack).unwrap_or_default();
        v["resources"] = serde_json::to_value(&self.resources).unwrap_or_default();
        v.serialize(s)
    }
}

/// Deployments, newest first: at most `limit`, of `env` when named, in a
/// status matching `status` when given (in any case; the seeds' words work
/// too, and IN_PROGRESS).
pub fn history(p: &Project, env: Option<&str>, limit: usize, status: Option<&str>) -> Result<Vec<HistoryItem>> {
    let (config, store) = p.open()?;
    if let Some(e) = env {
        p.env_ref(&config, e)?;
    }
    let wanted = status
        .map(DeploymentStatus::matching)
        .transpose()
        .map_err(|e| Error::invalid(format_args!("--status: {e} (or in_progress)")))?;
    let deps = match wanted {
        None => store.deployments(env, limit)?,
        // The filter reads every deployment, so the limit counts matches.
        Some(wanted) => store
            .deployments(env, usize::MAX)?
            .into_iter()
            .filter(|d| wanted.contains(&d.status()))
            .take(limit)
            .collect(),
    };
    // Every alert that names a deployment, grouped by it: one read.
    let mut named: BTreeMap<String, Vec<rollway_model::Alert>> = BTreeMap::new();
    for a in store.alerts(&rollway_store::AlertQuery {
        environment: env.map(str::to_owned),
        ..rollway_store::AlertQuery::default()
    })? {
        if let Some(d) = a.deployment_id {
            named.entry(d.to_string()).or_default().insert(0, a);
        }
    }
    // Every backup taken for a deployment, grouped by it.
    let mut taken: BTreeMap<String, Vec<rollway_model::Backup>> = BTreeMap::new();
    for b in store.backups(env)? {
        if let Some(d) = b.deployment_id {
            taken.entry(d.to_string()).or_default().push(b);
        }
    }
    let mut out = Vec::new();
    for d in deps {
        let mut stacks = Vec::new();
        for st in store.stacks(d.id)? {
            let resources = store.resources(st.id)?;
            stacks.push(StackResources { stack: st, resources });
        }
        let verifications = store.verifications(d.id)?;
        let phases = crate::deploy::phases(&d, &verifications);
        let alerts = named.remove(&d.id.to_string()).unwrap_or_default();
        let backups = taken.remove(&d.id.to_string()).unwrap_or_default();
        out.push(HistoryItem {
            deployment: d,
            verifications,
            stacks,
            phases,
            alerts,
            backups,
        });
    }
    Ok(out)
}

/// The id of `env`'s newest deployment, if any.
pub fn last_deployment(p: &Project, env: &str) -> Result<Option<rollway_model::DeploymentId>> {
    let store = p.store()?;
    Ok(store.deployments(Some(env), 1)?.first().map(|d| d.id))
}

/// One environment now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvStatus {
    pub environment: String,
    pub status: Option<EnvironmentStatus>,
    /// The release it runs: its last succeeded deployment.
    pub current: Option<Deployment>,
    pub in_progress: Vec<Deployment>,
    /// A window that ended with nobody watching: it waits for `rollway
    /// verify`, which watches a fresh full window.
    pub window_ended_unwatched: bool,
    pub lock: Option<Lock>,
    /// What the hosts say now (asked only when one environment is named).
    pub hosts: Option<Vec<LiveHost>>,
}

/// What one host says now, through its agent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveHost {
    pub host: String,
    /// Why the host could not be asked (then nothing else is known).
    pub error: Option<String>,
    pub release: Option<String>,
    /// Whether `release` is the environment's current deployment's: its
    /// own directory, or for a rollback that switched back (shipping
    /// nothing) the earlier release directory it returned to.
    pub runs_current: Option<bool>,
    pub pid: Option<u32>,
    pub uptime_ms: Option<u64>,
    /// The service's start count since it was first started.
    pub starts: Option<u64>,
    /// Restarts since the current release was deployed (its baseline start).
    pub restarts: Option<u64>,
    /// The health endpoint now: `HTTP 200 in 3 ms`, or why it did not answer.
    pub health: Option<String>,
    pub healthy: Option<bool>,
}

/// What each environment (or `env`) runs now and what is in progress;
/// with `env` named, its hosts are asked now too.
pub fn status(p: &Project, env: Option<&str>) -> Result<Vec<EnvStatus>> {
    let (config, store) = p.open()?;
    let names: Vec<String> = match env {
        Some(e) => vec![p.env_ref(&config, e)?.name],
        None => config.environments.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    let now = store.clock().now();
    for name in &names {
        let record: Option<Environment> = store.environment(name)?;
        let current = store.last_succeeded(name)?;
        let active = store.active_deployments(Some(name))?;
        let lock = store.lock(&Lock::env_name(name))?;
        let unwatched = match active.first() {
            Some(d) if d.status() == DeploymentStatus::Verifying => store
                .verifications(d.id)?
                .first()
                .and_then(|v| v.window_ends_at)
                .is_some_and(|end| now >= end),
            _ => false,
        };
        out.push(EnvStatus {
            environment: name.clone(),
            status: record.as_ref().map(Environment::status),
            current,
            in_progress: active,
            window_ended_unwatched: unwatched,
            lock,
            hosts: None,
        });
    }
    // One environment named: ask its hosts now, too.
    if let Some(env) = env {
        // Restarts count from the start Rollway made when it deployed
        // the current release (each host's baseline).
        let mut baselines = BTreeMap::new();
        let current = store.last_succeeded(env)?;
        let dirs = current.as_ref().map(|d| crate::rollback::release_dirs(&*store, d));
        if let Some(d) = current {
            for v in store.verifications(d.id)? {
                for h in v.hosts {
                    if let Some(b) = h.restart_baseline {
                        baselines.insert(h.host, b);
                    }
                }
            }
        }
        let live = live_hosts(p, env, &baselines, dirs.as_deref());
        for s in &mut out {
            s.hosts = Some(live.clone());
        }
    }
    Ok(out)
}

/// Every host of `env`, asked now (like `kamal app details`): a host that
/// cannot be reached is reported, not fatal.
fn live_hosts(p: &Project, env: &str, baselines: &BTreeMap<String, u64>, dirs: Option<&[String]>) -> Vec<LiveHost> {
    let unreachable = |host: String, e: String| LiveHost {
        host,
        error: Some(e),
        release: None,
        runs_current: None,
        pid: None,
        uptime_ms: None,
        starts: None,
        restarts: None,
        health: None,
        healthy: None,
    };
    let (prepared, hosts, _) = match crate::service::sessions(p, env, None) {
        Ok(x) => x,
        Err(e) => return vec![unreachable("*".into(), e.to_string())],
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
                Ok(pr) => match (pr.status, pr.error) {
                    (Some(code), _) => (
                        format!("HTTP {code} in {} ms", pr.latency_ms),
                        code == health.expect_status,
                    ),
                    (None, e) => (e.unwrap_or_else(|| "no answer".into()), false),
                },
                Err(e) => (e.to_string(), false),
            };
            let restarts = baselines.get(&h.name).map(|b| status.starts.saturating_sub(*b));
            let runs_current = h.current.as_ref().map(|r| dirs.is_some_and(|d| d.contains(r)));
            LiveHost {
                host: h.name,
                error: None,
                release: h.current,
                runs_current,
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
