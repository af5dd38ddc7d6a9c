//! `[monitors.NAME]`: each case is a config text and the exact diagnostic
//! lines it must give (none for a valid config), plus the values a valid
//! one reads to, the default domain monitor and the JSON Schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rollway_config::{
    Config, DnsRecordType, HttpMethod, MonitorCheck, MonitorKind, OnSilence, json_schema, parse, template,
};

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

/// Two environments, then `monitors`.
fn with_envs(monitors: &str) -> String {
    format!(
        r#"project = "p"
[environments.production]
kind = "production"
https = true
domain = "app.example.com"
path = "/healthz"
[environments.staging]
kind = "staging"
{monitors}"#
    )
}

const EVERY_KIND: &str = r#"
[monitors.api]
environment = "production"
kind = "http"
url = "https://app.example.com/api/health"
method = "post"
headers = { Authorization = "Bearer x", X-Probe = "rollway" }
expect_status = [200, 204]
body_contains = "ok"
json_pointer = "/status"
equals = "ok"
latency_budget = "800ms"
interval = "30s"
timeout = "5s"
retries = 2
location = "eu-north"
target = "nginx"
max_redirects = 0

[monitors.db-port]
environment = "production"
kind = "tcp"
address = "db.internal:5432"
interval = "1s"

[monitors.cert]
environment = "production"
kind = "TLS"
address = "[::1]:8443"
server_name = "app.example.com"
warn_days = 21

[monitors.www]
environment = "staging"
kind = "dns"
name = "www.example.test"
record = "cname"
expect_answer = ["app.example.test"]
resolver = "127.0.0.1:15353"

[monitors.db]
environment = "production"
kind = "postgres"
url_secret = "DATABASE_URL"

[monitors.nightly-backup]
environment = "production"
kind = "push"
interval = "1d"
grace = "30m"
on_silence = "no_data"
"#;

#[test]
fn every_kind_reads_to_its_values() {
    let config = check(&with_envs(EVERY_KIND), "").unwrap();
    let m = &config.monitors;
    assert_eq!(m.len(), 6);

    let api = &m["api"];
    assert_eq!(
        (api.environment.as_str(), api.target.as_str(), api.kind()),
        ("production", "nginx", MonitorKind::Http)
    );
    assert_eq!(
        (api.interval, api.timeout, api.retries, api.latency_budget),
        (
            Duration::from_secs(30),
            Some(Duration::from_secs(5)),
            2,
            Some(Duration::from_millis(800))
        )
    );
    assert_eq!(api.location.as_deref(), Some("eu-north"));
    let MonitorCheck::Http(h) = &api.check else {
        panic!("{api:?}")
    };
    assert_eq!(h.method, HttpMethod::Post);
    assert_eq!(h.headers["X-Probe"], "rollway");
    assert_eq!(h.expect_status, [200, 204]);
    assert_eq!(
        (h.body_contains.as_deref(), h.json_pointer.as_deref()),
        (Some("ok"), Some("/status"))
    );
    assert_eq!(h.equals, Some(serde_json::json!("ok")));
    assert_eq!(h.max_redirects, 0);

    // Defaults: half of a 1 s interval, 3 retries, target by kind.
    let tcp = &m["db-port"];
    assert_eq!(tcp.timeout, Some(Duration::from_millis(500)));
    assert_eq!((tcp.retries, tcp.target.as_str()), (3, "backend"));
    let MonitorCheck::Tcp(t) = &tcp.check else { panic!() };
    assert_eq!(t.host_port(), Some(("db.internal", 5432)));

    let MonitorCheck::Tls(tls) = &m["cert"].check else {
        panic!()
    };
    assert_eq!(tls.host_port(), Some(("::1", 8443)));
    assert_eq!(
        (tls.effective_server_name(), tls.warn_days),
        (Some("app.example.com"), 21)
    );
    assert_eq!(
        m["cert"].timeout,
        Some(Duration::from_secs(10)),
        "10 s when the interval allows it"
    );

    let MonitorCheck::Dns(d) = &m["www"].check else {
        panic!()
    };
    assert_eq!(d.record, DnsRecordType::Cname);
    assert_eq!(d.expect_answer, ["app.example.test"]);
    assert_eq!(d.resolver, Some("127.0.0.1:15353".parse().unwrap()));

    assert_eq!(m["db"].target, "database");
    let MonitorCheck::Postgres(p) = &m["db"].check else {
        panic!()
    };
    assert_eq!(p.url_secret, "DATABASE_URL");

    let push = &m["nightly-backup"];
    assert_eq!((push.interval, push.timeout), (Duration::from_secs(86_400), None));
    let MonitorCheck::Push(p) = &push.check else { panic!() };
    assert_eq!((p.on_silence, p.grace), (OnSilence::NoData, Duration::from_secs(1800)));
}

