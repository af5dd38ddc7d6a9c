//! Alerts (OPERATIONS.md "Alerts"): the rule set — the built-in rules
//! (monitor down, response-time targets — the 5-minute average and the
//! last hour's P95 —, month-to-date uptime below target, burn rates)
//! and `[alerts.NAME]` rules on a monitor's numbers (its P95 over the last
//! hour merged from the rollups' sketches), the environment's error log
//! lines per minute, a host's CPU, memory and disk read through its agent,
//! or a business metric pushed with `rollway metric push` — evaluated by
//! `rollway serve`, each (rule, subject)'s `Tracker` kept in the store so a
//! restart resumes it. An opened alert names the deployment of its
//! environment that finished within the lookback before it. Every open, acknowledge, resolve and
//! reminder queues one delivery per channel with an idempotency key
//! (`ALERTID-EVENT-CHANNEL[-n]`); a maintenance window in force queues
//! none (the alert is still recorded). Sending the queue is `deliver_due`'s
//! job. Also the commands: `rollway alerts list|show|ack|resolve` and
//! `rollway metric push`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rollway_config::{AlertRuleConfig, ChannelConfig, Config, SmtpSecurity, Subject, WebhookFormat};
use rollway_engine::CpuTimes;
use rollway_model::alerting::{Condition, Damping, Decision, RecentDeployment, Tracker, minutes_after};
use rollway_model::maintenance::expand;
use rollway_model::spans::Span;
use rollway_model::{
    Alert, AlertId, AlertStatus, AlertType, DeploymentStatus, EventKind, Level, MetricType, NewEvent, Severity,
    Timestamp,
};
use rollway_notify::{Channel, Notification, NotifyEvent};
use rollway_store::{AlertQuery, Attempt, Delivery, MetricPoint, NewDelivery, Store, StoreError};
use serde::Serialize;

use crate::error::{Code, Error, Result};
use crate::project::Project;

/// The rule of the built-in "monitor down" alerts.
pub const MONITOR_DOWN: &str = "monitor-down";
/// The built-in response-time rule: the 5-minute average over its warning target.
pub const RESPONSE_TIME: &str = "response-time";
/// The built-in P95 rule: the last hour's P95 over seed 003's target (2000 ms).
pub const RESPONSE_TIME_P95: &str = "response-time-p95";
/// The built-in month-to-date uptime rule: below the environment's target.
pub const UPTIME_TARGET: &str = "uptime-target";
/// The built-in burn-rate rules (`rollway slo`): page (critical) when 14.4
/// over 1 h and 5 min or 6 over 6 h and 30 min; ticket (warning) when 1
/// over 3 d and 6 h.
pub const BURN_RATE_PAGE: &str = "burn-rate-page";
pub const BURN_RATE_TICKET: &str = "burn-rate-ticket";
/// The built-in rule of each scheduled `[backups.NAME]`: its latest
/// occurrence failed or was missed.
pub const BACKUP_MISSED: &str = "backup-missed";
/// The built-in log error-rate rule of each environment, on when
/// `[alerting] log_errors_per_minute` sets its threshold.
pub const LOG_ERRORS: &str = "log-errors";
/// The window of the P95 rule: OPERATIONS.md's response-time targets are
/// judged over the last hour.
const P95_WINDOW: Duration = Duration::from_secs(3600);
/// How long a monitor's P95 reading is reused.
const P95_EVERY: Duration = Duration::from_secs(60);
/// The window `log_errors_per_minute` counts over ("per minute").
const LOG_ERROR_WINDOW: Duration = Duration::from_secs(60);
/// Tests shorten the log error window (a duration such as `5s`) so that an
/// alert resolves in seconds; the count is still scaled to one minute.
const LOG_ERROR_WINDOW_VAR: &str = "ROLLWAY_LOG_ERROR_WINDOW";

/// How long a burn-rate reading is reused: its windows end at a whole
/// minute, so a fresher one would say the same.
const SLO_EVERY: Duration = Duration::from_secs(60);

/// Where a rule's value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// 1 when the monitor is down, 0 when up or pending; no data otherwise.
    MonitorDown(String),
    /// The latest seed 003 record of the monitor.
    Record(String, MetricType),
    /// 1 while a burn-rate rule of this severity fires for the monitor.
    Burn(String, rollway_model::slo::Severity),
    /// A host's resource, in percent used; `None`: every host.
    Host(Option<String>, Resource),
    /// The newest pushed value.
    Business(String),
    /// The monitor's P95 response time over the last [`P95_WINDOW`].
    P95(String),
    /// The environment's error-level log records per minute, counted over
    /// the last [`log_error_window`].
    LogErrors,
    /// 1 when the scheduled backup's latest occurrence failed or was
    /// missed, 0 when it completed; no data while pending or running.
    Backup(String),
    /// A metric no source measures: no data.
    Unmeasured,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Cpu,
    Memory,
    Disk,
}

/// One rule as evaluated.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    environment: String,
    alert_type: AlertType,
    metric: String,
    severity: Severity,
    condition: Condition,
    damping: Damping,
    channels: Vec<String>,
    repeat: Option<Duration>,
    source: Source,
}

