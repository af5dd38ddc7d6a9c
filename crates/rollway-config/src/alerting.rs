//! `[notify.NAME]`, `[alerting]` and `[alerts.NAME]` (OPERATIONS.md
//! "Alerts"): where notifications go (a webhook or e-mail), what the
//! built-in rules notify, and the rules a project adds — a metric of a
//! monitor, a host or a pushed business metric crossing a threshold for
//! long enough.

use std::collections::BTreeMap;
use std::time::Duration;

use rollway_model::alerting::Comparison;
use rollway_model::status::{AlertType, Severity};
use schemars::JsonSchema;
use serde::Serialize;

use crate::monitor::word_enum;
use crate::parse::{check_ident, check_name};
use crate::reader::{At, Table, closest};
use crate::{schema, serde_duration};

word_enum! {
    /// How a channel delivers.
    ChannelKind ("notify kind") {
        Webhook = "webhook",
        Email = "email",
    }
}

word_enum! {
    /// The body a webhook receiver reads.
    WebhookFormat ("webhook format") {
        /// The notification as a JSON document.
        Json = "json",
        /// `{"text": …}`: Slack incoming webhooks and compatible receivers.
        Slack = "slack",
        /// `{"content": …}`: Discord webhooks.
        Discord = "discord",
    }
}

word_enum! {
    /// How an SMTP connection is protected.
    SmtpSecurity ("smtp security") {
        /// TLS from the first byte (`smtps://`, port 465).
        Tls = "tls",
        /// STARTTLS, which must succeed (`smtp://`, port 587).
        Starttls = "starttls",
        /// No TLS: a relay on the same machine (`smtp+plain://`, port 25).
        Plain = "plain",
    }
}

/// `[notify.NAME]`: one channel.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

/// `kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WebhookConfig {
    /// Where notifications are POSTed (http or https). Chat webhook URLs hold a token: prefer url_secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The variable holding the URL, e.g. "SLACK_WEBHOOK_URL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<String>,
    /// json (default), slack or discord.
    #[serde(default = "default_format")]
    #[schemars(schema_with = "schema::webhook_format")]
    pub format: WebhookFormat,
}

/// `kind = "email"`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EmailConfig {
    /// The server: "smtps://HOST[:PORT]" (TLS), "smtp://HOST[:PORT]" (STARTTLS) or "smtp+plain://HOST[:PORT]".
    pub smtp: String,
    #[serde(skip)]
    pub host: String,
    #[serde(skip)]
    pub port: u16,
    #[serde(skip)]
    pub security: Option<SmtpSecurity>,
    /// The login, when the server asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The variable holding the password, e.g. "SMTP_PASSWORD".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// A PEM file of CA certificates the server's certificate may chain to
    /// besides the system's (a private or test CA), relative to rollway.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The sender, e.g. "Rollway <rollway@example.com>".
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// `[alerting]`: how the built-in rules notify, and the defaults of rules.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertingConfig {
    /// Channels the built-in rules' alerts go to. Default: every [notify] channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
    /// A reminder while an alert stays open and unacknowledged, e.g. "4h". Default: none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub repeat: Option<Duration>,
    /// An alert opened this soon after a deployment finished names it. Default "1h".
    #[serde(default = "default_lookback", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub lookback: Duration,
    /// Good evaluations in a row that resolve an alert. Default 2.
    #[serde(default = "default_resolve_after")]
    #[schemars(range(min = 1))]
    pub resolve_after: u32,
    /// The built-in log error-rate rule of every environment: a warning when
    /// its services print more error lines per minute than this. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_errors_per_minute: Option<f64>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            notify: None,
            repeat: None,
            lookback: default_lookback(),
            resolve_after: default_resolve_after(),
            log_errors_per_minute: None,
        }
    }
}

/// What an alert rule watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A monitor (availability rules).
    Monitor(String),
    /// One host of the environment, or all of them (resource rules).
    Host(Option<String>),
    /// A metric pushed with `rollway metric push` (business rules).
    Metric(String),
    /// The environment as a whole (its log error rate).
    Environment,
}