#[test]
fn monitors_round_trip_through_the_parser() {
    let config = check(&with_envs(EVERY_KIND), "").unwrap();
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["monitors"]["www"]["kind"], "dns");
    assert_eq!(json["monitors"]["www"]["record"], "CNAME");
    assert_eq!(json["monitors"]["api"]["method"], "POST");
    assert_eq!(json["monitors"]["nightly-backup"]["interval"], "1d");
    assert!(json["monitors"]["nightly-backup"].get("timeout").is_none());
    let mut toml = String::new();
    for (k, v) in json.as_object().unwrap() {
        toml.push_str(&format!("{k} = {}\n", inline(v)));
    }
    assert_eq!(check(&toml, "").unwrap(), config);
}

/// JSON as a TOML inline value.
fn inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k:?} = {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

#[test]
fn an_environment_with_a_domain_gets_a_default_monitor() {
    let config = check(&with_envs(""), "").unwrap();
    assert!(config.monitors.is_empty(), "defaults are not declared monitors");
    let all = config.all_monitors();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["production-domain"]);
    let d = &all["production-domain"];
    assert_eq!((d.environment.as_str(), d.target.as_str()), ("production", "frontend"));
    let MonitorCheck::Http(h) = &d.check else { panic!() };
    assert_eq!(
        h.url, "https://app.example.com/healthz",
        "https://DOMAIN + the environment's [health] path"
    );
    assert_eq!(h.expect_status, [200]);

    // A declared monitor of that name replaces the default; an environment
    // that does not serve https is probed over http.
    let config = check(
        r#"project = "p"
[health]
expect_status = 204
[environments.staging]
kind = "staging"
domain = "staging.example.com"
[environments.production]
kind = "production"
https = true
domain = "app.example.com"
[monitors.production-domain]
environment = "production"
kind = "tcp"
address = "app.example.com:443"
"#,
        "",
    )
    .unwrap();
    let all = config.all_monitors();
    assert_eq!(all["production-domain"].kind(), MonitorKind::Tcp);
    let MonitorCheck::Http(h) = &all["staging-domain"].check else {
        panic!()
    };
    assert_eq!(
        (h.url.as_str(), h.expect_status.as_slice()),
        ("http://staging.example.com/", &[204][..])
    );
}

#[test]
fn common_keys_are_checked() {
    check(
        &with_envs(
            r#"
[monitors.a]
environment = "stagin"
kind = "htp"
url = 5

[monitors.b]
kind = "tcp"
address = "db.internal"
interval = "500ms"
timeout = "2s"
retries = 0

[monitors.c]
environment = "staging"
kind = "tcp"
address = "h:1"
interval = "5s"
timeout = "5s"
url = "http://x"
colour = "red"

[monitors.d]
environment = "staging"
kind = "push"
timeout = "1s"
latency_budget = "1s"
on_silence = "up"

[monitors."bad name"]
environment = "staging"
kind = "tcp"
interval = "8d"
location = ""
"#,
        ),
        r#"
        rollway.toml:11:15: monitor 'a' watches environment 'stagin', which is not an environment — did you mean 'staging'?
        rollway.toml:12:8: unknown monitor kind 'htp' for monitors.a.kind — did you mean 'http'?
        rollway.toml:15:1: missing key 'environment' in [monitors.b] — add environment = "NAME": the environment whose deployment this monitor watches
        rollway.toml:17:11: monitors.b.address is not host:port: 'db.internal' has no port — write "HOST:PORT", e.g. "db.internal:5432" or "[::1]:5432"
        rollway.toml:18:12: monitors.b.interval is 500ms, shorter than the minimum of 1s — use "1s" or longer
        rollway.toml:20:11: monitors.b.retries is 0, but it must be at least 1 — retries counts failed probes before the monitor is down: use 1 or more
        rollway.toml:27:11: monitors.c.timeout is 5s, not shorter than the interval of 5s — make timeout shorter than interval, so one probe ends before the next starts
        rollway.toml:28:7: monitors.c.url applies only to kind = "http", not "tcp" — remove url, or set kind = "http"
        rollway.toml:29:1: unknown key 'colour' in [monitors.c] — remove it; the keys allowed here are environment, kind, url, method, headers, expect_status, body_contains, json_pointer, equals, max_redirects, address, server_name, warn_days, name, record, expect_answer, resolver, url_secret, on_silence, grace, timeout, latency_budget, target, interval, retries, location
        rollway.toml:34:11: monitors.d.timeout applies only to kind = "http", "tcp", "tls", "dns" or "postgres", not "push" — remove timeout; a push monitor probes nothing
        rollway.toml:35:18: monitors.d.latency_budget applies only to kind = "http", "tcp", "tls", "dns" or "postgres", not "push" — remove latency_budget; a push monitor probes nothing
        rollway.toml:36:14: unknown on_silence value 'up' for monitors.d.on_silence — use one of: down, no_data
        rollway.toml:38:1: missing key 'address' in [monitors.bad name] — add address = "HOST:PORT", e.g. "db.internal:5432"
        rollway.toml:38:11: monitor name 'bad name' is not allowed — use letters, digits, '-', '_' and '.', starting with a letter or digit
        rollway.toml:41:12: monitors.bad name.interval is longer than the maximum of 7d — use at most "7d"
        rollway.toml:42:12: monitors.bad name.location is empty — give location a value or remove the key
        "#,
    );
}

