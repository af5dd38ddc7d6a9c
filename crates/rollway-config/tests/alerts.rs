//! `[notify.NAME]`, `[alerting]` and `[alerts.NAME]`: each case is a config
//! text and the exact diagnostic lines it must give (none for a valid
//! config), plus the values a valid one reads to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rollway_config::{AlertRuleConfig, ChannelConfig, Config, SmtpSecurity, Subject, WebhookFormat, parse, parse_smtp};
use rollway_model::alerting::Comparison;
use rollway_model::status::{AlertType, Severity};

/// Parses `toml` and compares every diagnostic line with `expected` (one per
/// line, empty for a valid config); returns the config when it is valid.
fn check(toml: &str, expected: &str) -> Option<Config> {
    let (config, got) = match parse(toml, "rollway.toml") {
        Ok(c) => (Some(c), String::new()),
        Err(d) => (None, d.to_string()),
    };
    let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines, expected, "\n--- config ---\n{toml}\n--- got ---\n{got}\n");
    config
}

/// Two environments (production on two ssh hosts) and a monitor of each, then `rest`.
fn with(rest: &str) -> String {
    format!(
        r#"project = "p"
[environments.production]
kind = "production"
https = true
root = "/srv/p"
hosts = ["deploy@app1.example.com", "deploy@app2.example.com:2222"]
[environments.staging]
kind = "staging"
[monitors.api]
environment = "production"
kind = "http"
url = "https://api.example.com/health"
[monitors.stage]
environment = "staging"
kind = "tcp"
address = "127.0.0.1:5432"
{rest}"#
    )
}

const CHANNELS: &str = r#"
[notify.ops]
kind = "webhook"
url_secret = "SLACK_WEBHOOK_URL"
format = "slack"
[notify.hook]
kind = "webhook"
url = "https://hooks.example.com/rollway"
[notify.oncall]
kind = "email"
smtp = "smtps://mail.example.com"
username = "rollway"
password_secret = "SMTP_PASSWORD"
from = "Rollway <rollway@example.com>"
to = ["ops@example.com", "Ana <ana@example.com>"]
"#;