/// The built-in rules for every monitor, then the `[alerts.NAME]` rules.
fn rules(config: &Config) -> Vec<Rule> {
    let default_channels: Vec<String> = config
        .alerting
        .notify
        .clone()
        .unwrap_or_else(|| config.notify.keys().cloned().collect());
    let builtin_damping = Damping {
        hold: Duration::ZERO,
        resolve_after: config.alerting.resolve_after.max(1),
    };
    let mut out = Vec::new();
    for (name, m) in config.all_monitors() {
        let target = config
            .environments
            .get(&m.environment)
            .map_or(99.5, |e| e.uptime_target);
        let builtin = |rule: &str, metric: &str, severity, condition, source| Rule {
            name: rule.to_owned(),
            environment: m.environment.clone(),
            alert_type: AlertType::Availability,
            metric: metric.to_owned(),
            severity,
            condition,
            damping: builtin_damping,
            channels: default_channels.clone(),
            repeat: config.alerting.repeat,
            source,
        };
        out.push(builtin(
            MONITOR_DOWN,
            "down",
            Severity::Critical,
            Condition::above(0.5),
            Source::MonitorDown(name.clone()),
        ));
        out.push(builtin(
            RESPONSE_TIME,
            "average_ms",
            Severity::Warning,
            Condition::above(rollway_model::Thresholds::default_for(MetricType::Performance, 99.5, 1).warning),
            Source::Record(name.clone(), MetricType::Performance),
        ));
        out.push(builtin(
            RESPONSE_TIME_P95,
            "p95_ms",
            Severity::Warning,
            Condition::above(rollway_model::rollup::Targets::default().p95_ms),
            Source::P95(name.clone()),
        ));
        out.push(builtin(
            UPTIME_TARGET,
            "uptime",
            Severity::Warning,
            Condition::below(target),
            Source::Record(name.clone(), MetricType::Uptime),
        ));
        out.push(builtin(
            BURN_RATE_PAGE,
            "burn_rate",
            Severity::Critical,
            Condition::above(0.5),
            Source::Burn(name.clone(), rollway_model::slo::Severity::Page),
        ));
        out.push(builtin(
            BURN_RATE_TICKET,
            "burn_rate",
            Severity::Warning,
            Condition::above(0.5),
            Source::Burn(name.clone(), rollway_model::slo::Severity::Ticket),
        ));
    }
    if let Some(threshold) = config.alerting.log_errors_per_minute {
        for env in config.environments.keys() {
            out.push(Rule {
                name: LOG_ERRORS.to_owned(),
                environment: env.clone(),
                alert_type: AlertType::Availability,
                metric: "log_errors_per_minute".to_owned(),
                severity: Severity::Warning,
                condition: Condition::above(threshold),
                damping: builtin_damping,
                channels: default_channels.clone(),
                repeat: config.alerting.repeat,
                source: Source::LogErrors,
            });
        }
    }
    for (name, b) in &config.backups {
        if b.schedule.is_none() {
            continue;
        }
        out.push(Rule {
            name: BACKUP_MISSED.to_owned(),
            environment: b.environment.clone(),
            alert_type: AlertType::Availability,
            metric: "backup_failed_or_missed".to_owned(),
            severity: Severity::Warning,
            condition: Condition::above(0.5),
            damping: builtin_damping,
            channels: default_channels.clone(),
            repeat: config.alerting.repeat,
            source: Source::Backup(name.clone()),
        });
    }
    for (name, r) in &config.alerts {
        out.push(configured(name, r, config, &default_channels));
    }
    out
}