#[test]
fn http_keys_are_checked() {
    check(
        &with_envs(
            r#"
[monitors.h]
environment = "staging"
kind = "http"
url = "ftp://example.com/x"
method = "FETCH"
headers = { "Bad Header" = "x", Accept = "a", accept = "b", X-Evil = "a\nb" }
expect_status = [200, 200, 700, "ok"]
json_pointer = "status"
latency_budget = "10s"
timeout = "5s"
interval = "10s"
max_redirects = 50

[monitors.i]
environment = "staging"
kind = "http"
url = "not a url"
equals = 1
body_contains = ""

[monitors.j]
environment = "staging"
kind = "http"
expect_status = []
"#,
        ),
        r#"
        rollway.toml:13:7: monitors.h.url 'ftp://example.com/x' is not an http or https URL — write a URL that starts with http:// or https://
        rollway.toml:14:10: unknown http method 'FETCH' for monitors.h.method — did you mean 'PATCH'?
        rollway.toml:15:13: header name 'Bad Header' in monitors.h.headers is not allowed — use letters, digits and '-', e.g. "X-Request-Id"
        rollway.toml:15:47: header 'accept' is set twice in monitors.h.headers — header names ignore case; keep one of them
        rollway.toml:15:70: the value of header 'X-Evil' holds a control character — remove line breaks and control characters from the value
        rollway.toml:16:23: 200 is listed twice in monitors.h.expect_status — remove the repeated entry
        rollway.toml:16:28: monitors.h.expect_status[2] is 700, but it must be from 100 to 599 — use an HTTP status, e.g. 200
        rollway.toml:16:33: monitors.h.expect_status[3] must be an integer, not a string — write a list of HTTP statuses: expect_status = [200, 204]
        rollway.toml:17:16: monitors.h.json_pointer 'status' does not start with '/' — write a JSON pointer like "/status" or "/checks/0/ok"
        rollway.toml:18:18: monitors.h.latency_budget is 10s, not shorter than the timeout of 5s — a probe that slow has already timed out: make latency_budget shorter than timeout
        rollway.toml:21:17: monitors.h.max_redirects is 50, but it must be from 0 to 20 — use 0 to not follow redirects, or up to 20
        rollway.toml:26:7: monitors.i.url 'not a url' is not a URL: relative URL without a base — write a URL like "https://app.example.com/healthz"
        rollway.toml:27:10: monitors.i.equals needs json_pointer — add json_pointer = "/status": the place in the JSON body that must equal this value
        rollway.toml:28:17: monitors.i.body_contains is empty — give the text the body must contain, or remove the key
        rollway.toml:30:1: missing key 'url' in [monitors.j] — add url = "https://…": the URL this monitor requests
        rollway.toml:33:17: monitors.j.expect_status is empty — list the statuses that count as ok, or remove the key (then any status but 5xx is ok)
        "#,
    );
}