/// `[alerts.NAME]`: one rule.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertRuleConfig {
    /// The environment whose alert this is; one of [environments].
    pub environment: String,
    /// resource, availability or business (seed 002).
    #[serde(rename = "type")]
    #[schemars(schema_with = "schema::alert_type")]
    pub alert_type: AlertType,
    /// What is measured: availability — down, p95_ms, average_ms, error_rate, uptime, log_errors_per_minute;
    /// resource — cpu, memory, disk (percent used); business — the name given to `rollway metric push`.
    pub metric: String,
    /// What the metric is of.
    #[serde(skip)]
    pub subject: Option<Subject>,
    /// Breached above (`above = N`) or below (`below = N`) the threshold.
    #[serde(skip)]
    pub comparison: Option<Comparison>,
    #[serde(skip)]
    pub threshold: f64,
    /// warning or critical (seed 002).
    #[schemars(schema_with = "schema::severity")]
    pub severity: Severity,
    /// How long a breach must last before the alert opens, e.g. "5m". Default: at once.
    #[serde(rename = "for", default, serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub hold: Duration,
    /// Good evaluations in a row that resolve the alert. Default: [alerting] resolve_after.
    #[schemars(range(min = 1))]
    pub resolve_after: u32,
    /// Channels to notify. Default: [alerting] notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
    /// A reminder while open and unacknowledged. Default: [alerting] repeat.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub repeat: Option<Duration>,
}

fn default_format() -> WebhookFormat {
    WebhookFormat::Json
}

fn default_lookback() -> Duration {
    Duration::from_secs(3600)
}

fn default_resolve_after() -> u32 {
    2
}

/// The metrics of each rule type, with the side of the threshold that is
/// usually bad (a rule may say otherwise).
const AVAILABILITY_METRICS: &[&str] = &[
    "down",
    "p95_ms",
    "average_ms",
    "error_rate",
    "uptime",
    "log_errors_per_minute",
];
const RESOURCE_METRICS: &[&str] = &["cpu", "memory", "disk"];
/// Availability metrics of the environment as a whole, not of one monitor.
const ENVIRONMENT_METRICS: &[&str] = &["log_errors_per_minute"];

/// The longest `for`, `repeat` and lookback.
const MAX_ALERT_WAIT: Duration = Duration::from_secs(7 * 86_400);

/// What alert rules are checked against.
pub(crate) struct AlertContext<'c> {
    pub environments: Vec<&'c str>,
    /// Monitor name → its environment.
    pub monitors: BTreeMap<&'c str, &'c str>,
    /// Environment → its hosts' names (as written, and an ssh host's bare name).
    pub hosts: BTreeMap<&'c str, Vec<String>>,
    pub channels: Vec<&'c str>,
    pub alerting: &'c AlertingConfig,
}