#[test]
fn channels_and_rules_read_to_their_values() {
    let c = check(
        &with(&format!(
            r#"{CHANNELS}
[notify.relay]
kind = "email"
smtp = "smtp://relay.internal:587"
ca_file = "certs/internal-ca.pem"
from = "Rollway <rollway@example.com>"
to = ["ops@example.com"]

[alerting]
notify = ["ops"]
repeat = "4h"
lookback = "30m"
log_errors_per_minute = 10

[alerts.api-slow]
environment = "production"
type = "availability"
metric = "p95_ms"
monitor = "api"
above = 1500
severity = "warning"
for = "5m"
notify = ["oncall", "hook"]

[alerts.disk]
environment = "production"
type = "resource"
metric = "disk"
host = "app1.example.com"
above = 90
severity = "critical"
resolve_after = 3

[alerts.signups]
environment = "production"
type = "business"
metric = "signups_per_hour"
below = 5
severity = "warning"

[alerts.log-errors]
environment = "staging"
type = "availability"
metric = "log_errors_per_minute"
above = 10
severity = "critical"
"#
        )),
        "",
    )
    .unwrap();
    match &c.notify["ops"] {
        ChannelConfig::Webhook(w) => {
            assert_eq!(
                (w.url.as_deref(), w.url_secret.as_deref(), w.format),
                (None, Some("SLACK_WEBHOOK_URL"), WebhookFormat::Slack)
            );
        }
        other => panic!("{other:?}"),
    }
    match &c.notify["oncall"] {
        ChannelConfig::Email(e) => {
            assert_eq!(
                (e.host.as_str(), e.port, e.security, e.to.len()),
                ("mail.example.com", 465, Some(SmtpSecurity::Tls), 2)
            );
            assert_eq!(
                (e.password_secret.as_deref(), e.ca_file.as_deref()),
                (Some("SMTP_PASSWORD"), None)
            );
        }
        other => panic!("{other:?}"),
    }
    match &c.notify["relay"] {
        ChannelConfig::Email(e) => {
            assert_eq!(
                (e.port, e.security, e.ca_file.as_deref()),
                (587, Some(SmtpSecurity::Starttls), Some("certs/internal-ca.pem"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.alerting.notify.as_deref(), Some(&["ops".to_owned()][..]));
    assert_eq!(c.alerting.log_errors_per_minute, Some(10.0));
    assert_eq!(
        (c.alerting.repeat, c.alerting.lookback, c.alerting.resolve_after),
        (Some(Duration::from_secs(4 * 3600)), Duration::from_secs(1800), 2)
    );
    let rule = |name: &str| -> &AlertRuleConfig { &c.alerts[name] };
    let slow = rule("api-slow");
    assert_eq!(
        (
            slow.alert_type,
            slow.subject.clone(),
            slow.comparison,
            slow.threshold,
            slow.severity,
            slow.hold,
            slow.resolve_after,
            slow.repeat
        ),
        (
            AlertType::Availability,
            Some(Subject::Monitor("api".into())),
            Some(Comparison::Above),
            1500.0,
            Severity::Warning,
            Duration::from_secs(300),
            2,
            Some(Duration::from_secs(4 * 3600))
        )
    );
    assert_eq!(
        slow.notify.as_deref(),
        Some(&["oncall".to_owned(), "hook".to_owned()][..])
    );
    assert_eq!(
        rule("disk").subject,
        Some(Subject::Host(Some("app1.example.com".into())))
    );
    assert_eq!(rule("disk").resolve_after, 3);
    assert_eq!(
        (rule("signups").subject.clone(), rule("signups").comparison),
        (
            Some(Subject::Metric("signups_per_hour".into())),
            Some(Comparison::Below)
        )
    );
    assert_eq!(rule("log-errors").subject, Some(Subject::Environment));
}

#[test]
fn channel_mistakes_are_located() {
    check(
        &with(
            r#"
[notify.a]
kind = "webhook"
[notify.b]
kind = "webhook"
url = "https://x.example.com"
url_secret = "X"
[notify.c]
kind = "webhook"
url = "ftp://x.example.com"
format = "teams"
[notify.d]
kind = "email"
smtp = "imap://mail.example.com"
from = "nobody"
to = []
[notify.e]
kind = "pager"
"#,
        ),
        r#"
        rollway.toml:18:1: missing key 'url' in [notify.a] — add url = "https://…", or url_secret = "VARIABLE" when the URL holds a token
        rollway.toml:22:7: notify.b has both url and url_secret — keep one: url_secret when the URL holds a token (chat webhooks do)
        rollway.toml:26:7: notify.c.url has scheme 'ftp', not http or https — webhooks are POSTed over http or https
        rollway.toml:27:10: unknown webhook format 'teams' for notify.c.format — use one of: json, slack, discord
        rollway.toml:30:8: notify.d.smtp has scheme 'imap', not smtps, smtp or smtp+plain — write smtp = "smtps://HOST" (TLS), "smtp://HOST:587" (STARTTLS) or "smtp+plain://HOST:25"
        rollway.toml:31:8: notify.d.from 'nobody' is not an e-mail address — write user@example.com or "Name <user@example.com>"
        rollway.toml:32:6: notify.d.to names no recipient — add to = ["ops@example.com"]: who gets the alerts
        rollway.toml:34:8: unknown notify kind 'pager' for notify.e.kind — use one of: webhook, email
        "#,
    );
}

#[test]
fn rule_mistakes_are_located() {
    check(
        &with(&format!(
            r#"{CHANNELS}
[alerting]
notify = ["opps"]
[alerts.a]
environment = "prod"
type = "availability"
metric = "p95"
monitor = "api"
above = 1
severity = "warning"
[alerts.b]
environment = "production"
type = "availability"
metric = "p95_ms"
monitor = "stage"
above = 1
below = 2
severity = "fatal"
[alerts.c]
environment = "production"
type = "resource"
metric = "disk"
host = "app9.example.com"
above = 90
severity = "critical"
notify = ["nobody"]
[alerts.d]
environment = "production"
type = "availability"
metric = "error_rate"
severity = "critical"
"#
        )),
        r#"
        rollway.toml:34:11: 'opps' is not a [notify] channel — did you mean 'ops'?
        rollway.toml:36:15: alert 'a' is of environment 'prod', which is not an environment — define [environments.prod], or name one of the environments
        rollway.toml:38:10: 'p95' is not a metric of availability alerts — availability metrics: down, p95_ms, average_ms, error_rate, uptime, log_errors_per_minute
        rollway.toml:46:11: monitor 'stage' watches environment 'staging', not 'production' — set environment = "staging", or name a monitor of production
        rollway.toml:47:9: alert 'b' has both above and below — keep one: above = N breaches over N, below = N under N
        rollway.toml:49:12: unknown severity 'fatal' for alerts.b.severity — use one of: warning, critical
        rollway.toml:54:8: host 'app9.example.com' is not a host of environment 'production' — name one of its hosts, or leave host out to watch all of them
        rollway.toml:57:11: 'nobody' is not a [notify] channel — define [notify.nobody] with kind = "webhook" or "email"
        rollway.toml:58:1: missing key 'above' in [alerts.d] — add above = N (or below = N): the threshold that opens the alert
        rollway.toml:58:1: missing key 'monitor' in [alerts.d] — add monitor = "NAME": the monitor whose metric this is
        "#,
    );
}

#[test]
fn smtp_urls_read_to_host_port_and_security() {
    let ok = |s: &str, host: &str, port: u16, sec: SmtpSecurity| {
        assert_eq!(parse_smtp(s), Ok((host.to_owned(), port, sec)), "{s}");
    };
    ok("smtps://mail.example.com", "mail.example.com", 465, SmtpSecurity::Tls);
    ok(
        "smtp://mail.example.com",
        "mail.example.com",
        587,
        SmtpSecurity::Starttls,
    );
    ok("smtp+plain://127.0.0.1:2525/", "127.0.0.1", 2525, SmtpSecurity::Plain);
    ok("smtp://[::1]:25", "::1", 25, SmtpSecurity::Starttls);
    for bad in [
        "mail.example.com",
        "smtp://",
        "smtp://u:p@mail.example.com",
        "smtp://h:0",
        "smtp://h:x",
        "http://h",
    ] {
        assert!(parse_smtp(bad).is_err(), "{bad}");
    }
}