#[test]
fn tls_dns_and_postgres_keys_are_checked() {
    check(
        &with_envs(
            r#"
[monitors.t]
environment = "staging"
kind = "tls"
server_name = "no such name!"
warn_days = -1

[monitors.k]
environment = "staging"
kind = "dns"
name = "bad name.example"
record = "AAAA"
expect_answer = ["127.0.0.1", "::1"]
resolver = "dns.google"

[monitors.l]
environment = "staging"
kind = "dns"
record = "SPF"
expect_answer = ["anything"]

[monitors.p]
environment = "staging"
kind = "postgres"
url_secret = "database-url"

[monitors.q]
environment = "staging"
kind = "postgres"
"#,
        ),
        r#"
        rollway.toml:10:1: missing key 'address' in [monitors.t] — add address = "HOST:PORT", e.g. "db.internal:5432"
        rollway.toml:13:15: monitors.t.server_name 'no such name!' contains ' ', which a DNS name cannot hold — write the name the certificate is for, e.g. "app.example.com"
        rollway.toml:14:13: monitors.t.warn_days is -1, but it must be from 0 to 3650 — use a number of days from 0 to 3650, e.g. warn_days = 14
        rollway.toml:19:8: monitors.k.name 'bad name.example' contains ' ', which a DNS name cannot hold — write the name to look up, e.g. "www.example.com"
        rollway.toml:21:18: '127.0.0.1' in monitors.k.expect_answer is not an IPv6 address — a AAAA answer is an IPv6 address
        rollway.toml:22:12: monitors.k.resolver 'dns.google' is not an ip:port — write an address and a port, e.g. "127.0.0.1:5353" or "[2001:db8::53]:53"
        rollway.toml:24:1: missing key 'name' in [monitors.l] — add name = "www.example.com": the name to look up
        rollway.toml:27:10: unknown dns record type 'SPF' for monitors.l.record — did you mean 'SRV'?
        rollway.toml:33:14: url_secret 'database-url' is not a valid environment variable name — use letters, digits and '_', not starting with a digit
        rollway.toml:35:1: missing key 'url_secret' in [monitors.q] — add url_secret = "DATABASE_URL": the variable that holds the connection URL
        "#,
    );
}

#[test]
fn the_templates_monitor_example_is_valid() {
    let uncommented: String = template()
        .lines()
        .map(|l| {
            // Commented-out TOML ("# [x]" or "# key = …") is uncommented.
            let body = l.strip_prefix("# ").unwrap_or(l);
            let is_toml = body.starts_with('[')
                || body
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            format!("{}\n", if l.starts_with("# ") && is_toml { body } else { l })
        })
        .collect();
    let config = check(&uncommented, "").unwrap();
    let api = &config.monitors["api"];
    assert_eq!((api.kind(), api.interval), (MonitorKind::Http, Duration::from_secs(30)));
}

#[test]
fn the_schema_describes_monitors() {
    let schema = json_schema();
    let m = &schema["$defs"]["MonitorConfig"];
    assert_eq!(m["unevaluatedProperties"], false);
    let kinds: Vec<&str> = m["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, MonitorKind::NAMES);
    assert_eq!(m["required"], serde_json::json!(["environment"]));
    assert_eq!(m["properties"]["interval"]["default"], "1m");
    assert_eq!(schema["$defs"]["HttpCheck"]["properties"]["method"]["default"], "GET");
    assert_eq!(
        schema["$defs"]["HttpCheck"]["properties"]["expect_status"]["items"]["maximum"],
        599
    );
    assert_eq!(schema["$defs"]["DnsCheck"]["properties"]["record"]["enum"][2], "CNAME");
    assert_eq!(
        schema["$defs"]["PushCheck"]["properties"]["on_silence"]["default"],
        "down"
    );
    assert!(!schema.to_string().contains("null"));
}

/// `timezone` and `uptime_target` of an environment: read, defaulted, and
/// refused at their value when unknown or out of range.
#[test]
fn environments_name_their_time_zone_and_uptime_target() {
    let c = check(
        r#"project = "p"
[environments.staging]
kind = "staging"
timezone = "Europe/Berlin"
uptime_target = 99.9
[environments.dev]
kind = "development"
"#,
        "",
    )
    .unwrap();
    let staging = &c.environments["staging"];
    assert_eq!(
        (staging.timezone.as_str(), staging.uptime_target),
        ("Europe/Berlin", 99.9)
    );
    let dev = &c.environments["dev"];
    assert_eq!((dev.timezone.as_str(), dev.uptime_target), ("UTC", 99.5));
    check(
        r#"project = "p"
[environments.staging]
kind = "staging"
timezone = "Mars/Olympus"
uptime_target = 100.5
"#,
        r#"rollway.toml:4:12: environments.staging.timezone 'Mars/Olympus' is not a known time zone: failed to find time zone `Mars/Olympus` in time zone database — write an IANA name such as "Europe/Berlin" or "UTC" (see /usr/share/zoneinfo)
rollway.toml:5:17: environments.staging.uptime_target is 100.5, but it must be above 0 and at most 100 — write a percentage above 0 and at most 100, e.g. uptime_target = 99.5"#,
    );
}