/// Reads one `[notify.NAME]`.
pub(crate) fn read_channel(name: At<&str>, t: &mut Table<'_>) -> Option<ChannelConfig> {
    let cx = t.cx();
    check_name(cx, &name, "notify channel");
    let kind = t.choice_at::<ChannelKind>("kind");
    if kind.is_none() && !t.has("kind") {
        t.require("kind", "add kind = \"webhook\" or \"email\"");
    }
    match kind?.v {
        ChannelKind::Webhook => {
            let url = t.str_at("url");
            let url_secret = t.str_at("url_secret");
            match (&url, &url_secret) {
                (None, None) => t.require(
                    "url",
                    "add url = \"https://…\", or url_secret = \"VARIABLE\" when the URL holds a token",
                ),
                (Some(u), Some(_)) => cx.report(
                    u.at,
                    format!("notify.{} has both url and url_secret", name.v),
                    "keep one: url_secret when the URL holds a token (chat webhooks do)",
                ),
                (Some(u), None) => check_http_url(t, u),
                (None, Some(s)) => check_ident(cx, s, "url_secret"),
            }
            Some(ChannelConfig::Webhook(WebhookConfig {
                url: url.map(|u| u.v),
                url_secret: url_secret.map(|s| s.v),
                format: t.choice_or("format", WebhookFormat::Json),
            }))
        }
        ChannelKind::Email => {
            let smtp = t.str_at("smtp");
            let server = smtp.as_ref().and_then(|s| match parse_smtp(&s.v) {
                Ok(server) => Some(server),
                Err(why) => {
                    cx.report(s.at, format!("{} {why}", t.name("smtp")), SMTP_HINT);
                    None
                }
            });
            if smtp.is_none() {
                t.require("smtp", SMTP_HINT);
            }
            let username = t.nonempty_str("username");
            let password_secret = t.str_at("password_secret").map(|s| {
                check_ident(cx, &s, "password_secret");
                s.v
            });
            let ca_file = t.nonempty_str("ca_file");
            let from = t.str_at("from");
            match &from {
                None => t.require("from", "add from = \"Rollway <rollway@example.com>\""),
                Some(f) => check_address(t, f, "from"),
            }
            let to = t.str_list("to").unwrap_or_default();
            if to.is_empty() {
                const TO_HINT: &str = "add to = [\"ops@example.com\"]: who gets the alerts";
                match t.entry("to") {
                    Some((_, at)) => cx.report(at, format!("{} names no recipient", t.name("to")), TO_HINT),
                    None => t.require("to", TO_HINT),
                }
            }
            for addr in &to {
                check_address(t, addr, "to");
            }
            let (host, port, security) = server?;
            Some(ChannelConfig::Email(EmailConfig {
                smtp: smtp?.v,
                host,
                port,
                security: Some(security),
                username,
                password_secret,
                ca_file,
                from: from?.v,
                to: to.into_iter().map(|a| a.v).collect(),
            }))
        }
    }
}

const SMTP_HINT: &str =
    "write smtp = \"smtps://HOST\" (TLS), \"smtp://HOST:587\" (STARTTLS) or \"smtp+plain://HOST:25\"";

/// `smtps://HOST[:PORT]`, `smtp://HOST[:PORT]`, `smtp+plain://HOST[:PORT]`.
pub fn parse_smtp(s: &str) -> Result<(String, u16, SmtpSecurity), String> {
    let (scheme, rest) = s.split_once("://").ok_or_else(|| format!("'{s}' is not an smtp URL"))?;
    let (security, default_port) = match scheme {
        "smtps" => (SmtpSecurity::Tls, 465),
        "smtp" => (SmtpSecurity::Starttls, 587),
        "smtp+plain" => (SmtpSecurity::Plain, 25),
        other => return Err(format!("has scheme '{other}', not smtps, smtp or smtp+plain")),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '@', '?']) {
        return Err(format!(
            "'{s}' has more than a host and a port (put the login in username and password_secret)"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("has port '{p}', not a number from 1 to 65535"))?,
        ),
        _ => (rest, default_port),
    };
    if host.is_empty() {
        return Err(format!("'{s}' names no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_owned(), port, security))
}

fn check_http_url(t: &Table<'_>, u: &At<String>) {
    match url::Url::parse(&u.v) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
        Ok(parsed) => t.cx().report(
            u.at,
            format!("{} has scheme '{}', not http or https", t.name("url"), parsed.scheme()),
            "webhooks are POSTed over http or https",
        ),
        Err(e) => t.cx().report(
            u.at,
            format!("{} is not a URL: {e}", t.name("url")),
            "write the whole URL, e.g. \"https://hooks.example.com/rollway\"",
        ),
    }
}

/// A mailbox: `NAME <user@host>` or `user@host`.
fn check_address(t: &Table<'_>, a: &At<String>, key: &str) {
    let addr = match (a.v.find('<'), a.v.rfind('>')) {
        (Some(l), Some(r)) if l < r => &a.v[l + 1..r],
        _ => a.v.as_str(),
    };
    let ok = addr
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !addr.contains(char::is_whitespace));
    if !ok {
        t.cx().report(
            a.at,
            format!("{} '{}' is not an e-mail address", t.name(key), a.v),
            "write user@example.com or \"Name <user@example.com>\"",
        );
    }
}