fn configured(name: &str, r: &AlertRuleConfig, config: &Config, default_channels: &[String]) -> Rule {
    let source = match (&r.subject, r.alert_type) {
        (Some(Subject::Monitor(m)), _) => match r.metric.as_str() {
            "down" => Source::MonitorDown(m.clone()),
            "average_ms" => Source::Record(m.clone(), MetricType::Performance),
            "error_rate" => Source::Record(m.clone(), MetricType::ErrorRate),
            "uptime" => Source::Record(m.clone(), MetricType::Uptime),
            "p95_ms" => Source::P95(m.clone()),
            _ => Source::Unmeasured,
        },
        (Some(Subject::Host(h)), _) => match r.metric.as_str() {
            "cpu" => Source::Host(h.clone(), Resource::Cpu),
            "memory" => Source::Host(h.clone(), Resource::Memory),
            "disk" => Source::Host(h.clone(), Resource::Disk),
            _ => Source::Unmeasured,
        },
        (Some(Subject::Metric(m)), _) => Source::Business(m.clone()),
        (Some(Subject::Environment), _) if r.metric == "log_errors_per_minute" => Source::LogErrors,
        _ => Source::Unmeasured,
    };
    let condition = Condition {
        comparison: r.comparison.unwrap_or(rollway_model::alerting::Comparison::Above),
        threshold: r.threshold,
    };
    Rule {
        name: name.to_owned(),
        environment: r.environment.clone(),
        alert_type: r.alert_type,
        metric: r.metric.clone(),
        severity: r.severity,
        condition,
        damping: Damping {
            hold: r.hold,
            resolve_after: if r.resolve_after == 0 {
                config.alerting.resolve_after.max(1)
            } else {
                r.resolve_after
            },
        },
        channels: r.notify.clone().unwrap_or_else(|| default_channels.to_vec()),
        repeat: r.repeat.or(config.alerting.repeat),
        source,
    }
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluated {
    /// (rule, subject) pairs evaluated.
    pub evaluated: usize,
    pub opened: Vec<AlertId>,
    /// The severity and type of each alert in `opened`, in the same order.
    pub opened_kinds: Vec<(Severity, AlertType)>,
    pub resolved: Vec<AlertId>,
    pub reminders: usize,
    /// Values that could not be read (a host unreachable): those pairs had no data.
    pub problems: Vec<String>,
}

/// Evaluates the rules; keeps what must live between evaluations in
/// memory only where losing it costs one evaluation (CPU counters).
#[derive(Debug)]
pub struct Evaluator {
    project: Project,
    cpu: HashMap<(String, String), CpuTimes>,
    /// Per environment: when its burn rates were read, and per monitor the
    /// severities firing.
    slo: HashMap<String, (Timestamp, SloFiring)>,
    /// Per monitor: when its P95 was read and what it was. An hour's P95
    /// moves little in a minute, so a reading is reused that long (one
    /// without samples is not).
    p95: HashMap<String, (Timestamp, f64)>,
}

/// Per monitor, the burn-rate severities firing.
type SloFiring = HashMap<String, Vec<rollway_model::slo::Severity>>;

impl Evaluator {
    pub fn new(project: Project) -> Self {
        Self {
            project,
            cpu: HashMap::new(),
            slo: HashMap::new(),
            p95: HashMap::new(),
        }
    }

    /// One evaluation of every rule at the store clock's now.
    pub fn run(&mut self, store: &dyn Store) -> Result<Evaluated> {
        let config = self.project.config()?;
        let rules = rules(&config);
        let mut out = Evaluated::default();
        if rules.is_empty() {
            return Ok(out);
        }
        // Arm the masks (and the store's) with every environment's secrets
        // before any summary is written.
        let envs: std::collections::BTreeSet<&str> = rules.iter().map(|r| r.environment.as_str()).collect();
        for env in &envs {
            if let Err(e) = self.project.env_values(&config, store, env) {
                out.problems.push(format!("cannot read the secrets of {env}: {e}"));
            }
        }
        let states = crate::uptime::states(&config, store)?;
        let mut trackers: HashMap<(String, String), Tracker> = store
            .alert_trackers()?
            .into_iter()
            .map(|(r, s, t)| ((r, s), t))
            .collect();
        let mut host_stats: HashMap<String, Vec<HostReading>> = HashMap::new();
        // The monitors as stored, read once a round when a P95 is due.
        let mut monitor_records: Option<HashMap<String, rollway_store::MonitorRecord>> = None;
        // The backup schedules' outcomes, read once a round when a backup rule is there.
        let mut backup_states: Option<Vec<crate::backup::ScheduleState>> = None;
        for rule in &rules {
            let values: Vec<(String, Option<f64>)> = match &rule.source {
                Source::MonitorDown(m) => vec![(
                    m.clone(),
                    states.get(m).and_then(|s| match s {
                        rollway_ops::MonitorStatus::Down => Some(1.0),
                        rollway_ops::MonitorStatus::Up | rollway_ops::MonitorStatus::Pending => Some(0.0),
                        rollway_ops::MonitorStatus::Maintenance | rollway_ops::MonitorStatus::Paused => None,
                    }),
                )],
                Source::Record(m, t) => {
                    let value = store
                        .metric_records(&rule.environment, Some(*t))?
                        .into_iter()
                        .filter(|r| r.source == *m)
                        .max_by_key(|r| r.window_start)
                        .map(|r| r.metric_value);
                    vec![(m.clone(), value)]
                }
                Source::Burn(m, severity) => {
                    let now = store.clock().now();
                    let fresh = self
                        .slo
                        .get(&rule.environment)
                        .is_some_and(|(at, _)| now.since(*at) < SLO_EVERY);
                    if !fresh {
                        let firing: SloFiring = crate::uptime::slo_of(&config, store, &rule.environment)?
                            .into_iter()
                            .map(|m| {
                                let on = m.rules.iter().filter(|r| r.firing).map(|r| r.severity).collect();
                                (m.monitor, on)
                            })
                            .collect();
                        self.slo.insert(rule.environment.clone(), (now, firing));
                    }
                    let value = self
                        .slo
                        .get(&rule.environment)
                        .and_then(|(_, f)| f.get(m))
                        .map(|on| if on.contains(severity) { 1.0 } else { 0.0 });
                    vec![(m.clone(), value)]
                }
                Source::Business(name) => vec![(
                    name.clone(),
                    store.latest_metric_point(&rule.environment, name)?.map(|p| p.value),
                )],
                Source::P95(m) => {
                    let now = store.clock().now();
                    let value = match self.p95.get(m) {
                        Some((at, v)) if now.since(*at) < P95_EVERY => Some(*v),
                        _ => {
                            let records = match &monitor_records {
                                Some(r) => r,
                                None => monitor_records.insert(
                                    crate::uptime::select(&config, store, None)?
                                        .into_iter()
                                        .map(|r| (r.def.name.clone(), r))
                                        .collect(),
                                ),
                            };
                            let v = match records.get(m) {
                                Some(record) => p95_ms(&config, store, record)?,
                                None => None,
                            };
                            if let Some(v) = v {
                                self.p95.insert(m.clone(), (now, v));
                            }
                            v
                        }
                    };
                    vec![(m.clone(), value)]
                }
                Source::LogErrors => vec![(
                    rule.environment.clone(),
                    Some(log_errors_per_minute(store, &rule.environment)?),
                )],
                Source::Unmeasured => Vec::new(),
                Source::Backup(name) => {
                    let states = match &backup_states {
                        Some(s) => s,
                        None => backup_states.insert(crate::backup::schedule_states(&config, store)?),
                    };
                    let value = states
                        .iter()
                        .find(|s| &s.name == name)
                        .and_then(|s| s.outcome)
                        .and_then(|o| match o {
                            _ if o.is_bad() => Some(1.0),
                            rollway_model::backup_schedule::Outcome::Completed => Some(0.0),
                            _ => None,
                        });
                    vec![(name.clone(), value)]
                }
                Source::Host(only, resource) => {
                    let stats = host_stats
                        .entry(rule.environment.clone())
                        .or_insert_with(|| read_hosts(&self.project, &rule.environment));
                    let mut v = Vec::new();
                    for (host, s) in stats.iter() {
                        if only.as_ref().is_some_and(|h| h != host) {
                            continue;
                        }
                        let value = match s {
                            Err(e) => {
                                out.problems
                                    .push(format!("rule {}: cannot read host {host}: {e}", rule.name));
                                None
                            }
                            Ok(s) => match resource {
                                Resource::Memory => s.memory_used_percent,
                                Resource::Disk => s.disk_used_percent,
                                Resource::Cpu => {
                                    let key = (rule.environment.clone(), host.clone());
                                    let before = s.cpu.and_then(|now| self.cpu.insert(key.clone(), now));
                                    // Two readings make a rate: the first has none.
                                    let pct = before.zip(s.cpu).and_then(|(b, a)| rollway_engine::cpu_percent(b, a));
                                    if let Some(b) = before.filter(|_| pct.is_none()) {
                                        self.cpu.insert(key, b);
                                    }
                                    pct
                                }
                            },
                        };
                        v.push((host.clone(), value));
                    }
                    v
                }
            };
            for (subject, value) in values {
                out.evaluated += 1;
                let key = (rule.name.clone(), subject.clone());
                let before = trackers.remove(&key).unwrap_or_default();
                let mut tracker = before.clone();
                let now = store.clock().now();
                let decision = tracker.step(&rule.condition, &rule.damping, now, value);
                self.decide(&config, store, rule, &subject, value, decision, &mut tracker, &mut out)?;
                if tracker != before {
                    store.put_alert_tracker(&rule.name, &subject, &tracker)?;
                }
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        config: &Config,
        store: &dyn Store,
        rule: &Rule,
        subject: &str,
        value: Option<f64>,
        decision: Decision,
        tracker: &mut Tracker,
        out: &mut Evaluated,
    ) -> Result<()> {
        let now = store.clock().now();
        let unresolved = store.unresolved_alert(&rule.name, subject)?;
        match (decision, unresolved) {
            (Decision::Open { since }, None) => {
                let alert = self.open(config, store, rule, subject, value, since, now)?;
                out.opened.push(alert.id);
                out.opened_kinds.push((alert.severity, alert.alert_type));
            }
            (Decision::Resolve, Some(a)) => {
                let resolved = transition(config, store, a.id, AlertStatus::Resolved, None, None, None)?;
                out.resolved.push(resolved.id);
            }
            (Decision::Firing | Decision::Open { .. }, Some(a)) if remind(config, store, rule, &a, now)? => {
                out.reminders += 1;
            }
            // The alert was resolved by hand while the condition held: a
            // later breach opens a new one.
            (Decision::Firing | Decision::Recovering { .. }, None) => tracker.resolved_by_hand(),
            _ => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &self,
        config: &Config,
        store: &dyn Store,
        rule: &Rule,
        subject: &str,
        value: Option<f64>,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Alert> {
        let mut a = Alert::new(
            rule.environment.clone(),
            rule.alert_type,
            rule.metric.clone(),
            rule.severity,
            rule.condition.threshold,
            now,
        );
        a.rule = rule.name.clone();
        a.subject = subject.to_owned();
        a.value = value;
        let what = describe(rule, subject, value);
        a.summary = format!("{what} since {}", since.to_rfc3339());
        if let Some(d) = recent_deployment(store, &rule.environment, now, config.alerting.lookback)?
            && let Some(minutes) = minutes_after(now, &d, config.alerting.lookback)
        {
            {
                a.deployment_id = d.id.parse().ok();
                a.minutes_after_deployment = Some(minutes);
                a.deployment_version = (!d.version.is_empty()).then(|| d.version.clone());
                a.summary.push_str(&format!(
                    ", {minutes} min after deployment {}{}: if it caused this, run `rollway rollback {}`",
                    d.id,
                    if d.version.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.version)
                    },
                    rule.environment
                ));
            }
        }
        a.notified_at = Some(now);
        let deliveries = queue(config, store, &a, &rule.channels, NotifyEvent::Opened, None, None, now)?;
        let ev = NewEvent::new(
            EventKind::AlertChanged,
            match rule.severity {
                Severity::Critical => Level::Error,
                Severity::Warning => Level::Warn,
            },
            format!("alert {} opened: {}", a.id, a.summary),
        )
        .environment(rule.environment.clone())
        .data(serde_json::json!({
            "alert": a.id.to_string(),
            "rule": rule.name,
            "subject": subject,
            "status": "open",
            "notifications": deliveries.len(),
        }));
        Ok(store.open_alert(&a, &deliveries, ev)?)
    }
}

/// What the rule saw, for people: "monitor web down", "disk of web-1 at 93.1 % (above 90)".
fn describe(rule: &Rule, subject: &str, value: Option<f64>) -> String {
    match &rule.source {
        Source::MonitorDown(_) => format!("monitor {subject} down"),
        Source::Backup(_) => {
            format!("the latest scheduled run of backup {subject} failed or was missed (see `rollway backup list`)")
        }
        Source::Burn(_, severity) => format!(
            "monitor {subject} burns its error budget too fast ({} rule of `rollway slo`)",
            match severity {
                rollway_model::slo::Severity::Page => "page",
                rollway_model::slo::Severity::Ticket => "ticket",
            }
        ),
        _ => {
            let v = value.map_or_else(|| "no data".to_owned(), |v| format!("{v:.2}"));
            let side = match rule.condition.comparison {
                rollway_model::alerting::Comparison::Above => "above",
                rollway_model::alerting::Comparison::Below => "below",
            };
            let of = if subject == rule.metric {
                String::new()
            } else {
                format!(" of {subject}")
            };
            format!(
                "{}{of} at {v} ({side} {}), rule {}",
                rule.metric, rule.condition.threshold, rule.name
            )
        }
    }
}

/// The newest deployment of `env` that finished (succeeded) at most
/// `lookback` before `now`.
fn recent_deployment(
    store: &dyn Store,
    env: &str,
    now: Timestamp,
    lookback: Duration,
) -> Result<Option<RecentDeployment>> {
    let recent = store
        .deployments(Some(env), 20)?
        .into_iter()
        .filter(|d| d.status() == DeploymentStatus::Succeeded)
        .filter_map(|d| {
            d.finished_at.map(|f| RecentDeployment {
                id: d.id.to_string(),
                version: d.version_tag.clone().unwrap_or_default(),
                finished_at: f,
            })
        })
        .filter(|d| minutes_after(now, d, lookback).is_some())
        .max_by_key(|d| d.finished_at);
    Ok(recent)
}

/// Whether a maintenance window covers `now` for `env` (and the monitor
/// `subject`, when it is one).
fn in_maintenance(config: &Config, store: &dyn Store, env: &str, subject: &str, now: Timestamp) -> Result<bool> {
    let windows = store.maintenance_windows(Some(env))?;
    let mine: Vec<_> = windows
        .iter()
        .filter(|w| w.monitor.is_none() || w.applies_to(env, subject))
        .collect();
    if mine.is_empty() {
        return Ok(false);
    }
    let (tz, _) = crate::uptime::zone(config, env)?;
    let here = Span::new(now, Timestamp::from_millis(now.as_millis() + 1));
    Ok(!expand(&mine, here, &tz).is_empty())
}

/// One delivery per channel for `event` of `a` (none in maintenance).
#[allow(clippy::too_many_arguments)]
fn queue(
    config: &Config,
    store: &dyn Store,
    a: &Alert,
    channels: &[String],
    event: NotifyEvent,
    operator: Option<String>,
    reminder: Option<u32>,
    now: Timestamp,
) -> Result<Vec<NewDelivery>> {
    if in_maintenance(config, store, &a.environment, &a.subject, now)? {
        return Ok(Vec::new());
    }
    let status = match event {
        NotifyEvent::Opened => AlertStatus::Open,
        NotifyEvent::Reminder => a.status(),
        NotifyEvent::Acknowledged => AlertStatus::Ack,
        NotifyEvent::Resolved => AlertStatus::Resolved,
    };
    let mut out = Vec::new();
    for channel in channels.iter().filter(|c| config.notify.contains_key(*c)) {
        let mut key = format!("{}-{}-{channel}", a.id, event.as_str());
        if let Some(n) = reminder {
            key.push_str(&format!("-{n}"));
        }
        let n = Notification {
            idempotency_key: key.clone(),
            event,
            alert_id: a.id.to_string(),
            rule: a.rule.clone(),
            subject: a.subject.clone(),
            environment: a.environment.clone(),
            severity: a.severity.as_str().to_owned(),
            status: status.as_str().to_owned(),
            metric: a.metric.clone(),
            value: a.value,
            threshold: a.threshold,
            summary: a.summary.clone(),
            operator: operator.clone(),
            note: a.note.clone(),
            at: now,
        };
        out.push(NewDelivery {
            alert_id: a.id,
            event: event.as_str().to_owned(),
            channel: channel.clone(),
            environment: a.environment.clone(),
            idempotency_key: key,
            payload: serde_json::to_value(&n)
                .map_err(|e| Error::failed(format_args!("cannot encode the notification of alert {}: {e}", a.id)))?,
        });
    }
    Ok(out)
}

/// A reminder when the rule repeats and the alert has been open (or its
/// acknowledgement's silence over) for `repeat` since the last notification.
fn remind(config: &Config, store: &dyn Store, rule: &Rule, a: &Alert, now: Timestamp) -> Result<bool> {
    let Some(repeat) = rule.repeat else {
        return Ok(false);
    };
    let silenced = match a.status() {
        AlertStatus::Open => false,
        AlertStatus::Ack => a.ack_until.is_none_or(|u| now < u),
        AlertStatus::Resolved => true,
    };
    let last = a.notified_at.unwrap_or(a.triggered_at);
    if silenced || now.since(last) < repeat {
        return Ok(false);
    }
    let n = u32::try_from(
        store
            .deliveries(Some(a.id))?
            .iter()
            .filter(|d| d.event == NotifyEvent::Reminder.as_str())
            .count()
            / rule.channels.len().max(1),
    )
    .unwrap_or(u32::MAX)
        + 1;
    let deliveries = queue(
        config,
        store,
        a,
        &rule.channels,
        NotifyEvent::Reminder,
        None,
        Some(n),
        now,
    )?;
    store.update_alert(
        a.id,
        &mut |x| {
            x.notified_at = Some(now);
            Ok(Vec::new())
        },
        &deliveries,
    )?;
    Ok(true)
}

/// The channels of the rule that opened `a` (a rule since removed: the
/// `[alerting]` default).
fn channels_of(config: &Config, a: &Alert) -> Vec<String> {
    rules(config).into_iter().find(|r| r.name == a.rule).map_or_else(
        || {
            config
                .alerting
                .notify
                .clone()
                .unwrap_or_else(|| config.notify.keys().cloned().collect())
        },
        |r| r.channels,
    )
}

/// Moves alert `id` to `to` through the model's table, with its event and
/// notifications, in one store transaction.
fn transition(
    config: &Config,
    store: &dyn Store,
    id: AlertId,
    to: AlertStatus,
    operator: Option<String>,
    until: Option<Timestamp>,
    note: Option<String>,
) -> Result<Alert> {
    let now = store.clock().now();
    let current = store
        .alert(id)?
        .ok_or_else(|| Error::invalid(format_args!("no alert {id} in the store")))?;
    let mut next = current.clone();
    next.transition(to, now).map_err(|e| Error::new(Code::Conflict, e))?;
    if let Some(n) = &note {
        next.note = Some(n.clone());
    }
    let event = match to {
        AlertStatus::Ack => NotifyEvent::Acknowledged,
        _ => NotifyEvent::Resolved,
    };
    let deliveries = queue(
        config,
        store,
        &next,
        &channels_of(config, &next),
        event,
        operator.clone(),
        None,
        now,
    )?;
    let mut f = |a: &mut Alert| -> std::result::Result<Vec<NewEvent>, StoreError> {
        a.transition(to, now)?;
        match to {
            AlertStatus::Ack => {
                a.acknowledged_by.clone_from(&operator);
                a.ack_until = until;
            }
            AlertStatus::Resolved => a.resolved_by.clone_from(&operator),
            AlertStatus::Open => {}
        }
        if let Some(n) = &note {
            a.note = Some(n.clone());
        }
        let by = operator.as_deref().map(|o| format!(" by {o}")).unwrap_or_default();
        let mut ev = NewEvent::new(
            EventKind::AlertChanged,
            Level::Info,
            format!("alert {} {}{by}: {}", a.id, event.as_str(), a.summary),
        )
        .environment(a.environment.clone())
        .data(serde_json::json!({
            "alert": a.id.to_string(),
            "rule": a.rule,
            "subject": a.subject,
            "status": to.as_str(),
        }));
        if let Some(o) = &operator {
            ev = ev.operator(o.clone());
        }
        Ok(vec![ev])
    };
    Ok(store.update_alert(id, &mut f, &deliveries)?)
}

/// Monitor `m`'s P95 response time over the last [`P95_WINDOW`] (its
/// maintenance windows left out), merged from its rollups' latency
/// sketches and the raw samples not rolled up yet; `None` without samples.
fn p95_ms(config: &Config, store: &dyn Store, record: &rollway_store::MonitorRecord) -> Result<Option<f64>> {
    let env = record.def.environment.as_str();
    let now = store.clock().now();
    let window = i64::try_from(P95_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let period = Span::new(Timestamp::from_millis(now.as_millis().saturating_sub(window)), now);
    let windows = store.maintenance_windows(Some(env))?;
    let (tz, _) = crate::uptime::zone(config, env)?;
    let maint = crate::uptime::windows_for(&windows, record, period, &tz);
    Ok(rollway_store::account::account(store, record, period, &maint)?
        .tally
        .rollup
        .p95_ms())
}

/// The window the log error rate is counted over: [`LOG_ERROR_WINDOW`], or
/// `ROLLWAY_LOG_ERROR_WINDOW` (tests).
fn log_error_window() -> Duration {
    std::env::var(LOG_ERROR_WINDOW_VAR)
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(LOG_ERROR_WINDOW)
}

/// `env`'s error-level log records of the last window, per minute.
fn log_errors_per_minute(store: &dyn Store, env: &str) -> Result<f64> {
    let window = log_error_window();
    let ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let mut q = rollway_store::LogQuery::new(env, 0);
    q.since = Some(Timestamp::from_millis(
        store.clock().now().as_millis().saturating_sub(ms),
    ));
    q.level = Some(rollway_model::Level::Error);
    let n = store.count_log_records(&q)?;
    Ok(n as f64 * LOG_ERROR_WINDOW.as_secs_f64() / window.as_secs_f64())
}

/// A host and what its agent read (or why it could not).
type HostReading = (String, std::result::Result<rollway_engine::HostStats, String>);

/// Each host of `env` with what its agent read (or why it could not).
fn read_hosts(p: &Project, env: &str) -> Vec<HostReading> {
    match crate::service::sessions(p, env, None) {
        Err(e) => vec![("*".to_owned(), Err(e.to_string()))],
        Ok((_, hosts, _)) => hosts
            .into_iter()
            .map(|mut h| {
                let stats = h.session.host_stats().map_err(|e| e.to_string());
                (h.name, stats)
            })
            .collect(),
    }
}

// ---- sending ----

/// How long a claimed delivery is kept from other senders: longer than one
/// attempt can take, so a live sender finishes first; a killed one's
/// delivery is due again after it, with the same key.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(30);

/// The wait after failed attempt `attempt`: `rollway_notify::backoff`, or
/// with `ROLLWAY_ALERT_BACKOFF_MS` (tests) that many milliseconds tripled
/// per attempt. `None`: out of attempts.
fn backoff(attempt: u32) -> Option<Duration> {
    let first_ms = std::env::var("ROLLWAY_ALERT_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    backoff_from(attempt, first_ms)
}

fn backoff_from(attempt: u32, first_ms: Option<u64>) -> Option<Duration> {
    let base = rollway_notify::backoff(attempt)?;
    match first_ms {
        Some(ms) => Some(Duration::from_millis(
            ms.saturating_mul(3u64.saturating_pow(attempt.saturating_sub(1))),
        )),
        None => Some(base),
    }
}

/// How many alerts are open or acknowledged, per severity and type: every
/// pair, zero included (`/metrics`' `rollway_alerts_open`).
pub fn open_counts(store: &dyn Store) -> Result<Vec<(Severity, AlertType, usize)>> {
    let unresolved = store.alerts(&AlertQuery {
        environment: None,
        unresolved: true,
        limit: 0,
    })?;
    let mut out = Vec::new();
    for s in Severity::ALL {
        for t in AlertType::ALL {
            let n = unresolved
                .iter()
                .filter(|a| a.severity == *s && a.alert_type == *t)
                .count();
            out.push((*s, *t, n));
        }
    }
    Ok(out)
}

/// What one round of sending did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivered {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    /// Each attempt's channel and outcome: `delivered`, `retried` (failed,
    /// tried again after the backoff) or `failed` (for good).
    pub attempts: Vec<(String, &'static str)>,
}

/// The channel `name` of `env`, its address read from rollway.toml and the
/// environment's secrets.
fn channel(p: &Project, config: &Config, store: &dyn Store, name: &str, env: &str) -> Result<Channel> {
    let c = config.notify.get(name).ok_or_else(|| {
        Error::invalid(format_args!(
            "notification channel {name} is not in {} any more: add [notify.{name}] back, or the delivery fails",
            p.config_path().display()
        ))
    })?;
    let secret = |key: &str| -> Result<String> {
        p.env_values(config, store, env)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::invalid(format_args!(
                    "channel {name} reads {key}, which {env} does not set: run `rollway secrets set {env} {key}`"
                ))
            })
    };
    Ok(match c {
        ChannelConfig::Webhook(w) => {
            let url = match (&w.url, &w.url_secret) {
                (Some(u), _) => u.clone(),
                (None, Some(key)) => secret(key)?,
                (None, None) => return Err(Error::invalid(format_args!("channel {name} has no url"))),
            };
            let url = url::Url::parse(&url)
                .map_err(|e| Error::invalid(format_args!("channel {name}: its url is not a URL: {e}")))?;
            Channel::Webhook(rollway_notify::Webhook {
                url,
                format: match w.format {
                    WebhookFormat::Json => rollway_notify::Format::Json,
                    WebhookFormat::Slack => rollway_notify::Format::Slack,
                    WebhookFormat::Discord => rollway_notify::Format::Discord,
                },
            })
        }
        ChannelConfig::Email(e) => Channel::Email(rollway_notify::Email {
            server: rollway_notify::SmtpServer {
                host: e.host.clone(),
                port: e.port,
                security: match e.security {
                    Some(SmtpSecurity::Tls) => rollway_notify::Security::Tls,
                    Some(SmtpSecurity::Plain) => rollway_notify::Security::Plain,
                    Some(SmtpSecurity::Starttls) | None => rollway_notify::Security::StartTls,
                },
                username: e.username.clone(),
                password: e.password_secret.as_deref().map(secret).transpose()?,
                ca_pem: e
                    .ca_file
                    .as_deref()
                    .map(|f| {
                        let path = p.config_path().parent().unwrap_or(std::path::Path::new(".")).join(f);
                        std::fs::read(&path).map_err(|err| {
                            Error::invalid(format_args!(
                                "channel {name}: cannot read its ca_file {}: {err}; fix the path in {}",
                                path.display(),
                                p.config_path().display()
                            ))
                        })
                    })
                    .transpose()?,
            },
            from: e.from.clone(),
            to: e.to.clone(),
        }),
    })
}

/// Claims the due deliveries (`Store::claim_deliveries`) and sends each
/// once, recording the attempt: delivered; failed and due again after the
/// backoff; or failed for good (refused, or `MAX_ATTEMPTS` made). Blocking
/// store calls run on the blocking pool; sends are bounded by the sender's
/// timeout.
pub async fn deliver_due(p: &Project, store: std::sync::Arc<dyn Store>, limit: usize) -> Result<Delivered> {
    let s = store.clone();
    let claimed = tokio::task::spawn_blocking(move || s.claim_deliveries(limit, DELIVERY_LEASE))
        .await
        .map_err(|e| Error::failed(format_args!("claiming deliveries panicked: {e}")))??;
    let mut out = Delivered::default();
    if claimed.is_empty() {
        return Ok(out);
    }
    let (project, s) = (p.clone(), store.clone());
    let resolved = tokio::task::spawn_blocking(move || -> Result<Vec<(Delivery, Result<Channel>)>> {
        let config = project.config()?;
        Ok(claimed
            .into_iter()
            .map(|d| {
                let c = channel(&project, &config, &*s, &d.channel, &d.environment);
                (d, c)
            })
            .collect())
    })
    .await
    .map_err(|e| Error::failed(format_args!("reading channels panicked: {e}")))??;
    // The masks now hold every secret the channels read.
    let sender =
        rollway_notify::Sender::new(p.masks().masker(), rollway_notify::ATTEMPT_TIMEOUT).map_err(Error::failed)?;
    for (d, c) in resolved {
        let attempt = match c {
            Err(e) => Attempt::Failed { error: e.to_string() },
            Ok(c) => match serde_json::from_value::<Notification>(d.payload.clone()) {
                Err(e) => Attempt::Failed {
                    error: format!("stored notification unreadable: {e}"),
                },
                Ok(n) => match sender.send(&c, &n).await {
                    Ok(sent) => Attempt::Delivered { answer: sent.answer },
                    Err(f) => match backoff(d.attempts + 1).filter(|_| f.retryable) {
                        Some(after) => Attempt::Retry {
                            error: f.message,
                            after,
                        },
                        None => Attempt::Failed { error: f.message },
                    },
                },
            },
        };
        let outcome = match &attempt {
            Attempt::Delivered { .. } => {
                out.delivered += 1;
                "delivered"
            }
            Attempt::Retry { .. } => {
                out.retried += 1;
                "retried"
            }
            Attempt::Failed { .. } => {
                out.failed += 1;
                "failed"
            }
        };
        out.attempts.push((d.channel.clone(), outcome));
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.finish_delivery(d.id, &attempt))
            .await
            .map_err(|e| Error::failed(format_args!("recording a delivery panicked: {e}")))??;
    }
    Ok(out)
}

// ---- commands ----

/// One alert with its deliveries (`rollway alerts show`).
#[derive(Debug, Clone, Serialize)]
pub struct AlertShow {
    pub alert: Alert,
    pub deliveries: Vec<Delivery>,
}

/// `rollway alerts list`: newest first.
pub fn list(p: &Project, unresolved: bool, environment: Option<&str>) -> Result<Vec<Alert>> {
    let (config, store) = p.open()?;
    if let Some(env) = environment {
        p.env_ref(&config, env)?;
    }
    Ok(store.alerts(&AlertQuery {
        environment: environment.map(str::to_owned),
        unresolved,
        limit: 0,
    })?)
}

/// The alert whose id starts with `prefix`; several are an error listing them.
fn find(store: &dyn Store, prefix: &str) -> Result<Alert> {
    let mut found = store.find_alerts(prefix)?;
    match found.len() {
        0 => Err(Error::invalid(format_args!(
            "no alert id starts with '{prefix}': see `rollway alerts list`"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::invalid(format_args!(
            "'{prefix}' is the start of {} alert ids: {}; give more of the id",
            found.len(),
            found.iter().map(|a| a.id.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `rollway alerts show ID`.
pub fn show(p: &Project, id: &str) -> Result<AlertShow> {
    let store = p.store()?;
    let alert = find(&*store, id)?;
    let deliveries = store.deliveries(Some(alert.id))?;
    Ok(AlertShow { alert, deliveries })
}

/// `rollway alerts ack ID [--until T] [--note TEXT]`: the operator and
/// time recorded; `--until` silences reminders until then.
pub fn ack(p: &Project, id: &str, until: Option<&str>, note: Option<&str>) -> Result<Alert> {
    let (config, store) = p.open()?;
    let a = find(&*store, id)?;
    // A note may quote a secret: arm the masks (and the store's) first.
    p.env_values(&config, &*store, &a.environment)?;
    let until = until
        .map(|u| {
            Timestamp::parse_rfc3339(u)
                .or_else(|| {
                    rollway_model::time::parse_duration(u)
                        .ok()
                        .map(|d| store.clock().now().plus(d))
                })
                .ok_or_else(|| {
                    Error::invalid(format_args!(
                        "--until '{u}' is neither an RFC 3339 time nor a duration: write e.g. 2026-11-01T02:00:00Z or 4h"
                    ))
                })
        })
        .transpose()?;
    transition(
        &config,
        &*store,
        a.id,
        AlertStatus::Ack,
        Some(p.operator()),
        until,
        note.map(str::to_owned),
    )
}

/// `rollway alerts resolve ID [--note TEXT]`: resolved by hand; the rule's
/// tracker starts over, so a breach still going on opens a new alert once
/// it has lasted the rule's `for`.
pub fn resolve(p: &Project, id: &str, note: Option<&str>) -> Result<Alert> {
    let (config, store) = p.open()?;
    let a = find(&*store, id)?;
    // A note may quote a secret: arm the masks (and the store's) first.
    p.env_values(&config, &*store, &a.environment)?;
    let resolved = transition(
        &config,
        &*store,
        a.id,
        AlertStatus::Resolved,
        Some(p.operator()),
        None,
        note.map(str::to_owned),
    )?;
    let trackers: BTreeMap<(String, String), Tracker> = store
        .alert_trackers()?
        .into_iter()
        .map(|(r, s, t)| ((r, s), t))
        .collect();
    if let Some(mut t) = trackers.get(&(a.rule.clone(), a.subject.clone())).cloned() {
        t.resolved_by_hand();
        store.put_alert_tracker(&a.rule, &a.subject, &t)?;
    }
    Ok(resolved)
}

/// `rollway metric push NAME VALUE [--env ENV] [--time T]`: one value of a
/// business metric. The environment defaults to the only one there is.
pub fn push_metric(p: &Project, name: &str, value: &str, env: Option<&str>, time: Option<&str>) -> Result<MetricPoint> {
    let (config, store) = p.open()?;
    let environment = match env {
        Some(e) => p.env_ref(&config, e)?.name,
        None => {
            let mut envs = config.environments.keys();
            match (envs.next(), envs.next()) {
                (Some(only), None) => only.clone(),
                _ => {
                    return Err(Error::invalid(format_args!(
                        "name the environment with --env: {} has {}",
                        p.config_path().display(),
                        crate::uptime::names(config.environments.keys().cloned())
                    )));
                }
            }
        }
    };
    if name.is_empty() || name.len() > rollway_model::names::MAX_NAME_LEN {
        return Err(Error::invalid(format_args!(
            "metric name '{name}' must be 1 to {} characters",
            rollway_model::names::MAX_NAME_LEN
        )));
    }
    let value: f64 = value.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
        Error::invalid(format_args!(
            "value '{value}' is not a finite number: write e.g. 42 or 0.5"
        ))
    })?;
    let time = match time {
        Some(t) => Timestamp::parse_rfc3339(t).ok_or_else(|| {
            Error::invalid(format_args!(
                "--time '{t}' is not an RFC 3339 time: write e.g. 2026-11-01T02:00:00Z"
            ))
        })?,
        None => store.clock().now(),
    };
    let point = MetricPoint {
        environment,
        name: name.to_owned(),
        time,
        value,
    };
    store.push_metric_point(&point)?;
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"project = "t"
[service]
start = "sleep 100"
port = 3000
[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"
[monitors.web]
environment = "staging"
kind = "http"
url = "http://127.0.0.1:9/"
[notify.a]
kind = "webhook"
url = "http://127.0.0.1:9/a"
[notify.b]
kind = "webhook"
url = "http://127.0.0.1:9/b"
"#;

    /// Each rule of `extra` added to [`BASE`] as one line: name, subject
    /// source, condition, damping, channels, repeat.
    #[track_caller]
    fn check(extra: &str, expected: &[&str]) {
        let config = rollway_config::parse(&format!("{BASE}{extra}"), "rollway.toml").unwrap();
        let got: Vec<String> = rules(&config)
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} {} {:?} {} for={}s n={} -> {} repeat={:?}",
                    r.name,
                    r.source,
                    r.severity.as_str(),
                    r.condition.comparison,
                    r.condition.threshold,
                    r.damping.hold.as_secs(),
                    r.damping.resolve_after,
                    r.channels.join(","),
                    r.repeat.map(|d| d.as_secs())
                )
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_rule_set_is_the_built_ins_then_the_configured_rules() {
        let builtins = |channels: &str, n: u32, repeat: &str| {
            vec![
                format!(
                    "monitor-down MonitorDown(\"web\") critical Above 0.5 for=0s n={n} -> {channels} repeat={repeat}"
                ),
                format!(
                    "response-time Record(\"web\", Performance) warning Above 1000 for=0s n={n} -> {channels} repeat={repeat}"
                ),
                format!("response-time-p95 P95(\"web\") warning Above 2000 for=0s n={n} -> {channels} repeat={repeat}"),
                format!(
                    "uptime-target Record(\"web\", Uptime) warning Below 99.5 for=0s n={n} -> {channels} repeat={repeat}"
                ),
                format!(
                    "burn-rate-page Burn(\"web\", Page) critical Above 0.5 for=0s n={n} -> {channels} repeat={repeat}"
                ),
                format!(
                    "burn-rate-ticket Burn(\"web\", Ticket) warning Above 0.5 for=0s n={n} -> {channels} repeat={repeat}"
                ),
            ]
        };
        let refs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join("\n");
        // Defaults: every channel, resolve after 2, no reminders.
        let b = builtins("a,b", 2, "None");
        check("", &refs(&b).lines().collect::<Vec<_>>());
        // [alerting] sets the built-ins' channels, reminders and resolve count;
        // a rule's own keys win over them.
        let mut b = builtins("b", 3, "Some(3600)");
        b.push("log-errors LogErrors warning Above 12 for=0s n=3 -> b repeat=Some(3600)".to_owned());
        b.push("disk Host(None, Disk) critical Above 90 for=300s n=3 -> b repeat=Some(3600)".to_owned());
        b.push("errors LogErrors critical Above 5 for=0s n=3 -> b repeat=Some(3600)".to_owned());
        b.push("signups Business(\"signups\") warning Below 5 for=0s n=1 -> a repeat=Some(60)".to_owned());
        b.push("slow P95(\"web\") warning Above 1500 for=60s n=3 -> b repeat=Some(3600)".to_owned());
        check(
            r#"[alerting]
notify = ["b"]
repeat = "1h"
resolve_after = 3
log_errors_per_minute = 12
[alerts.disk]
environment = "staging"
type = "resource"
metric = "disk"
above = 90
severity = "critical"
for = "5m"
[alerts.errors]
environment = "staging"
type = "availability"
metric = "log_errors_per_minute"
above = 5
severity = "critical"
[alerts.slow]
environment = "staging"
type = "availability"
metric = "p95_ms"
monitor = "web"
above = 1500
severity = "warning"
for = "1m"
[alerts.signups]
environment = "staging"
type = "business"
metric = "signups"
below = 5
severity = "warning"
resolve_after = 1
notify = ["a"]
repeat = "1m"
"#,
            &refs(&b).lines().collect::<Vec<_>>(),
        );
    }

    #[test]
    fn backoff_follows_the_sender_until_the_last_attempt() {
        let waits = |first: Option<u64>| -> Vec<Option<u128>> {
            (1..=rollway_notify::MAX_ATTEMPTS)
                .map(|a| backoff_from(a, first).map(|d| d.as_millis()))
                .collect()
        };
        assert_eq!(
            waits(None),
            [
                Some(10_000),
                Some(30_000),
                Some(90_000),
                Some(270_000),
                Some(810_000),
                None
            ]
        );
        // Tests shorten the first wait; still tripled, still six attempts.
        assert_eq!(
            waits(Some(200)),
            [Some(200), Some(600), Some(1800), Some(5400), Some(16_200), None]
        );
    }
}