/// Reads `[alerting]`; `channels` are the [notify] channels' names.
pub(crate) fn read_alerting(t: &mut Table<'_>, channels: &[&str]) -> AlertingConfig {
    let d = AlertingConfig::default();
    AlertingConfig {
        notify: t.unique_list("notify").map(|l| {
            for c in &l {
                check_channel(t, c, channels);
            }
            l.into_iter().map(|a| a.v).collect()
        }),
        repeat: t.bounded_duration("repeat", MAX_ALERT_WAIT),
        lookback: t.bounded_duration("lookback", MAX_ALERT_WAIT).unwrap_or(d.lookback),
        resolve_after: t.u32_or(
            "resolve_after",
            1,
            d.resolve_after,
            "resolve_after counts good evaluations: use 1 or more",
        ),
        log_errors_per_minute: t
            .number_at(
                "log_errors_per_minute",
                0.0,
                1e9,
                "give the error lines per minute above which the alert opens, e.g. 10",
            )
            .map(|n| n.v),
    }
}

/// Reads one `[alerts.NAME]`.
pub(crate) fn read_alert(name: At<&str>, t: &mut Table<'_>, acx: &AlertContext<'_>) -> Option<AlertRuleConfig> {
    let cx = t.cx();
    check_name(cx, &name, "alert");
    let environment = t.str_at("environment");
    match &environment {
        None => t.require("environment", "add environment = \"NAME\": whose alert this is"),
        Some(e) if !acx.environments.contains(&e.v.as_str()) => cx.report(
            e.at,
            format!(
                "alert '{}' is of environment '{}', which is not an environment",
                name.v, e.v
            ),
            match closest(&e.v, acx.environments.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("define [environments.{}], or name one of the environments", e.v),
            },
        ),
        Some(_) => {}
    }
    let alert_type = t.choice_at::<AlertType>("type");
    if alert_type.is_none() && !t.has("type") {
        t.require("type", "add type = \"availability\", \"resource\" or \"business\"");
    }
    let metric = t.str_at("metric");
    if metric.is_none() {
        t.require("metric", "add metric = \"…\": what is measured");
    }
    let severity = t.choice_at::<Severity>("severity");
    if severity.is_none() && !t.has("severity") {
        t.require("severity", "add severity = \"warning\" or \"critical\"");
    }
    let above = t.number_at("above", f64::MIN, f64::MAX, "give the threshold as a number");
    let below = t.number_at("below", f64::MIN, f64::MAX, "give the threshold as a number");
    let threshold = match (above, below) {
        (Some(a), None) => Some((Comparison::Above, a.v)),
        (None, Some(b)) => Some((Comparison::Below, b.v)),
        (Some(a), Some(_)) => {
            cx.report(
                a.at,
                format!("alert '{}' has both above and below", name.v),
                "keep one: above = N breaches over N, below = N under N",
            );
            None
        }
        (None, None) => {
            if !t.has("above") && !t.has("below") {
                t.require(
                    "above",
                    "add above = N (or below = N): the threshold that opens the alert",
                );
            }
            None
        }
    };
    let monitor = t.str_at("monitor");
    let host = t.str_at("host");
    let hold = t.bounded_duration("for", MAX_ALERT_WAIT).unwrap_or(Duration::ZERO);
    let resolve_after = t.u32_or(
        "resolve_after",
        1,
        acx.alerting.resolve_after,
        "resolve_after counts good evaluations: use 1 or more",
    );
    let notify = t.unique_list("notify").map(|l| {
        for c in &l {
            check_channel(t, c, &acx.channels);
        }
        l.into_iter().map(|a| a.v).collect()
    });
    let repeat = t.bounded_duration("repeat", MAX_ALERT_WAIT).or(acx.alerting.repeat);
    let (environment, alert_type, metric) = (environment?, alert_type?, metric?);
    let env = environment.v.as_str();
    let subject = match alert_type.v {
        AlertType::Availability => {
            if !AVAILABILITY_METRICS.contains(&metric.v.as_str()) {
                unknown_metric(t, &metric, "availability", AVAILABILITY_METRICS);
                None
            } else if ENVIRONMENT_METRICS.contains(&metric.v.as_str()) {
                if let Some(m) = &monitor {
                    cx.report(
                        m.at,
                        format!("metric {} is of the whole environment, not of a monitor", metric.v),
                        "remove monitor",
                    );
                }
                Some(Subject::Environment)
            } else {
                match &monitor {
                    None => {
                        t.require("monitor", "add monitor = \"NAME\": the monitor whose metric this is");
                        None
                    }
                    Some(m) => match acx.monitors.get(m.v.as_str()) {
                        None => {
                            cx.report(
                                m.at,
                                format!("alert '{}' watches monitor '{}', which is not a monitor", name.v, m.v),
                                match closest(&m.v, acx.monitors.keys().copied()) {
                                    Some(c) => format!("did you mean '{c}'?"),
                                    None => "name one of the [monitors]".to_owned(),
                                },
                            );
                            None
                        }
                        Some(menv) if *menv != env => {
                            cx.report(
                                m.at,
                                format!("monitor '{}' watches environment '{menv}', not '{env}'", m.v),
                                format!("set environment = \"{menv}\", or name a monitor of {env}"),
                            );
                            None
                        }
                        Some(_) => Some(Subject::Monitor(m.v.clone())),
                    },
                }
            }
        }
        AlertType::Resource => {
            if !RESOURCE_METRICS.contains(&metric.v.as_str()) {
                unknown_metric(t, &metric, "resource", RESOURCE_METRICS);
                None
            } else {
                match &host {
                    Some(h) if !acx.hosts.get(env).is_some_and(|hs| hs.contains(&h.v)) => {
                        cx.report(
                            h.at,
                            format!("host '{}' is not a host of environment '{env}'", h.v),
                            "name one of its hosts, or leave host out to watch all of them",
                        );
                        None
                    }
                    h => Some(Subject::Host(h.as_ref().map(|h| h.v.clone()))),
                }
            }
        }
        AlertType::Business => {
            let m = At {
                v: metric.v.as_str(),
                at: metric.at,
            };
            check_name(cx, &m, "metric");
            Some(Subject::Metric(metric.v.clone()))
        }
    };
    let (severity, (comparison, threshold)) = (severity?, threshold?);
    Some(AlertRuleConfig {
        environment: environment.v,
        alert_type: alert_type.v,
        metric: metric.v,
        subject: Some(subject?),
        comparison: Some(comparison),
        threshold,
        severity: severity.v,
        hold,
        resolve_after,
        notify,
        repeat,
    })
}

fn unknown_metric(t: &Table<'_>, metric: &At<String>, kind: &str, known: &[&str]) {
    t.cx().report(
        metric.at,
        format!("'{}' is not a metric of {kind} alerts", metric.v),
        match closest(&metric.v, known.iter().copied()) {
            Some(c) => format!("did you mean '{c}'? {kind} metrics: {}", known.join(", ")),
            None => format!("{kind} metrics: {}", known.join(", ")),
        },
    );
}

fn check_channel(t: &Table<'_>, c: &At<String>, channels: &[&str]) {
    if !channels.contains(&c.v.as_str()) {
        t.cx().report(
            c.at,
            format!("'{}' is not a [notify] channel", c.v),
            match closest(&c.v, channels.iter().copied()) {
                Some(near) => format!("did you mean '{near}'?"),
                None => format!("define [notify.{}] with kind = \"webhook\" or \"email\"", c.v),
            },
        );
    }
}
