//! `[monitors.NAME]` (OPERATIONS.md "Monitors"): what `rollway serve` keeps
//! probing after a deploy, as typed values, and the reader that checks them.
//!
//! A monitor has common keys (environment, target, interval, timeout,
//! retries, location, latency_budget) and the keys of its `kind`; a key of
//! another kind is reported at its value rather than silently ignored, so a
//! `url` on a `tcp` monitor never looks like it is being probed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rollway_model::time::format_duration;
use schemars::JsonSchema;
use serde::Serialize;

use crate::parse::{check_ident, check_name};
use crate::reader::{At, Table, closest, describe, describe_value, item_to_json, value_at};
use crate::{schema, serde_duration};

/// The shortest interval between two probes of one monitor (OPERATIONS.md).
pub const MIN_MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval: a push monitor of a weekly cron job.
pub const MAX_MONITOR_INTERVAL: Duration = Duration::from_secs(7 * 86_400);
/// The interval when none is written.
pub const DEFAULT_MONITOR_INTERVAL: Duration = Duration::from_secs(60);
/// The timeout when none is written, unless half the interval is shorter.
pub const DEFAULT_MONITOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed probes in a row before a monitor counts as down (seed 002 `retries`).
pub const DEFAULT_MONITOR_RETRIES: u32 = 3;
/// Redirects an HTTP monitor follows when `max_redirects` is not written.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
/// A TLS certificate with fewer days left than this makes an error sample.
pub const DEFAULT_WARN_DAYS: u32 = 14;
/// How late a push may be, after its interval, before `on_silence` applies.
pub const DEFAULT_PUSH_GRACE: Duration = Duration::from_secs(60);
/// The longest grace of a push monitor.
const MAX_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// The longest latency budget (as long as the longest sensible timeout).
const MAX_LATENCY_BUDGET: Duration = Duration::from_secs(3600);
/// The most redirects an HTTP monitor may follow.
const MAX_REDIRECTS: i64 = 20;

/// Word enums of monitor keys: read in any case, written canonically, with
/// the model's `UnknownVariant` so the reader's `choice_at` hints apply.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The canonical spellings, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::rollway_model::status::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case($s) { return Ok($name::$variant); })+
                Err(::rollway_model::status::UnknownVariant { what: $what, value: s.to_owned(), expected: Self::NAMES })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use word_enum;

word_enum! {
    /// How a monitor probes its target.
    MonitorKind ("monitor kind") {
        Http = "http",
        Tcp = "tcp",
        Tls = "tls",
        Dns = "dns",
        Postgres = "postgres",
        /// Nothing is probed: samples arrive from outside (`rollway monitor push`).
        Push = "push",
    }
}

word_enum! {
    /// The HTTP method of an HTTP monitor.
    HttpMethod ("http method") {
        Get = "GET",
        Head = "HEAD",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Options = "OPTIONS",
    }
}

word_enum! {
    /// The record type a DNS monitor asks for.
    DnsRecordType ("dns record type") {
        A = "A",
        Aaaa = "AAAA",
        Cname = "CNAME",
        Txt = "TXT",
        Mx = "MX",
        Ns = "NS",
        Srv = "SRV",
        Ptr = "PTR",
        Caa = "CAA",
    }
}

word_enum! {
    /// What a push monitor is when nothing arrives within interval + grace.
    OnSilence ("on_silence value") {
        /// A cron job that stopped checking in: down.
        Down = "down",
        /// Results pushed by probes elsewhere: the gap is no data, not downtime.
        NoData = "no_data",
    }
}

/// The probing kinds: every kind but `push`.
const PROBING: &[MonitorKind] = &[
    MonitorKind::Http,
    MonitorKind::Tcp,
    MonitorKind::Tls,
    MonitorKind::Dns,
    MonitorKind::Postgres,
];

/// Keys that belong to some kinds only, with those kinds.
const KIND_KEYS: &[(&str, &[MonitorKind])] = &[
    ("url", &[MonitorKind::Http]),
    ("method", &[MonitorKind::Http]),
    ("headers", &[MonitorKind::Http]),
    ("expect_status", &[MonitorKind::Http]),
    ("body_contains", &[MonitorKind::Http]),
    ("json_pointer", &[MonitorKind::Http]),
    ("equals", &[MonitorKind::Http]),
    ("max_redirects", &[MonitorKind::Http]),
    ("address", &[MonitorKind::Tcp, MonitorKind::Tls]),
    ("server_name", &[MonitorKind::Tls]),
    ("warn_days", &[MonitorKind::Tls]),
    ("name", &[MonitorKind::Dns]),
    ("record", &[MonitorKind::Dns]),
    ("expect_answer", &[MonitorKind::Dns]),
    ("resolver", &[MonitorKind::Dns]),
    ("url_secret", &[MonitorKind::Postgres]),
    ("on_silence", &[MonitorKind::Push]),
    ("grace", &[MonitorKind::Push]),
    ("timeout", PROBING),
    ("latency_budget", PROBING),
];

/// `[monitors.NAME]`: one monitor (seed 002 Health Check).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
// The keys of the kind come from the flattened `oneOf`, so "no other keys"
// is `unevaluatedProperties` (it sees through `oneOf`), not `additionalProperties`.
#[schemars(extend("unevaluatedProperties" = false))]
pub struct MonitorConfig {
    /// The environment whose deployment is watched; one of [environments].
    pub environment: String,
    /// What is watched: seed 002's frontend, backend, database or nginx, or any name. Default: database for
    /// postgres monitors, backend otherwise.
    #[serde(default = "schema_default_target")]
    pub target: String,
    /// Time between two probes (or, for push, between two expected pushes); at least "1s". Default "1m".
    #[serde(default = "default_interval", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub interval: Duration,
    /// Bound on each probe, shorter than interval. Default: "10s", or half the interval when that is shorter.
    /// Not for push monitors.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub timeout: Option<Duration>,
    /// Failed probes in a row before the monitor counts as down (seed 002). Default 3.
    #[serde(default = "default_retries")]
    #[schemars(range(min = 1))]
    pub retries: u32,
    /// A name recorded on each sample: where the probe ran (seed 003 user_location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A probe slower than this is an error sample, e.g. "500ms". Not for push monitors.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub latency_budget: Option<Duration>,
    /// What is probed, by kind.
    #[serde(flatten)]
    pub check: MonitorCheck,
}

impl MonitorConfig {
    /// The monitor's kind.
    pub fn kind(&self) -> MonitorKind {
        self.check.kind()
    }
}

/// What a monitor probes; `kind` selects the keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MonitorCheck {
    /// An HTTP(S) request.
    Http(HttpCheck),
    /// A TCP connect.
    Tcp(TcpCheck),
    /// A TLS handshake: the certificate chain and its expiry.
    Tls(TlsCheck),
    /// A DNS question to a resolver.
    Dns(DnsCheck),
    /// `SELECT 1` over a real PostgreSQL connection.
    Postgres(PostgresCheck),
    /// Samples arrive from outside: `rollway monitor push NAME`.
    Push(PushCheck),
}

impl MonitorCheck {
    pub fn kind(&self) -> MonitorKind {
        match self {
            Self::Http(_) => MonitorKind::Http,
            Self::Tcp(_) => MonitorKind::Tcp,
            Self::Tls(_) => MonitorKind::Tls,
            Self::Dns(_) => MonitorKind::Dns,
            Self::Postgres(_) => MonitorKind::Postgres,
            Self::Push(_) => MonitorKind::Push,
        }
    }
}

/// `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HttpCheck {
    /// The http:// or https:// URL requested.
    pub url: String,
    /// GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS. Default GET.
    #[serde(default = "default_method")]
    #[schemars(schema_with = "schema::http_method")]
    pub method: HttpMethod,
    /// Request headers, e.g. { Authorization = "Bearer …" }.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The statuses that count as ok, e.g. [200, 204]. Empty: any status but 5xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub expect_status: Vec<u16>,
    /// Text the body (its first 64 KiB) must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A JSON pointer (RFC 6901) into the body that must exist, e.g. "/status".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_pointer: Option<String>,
    /// The value json_pointer must point at, e.g. "ok", 1 or true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::any")]
    pub equals: Option<serde_json::Value>,
    /// Redirects followed; 0 makes a redirect the answer. Default 5.
    #[serde(default = "default_max_redirects")]
    #[schemars(range(max = 20))]
    pub max_redirects: u32,
}

/// `kind = "tcp"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TcpCheck {
    /// "host:port" to connect to; IPv6 addresses in brackets, "[::1]:5432".
    pub address: String,
}

impl TcpCheck {
    /// The host and port of `address` (checked when read).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        split_address(&self.address).ok()
    }
}

/// `kind = "tls"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TlsCheck {
    /// "host:port" of the TLS server.
    pub address: String,
    /// The name the certificate must be valid for (SNI). Default: the host of address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Fewer days left than this on the certificate makes an error sample. Default 14.
    #[serde(default = "default_warn_days")]
    #[schemars(range(max = 3650))]
    pub warn_days: u32,
}

impl TlsCheck {
    /// The host and port of `address` (checked when read).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        split_address(&self.address).ok()
    }

    /// The name the certificate is checked against.
    pub fn effective_server_name(&self) -> Option<&str> {
        self.server_name.as_deref().or_else(|| self.host_port().map(|(h, _)| h))
    }
}

/// `kind = "dns"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DnsCheck {
    /// The name asked for, e.g. "www.example.com".
    pub name: String,
    /// A, AAAA, CNAME, TXT, MX, NS, SRV, PTR or CAA. Default A.
    #[serde(default = "default_record")]
    #[schemars(schema_with = "schema::dns_record_type")]
    pub record: DnsRecordType,
    /// Answers that must all be present, e.g. ["203.0.113.7"]. Empty: any answer of that type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_answer: Vec<String>,
    /// The resolver asked, "ip:port" (port 53 when left out). Default: the system's resolvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub resolver: Option<SocketAddr>,
}

/// `kind = "postgres"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PostgresCheck {
    /// The variable holding the connection URL, e.g. "DATABASE_URL"; its value comes from the environment's secrets.
    pub url_secret: String,
}

/// `kind = "push"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PushCheck {
    /// What the monitor is when nothing arrives within interval + grace: down (default) or no_data.
    #[serde(default = "default_on_silence")]
    #[schemars(schema_with = "schema::on_silence")]
    pub on_silence: OnSilence,
    /// How late a push may be after its interval, e.g. "1m" (default).
    #[serde(default = "default_grace", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub grace: Duration,
}

// Defaults as the schema shows them (the reader applies the same values).
fn schema_default_target() -> String {
    default_target(MonitorKind::Http).to_owned()
}
fn default_interval() -> Duration {
    DEFAULT_MONITOR_INTERVAL
}
fn default_retries() -> u32 {
    DEFAULT_MONITOR_RETRIES
}
fn default_method() -> HttpMethod {
    HttpMethod::Get
}
fn default_max_redirects() -> u32 {
    DEFAULT_MAX_REDIRECTS
}
fn default_warn_days() -> u32 {
    DEFAULT_WARN_DAYS
}
fn default_record() -> DnsRecordType {
    DnsRecordType::A
}
fn default_on_silence() -> OnSilence {
    OnSilence::Down
}
fn default_grace() -> Duration {
    DEFAULT_PUSH_GRACE
}

/// `host:port` split, the host without IPv6 brackets.
pub fn split_address(s: &str) -> Result<(&str, u16), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("'{s}' has no port"));
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| format!("'{s}' opens a '[' it does not close"))?,
        None if host.contains(':') => {
            return Err(format!("'{s}' is an IPv6 address without brackets"));
        }
        None => host,
    };
    if host.is_empty() {
        return Err(format!("'{s}' has no host"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
        return Err(format!("'{s}' has a host that is neither a name nor an address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host, p)),
        _ => Err(format!("'{s}' has port '{port}', not a number from 1 to 65535")),
    }
}

/// `ip` or `ip:port` (IPv6 as `[ip]:port`), port 53 when left out.
fn parse_resolver(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// A DNS name as a question: labels of letters, digits, `-` and `_`.
fn dns_name_problem(name: &str) -> Option<String> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 253 {
        return Some(format!("is {} characters long; a name has at most 253", name.len()));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Some(format!("'{name}' has an empty label"));
        }
        if label.len() > 63 {
            return Some(format!("label '{label}' is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return Some(format!("'{name}' contains '{c}', which a DNS name cannot hold"));
        }
    }
    None
}

/// An HTTP header name: an RFC 9110 token.
fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What reading a monitor needs from the rest of the file.
pub(crate) struct MonitorContext<'c> {
    /// The environments' names.
    pub environments: Vec<&'c str>,
}

/// Reads one `[monitors.NAME]`; `None` when its kind is missing or unknown,
/// or a required key of its kind is (each reported).
pub(crate) fn read_monitor(name: At<&str>, t: &mut Table<'_>, mcx: &MonitorContext<'_>) -> Option<MonitorConfig> {
    let cx = t.cx();
    check_name(cx, &name, "monitor");
    let environment = t.str_at("environment");
    match &environment {
        None => t.require(
            "environment",
            "add environment = \"NAME\": the environment whose deployment this monitor watches",
        ),
        Some(e) if !mcx.environments.contains(&e.v.as_str()) => cx.report(
            e.at,
            format!(
                "monitor '{}' watches environment '{}', which is not an environment",
                name.v, e.v
            ),
            match closest(&e.v, mcx.environments.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("define [environments.{}], or name one of the environments", e.v),
            },
        ),
        Some(_) => {}
    }
    let kind = t.choice_at::<MonitorKind>("kind");
    if kind.is_none() && !t.has("kind") {
        t.require(
            "kind",
            "add kind = \"http\", \"tcp\", \"tls\", \"dns\", \"postgres\" or \"push\"",
        );
    }
    let kind = kind.map(|k| k.v);
    // Keys of another kind: reported once, at the value; an unknown kind
    // says nothing more about them.
    for (key, kinds) in KIND_KEYS {
        let Some((_, at)) = t.entry(key) else {
            continue;
        };
        if let Some(k) = kind
            && !kinds.contains(&k)
        {
            let names: Vec<String> = kinds.iter().map(|k| format!("\"{k}\"")).collect();
            let wanted = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            };
            let hint = if k == MonitorKind::Push {
                format!("remove {key}; a push monitor probes nothing")
            } else {
                format!(
                    "remove {key}, or set kind = {}",
                    names.first().map_or("", String::as_str)
                )
            };
            cx.report(
                at,
                format!("{} applies only to kind = {wanted}, not \"{k}\"", t.name(key)),
                hint,
            );
        }
    }
    let target = t.str_at("target").map(|a| {
        check_name(
            cx,
            &At {
                v: a.v.as_str(),
                at: a.at,
            },
            "target",
        );
        a.v
    });
    let interval = t.duration_at("interval").and_then(|d| {
        if d.v < MIN_MONITOR_INTERVAL {
            cx.report(
                d.at,
                format!(
                    "{} is {}, shorter than the minimum of 1s",
                    t.name("interval"),
                    format_duration(d.v)
                ),
                "use \"1s\" or longer",
            );
            return None;
        }
        let at = d.at;
        t.at_most("interval", d, MAX_MONITOR_INTERVAL).map(|v| At { v, at })
    });
    let retries = t
        .u32_at(
            "retries",
            1,
            "retries counts failed probes before the monitor is down: use 1 or more",
        )
        .map_or(DEFAULT_MONITOR_RETRIES, |a| a.v);
    let location = t.nonempty_str("location");
    let interval_v = interval.as_ref().map_or(DEFAULT_MONITOR_INTERVAL, |i| i.v);
    let kind = kind?;
    let probing = kind != MonitorKind::Push;
    let timeout = if probing {
        let written = t.duration_at("timeout").and_then(|d| {
            if d.v.is_zero() {
                cx.report(
                    d.at,
                    format!("{} is zero", t.name("timeout")),
                    "give it a length greater than zero, e.g. \"5s\"",
                );
                return None;
            }
            // Only against an interval that was read: a wrong interval is
            // reported at the interval, once.
            if (interval.is_some() || !t.has("interval")) && d.v >= interval_v {
                cx.report(
                    d.at,
                    format!(
                        "{} is {}, not shorter than the interval of {}",
                        t.name("timeout"),
                        format_duration(d.v),
                        format_duration(interval_v)
                    ),
                    "make timeout shorter than interval, so one probe ends before the next starts",
                );
                return None;
            }
            Some(d.v)
        });
        Some(written.unwrap_or_else(|| DEFAULT_MONITOR_TIMEOUT.min(interval_v / 2)))
    } else {
        None
    };
    let latency_budget = if probing {
        t.bounded_duration("latency_budget", MAX_LATENCY_BUDGET)
    } else {
        None
    };
    let check = match kind {
        MonitorKind::Http => MonitorCheck::Http(read_http(t)?),
        MonitorKind::Tcp => MonitorCheck::Tcp(TcpCheck {
            address: read_address(t)?,
        }),
        MonitorKind::Tls => {
            let address = read_address(t);
            let server_name = t.str_at("server_name").map(|s| {
                if s.v.parse::<IpAddr>().is_err()
                    && let Some(why) = dns_name_problem(&s.v)
                {
                    cx.report(
                        s.at,
                        format!("{} {why}", t.name("server_name")),
                        "write the name the certificate is for, e.g. \"app.example.com\"",
                    );
                }
                s.v
            });
            let warn_days = t
                .int_at(
                    "warn_days",
                    0..=3650,
                    "use a number of days from 0 to 3650, e.g. warn_days = 14",
                )
                .and_then(|a| u32::try_from(a.v).ok())
                .unwrap_or(DEFAULT_WARN_DAYS);
            MonitorCheck::Tls(TlsCheck {
                address: address?,
                server_name,
                warn_days,
            })
        }
        MonitorKind::Dns => MonitorCheck::Dns(read_dns(t)?),
        MonitorKind::Postgres => {
            let secret = t.str_at("url_secret");
            let Some(secret) = secret else {
                t.require(
                    "url_secret",
                    "add url_secret = \"DATABASE_URL\": the variable that holds the connection URL",
                );
                return None;
            };
            check_ident(cx, &secret, "url_secret");
            MonitorCheck::Postgres(PostgresCheck { url_secret: secret.v })
        }
        MonitorKind::Push => MonitorCheck::Push(PushCheck {
            on_silence: t.choice_or("on_silence", OnSilence::Down),
            grace: t.duration_at("grace").map_or(DEFAULT_PUSH_GRACE, |g| {
                t.at_most("grace", g, MAX_GRACE).unwrap_or(DEFAULT_PUSH_GRACE)
            }),
        }),
    };
    if let (Some(budget), Some(timeout)) = (latency_budget, timeout)
        && budget >= timeout
        && let Some((_, at)) = t.entry("latency_budget")
    {
        cx.report(
            at,
            format!(
                "{} is {}, not shorter than the timeout of {}",
                t.name("latency_budget"),
                format_duration(budget),
                format_duration(timeout)
            ),
            "a probe that slow has already timed out: make latency_budget shorter than timeout",
        );
    }
    let environment = environment?;
    Some(MonitorConfig {
        environment: environment.v,
        target: target.unwrap_or_else(|| default_target(kind).to_owned()),
        interval: interval_v,
        timeout,
        retries,
        location,
        latency_budget,
        check,
    })
}

fn default_target(kind: MonitorKind) -> &'static str {
    match kind {
        MonitorKind::Postgres => "database",
        _ => "backend",
    }
}

fn read_address(t: &mut Table<'_>) -> Option<String> {
    let Some(a) = t.str_at("address") else {
        t.require("address", "add address = \"HOST:PORT\", e.g. \"db.internal:5432\"");
        return None;
    };
    if let Err(why) = split_address(&a.v) {
        t.cx().report(
            a.at,
            format!("{} is not host:port: {why}", t.name("address")),
            "write \"HOST:PORT\", e.g. \"db.internal:5432\" or \"[::1]:5432\"",
        );
    }
    Some(a.v)
}

fn read_http(t: &mut Table<'_>) -> Option<HttpCheck> {
    let cx = t.cx();
    let url = t.str_at("url");
    t.require("url", "add url = \"https://…\": the URL this monitor requests");
    if let Some(url) = &url {
        check_url(t, url);
    }
    let method = t.choice_or("method", HttpMethod::Get);
    let mut headers = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in t.scalar_map("headers") {
        let lower = k.v.to_ascii_lowercase();
        if !valid_header_name(&k.v) {
            cx.report(
                k.at,
                format!("header name '{}' in {} is not allowed", k.v, t.name("headers")),
                "use letters, digits and '-', e.g. \"X-Request-Id\"",
            );
        } else if seen.contains(&lower) {
            cx.report(
                k.at,
                format!("header '{}' is set twice in {}", k.v, t.name("headers")),
                "header names ignore case; keep one of them",
            );
        }
        if v.v.chars().any(|c| c.is_control() && c != '\t') {
            cx.report(
                v.at,
                format!("the value of header '{}' holds a control character", k.v),
                "remove line breaks and control characters from the value",
            );
        }
        seen.push(lower);
        headers.insert(k.v, v.v);
    }
    let expect_status = read_statuses(t);
    let body_contains = t.str_at("body_contains").map(|a| {
        if a.v.is_empty() {
            cx.report(
                a.at,
                format!("{} is empty", t.name("body_contains")),
                "give the text the body must contain, or remove the key",
            );
        }
        a.v
    });
    let json_pointer = t.str_at("json_pointer").map(|p| {
        if !(p.v.is_empty() || p.v.starts_with('/')) {
            cx.report(
                p.at,
                format!("{} '{}' does not start with '/'", t.name("json_pointer"), p.v),
                "write a JSON pointer like \"/status\" or \"/checks/0/ok\"",
            );
        }
        p.v
    });
    let equals = t.entry("equals").and_then(|(item, at)| {
        let v = item_to_json(cx, &t.name("equals"), item, at);
        if json_pointer.is_none() {
            cx.report(
                at,
                format!("{} needs json_pointer", t.name("equals")),
                "add json_pointer = \"/status\": the place in the JSON body that must equal this value",
            );
        }
        v
    });
    let max_redirects = t
        .int_at(
            "max_redirects",
            0..=MAX_REDIRECTS,
            "use 0 to not follow redirects, or up to 20",
        )
        .and_then(|a| u32::try_from(a.v).ok())
        .unwrap_or(DEFAULT_MAX_REDIRECTS);
    Some(HttpCheck {
        url: url?.v,
        method,
        headers,
        expect_status,
        body_contains,
        json_pointer,
        equals,
        max_redirects,
    })
}

fn check_url(t: &Table<'_>, url: &At<String>) {
    let cx = t.cx();
    match url::Url::parse(&url.v) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => cx.report(
            url.at,
            format!("{} '{}' is not an http or https URL", t.name("url"), url.v),
            "write a URL that starts with http:// or https://",
        ),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => cx.report(
            url.at,
            format!("{} '{}' has no host", t.name("url"), url.v),
            "write a URL like \"https://app.example.com/healthz\"",
        ),
        Ok(_) => {}
        Err(e) => cx.report(
            url.at,
            format!("{} '{}' is not a URL: {e}", t.name("url"), url.v),
            "write a URL like \"https://app.example.com/healthz\"",
        ),
    }
}

/// `expect_status`: HTTP statuses from 100 to 599, each once.
fn read_statuses(t: &mut Table<'_>) -> Vec<u16> {
    let cx = t.cx();
    let Some((item, at)) = t.entry("expect_status") else {
        return Vec::new();
    };
    let hint = "write a list of HTTP statuses: expect_status = [200, 204]";
    let Some(array) = item.as_array() else {
        t.wrong("expect_status", at, describe(item), "an array of integers", hint);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in array.iter().enumerate() {
        let vat = value_at(v, at);
        let name = format!("{}[{i}]", t.name("expect_status"));
        match v.as_integer() {
            Some(n) if (100..=599).contains(&n) => {
                let n = u16::try_from(n).unwrap_or(0);
                if out.contains(&n) {
                    cx.report(
                        vat,
                        format!("{n} is listed twice in {}", t.name("expect_status")),
                        "remove the repeated entry",
                    );
                } else {
                    out.push(n);
                }
            }
            Some(n) => cx.report(
                vat,
                format!("{name} is {n}, but it must be from 100 to 599"),
                "use an HTTP status, e.g. 200",
            ),
            None => cx.report(
                vat,
                format!("{name} must be an integer, not {}", describe_value(v)),
                hint,
            ),
        }
    }
    if array.is_empty() {
        cx.report(
            at,
            format!("{} is empty", t.name("expect_status")),
            "list the statuses that count as ok, or remove the key (then any status but 5xx is ok)",
        );
    }
    out
}

fn read_dns(t: &mut Table<'_>) -> Option<DnsCheck> {
    let cx = t.cx();
    let name = t.str_at("name");
    if let Some(n) = &name
        && let Some(why) = dns_name_problem(&n.v)
    {
        cx.report(
            n.at,
            format!("{} {why}", t.name("name")),
            "write the name to look up, e.g. \"www.example.com\"",
        );
    }
    let record = t.choice_at::<DnsRecordType>("record");
    let record_known = record.is_some() || !t.has("record");
    let record = record.map_or(DnsRecordType::A, |a| a.v);
    let expect_answer = t.unique_list("expect_answer").unwrap_or_default();
    if record_known {
        for a in &expect_answer {
            let problem = match record {
                DnsRecordType::A => a.v.parse::<std::net::Ipv4Addr>().is_err().then_some("an IPv4 address"),
                DnsRecordType::Aaaa => a.v.parse::<std::net::Ipv6Addr>().is_err().then_some("an IPv6 address"),
                _ => a.v.trim().is_empty().then_some("a value"),
            };
            if let Some(what) = problem {
                cx.report(
                    a.at,
                    format!("'{}' in {} is not {what}", a.v, t.name("expect_answer")),
                    format!("a {record} answer is {what}"),
                );
            }
        }
    }
    let resolver = t.str_at("resolver").and_then(|r| match parse_resolver(&r.v) {
        Some(addr) => Some(addr),
        None => {
            cx.report(
                r.at,
                format!("{} '{}' is not an ip:port", t.name("resolver"), r.v),
                "write an address and a port, e.g. \"127.0.0.1:5353\" or \"[2001:db8::53]:53\"",
            );
            None
        }
    });
    let Some(name) = name else {
        t.require("name", "add name = \"www.example.com\": the name to look up");
        return None;
    };
    Some(DnsCheck {
        name: name.v,
        record,
        expect_answer: expect_answer.into_iter().map(|a| a.v).collect(),
        resolver,
    })
}

/// The default monitor of an environment with a domain, named `ENV-domain`
/// (OPERATIONS.md "Monitors"): `https://DOMAIN` (http:// when the
/// environment does not serve https) + its `[health] path`, expecting its
/// `[health] expect_status`.
pub(crate) fn domain_monitor(
    env_name: &str,
    domain: &str,
    https: bool,
    health: &crate::types::HealthConfig,
) -> (String, MonitorConfig) {
    let scheme = if https { "https" } else { "http" };
    let timeout = health.timeout.min(DEFAULT_MONITOR_INTERVAL / 2);
    (
        format!("{env_name}-domain"),
        MonitorConfig {
            environment: env_name.to_owned(),
            target: "frontend".into(),
            interval: DEFAULT_MONITOR_INTERVAL,
            timeout: Some(timeout),
            retries: DEFAULT_MONITOR_RETRIES,
            location: None,
            latency_budget: None,
            check: MonitorCheck::Http(HttpCheck {
                url: format!("{scheme}://{domain}{}", health.path),
                method: HttpMethod::Get,
                headers: BTreeMap::new(),
                expect_status: vec![health.expect_status],
                body_contains: None,
                json_pointer: None,
                equals: None,
                max_redirects: DEFAULT_MAX_REDIRECTS,
            }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let check = |s: &str, expected: Result<(&str, u16), &str>| {
            assert_eq!(split_address(s), expected.map_err(str::to_owned), "{s}");
        };
        check("db.internal:5432", Ok(("db.internal", 5432)));
        check("127.0.0.1:80", Ok(("127.0.0.1", 80)));
        check("[::1]:443", Ok(("::1", 443)));
        check("db.internal", Err("'db.internal' has no port"));
        check(":80", Err("':80' has no host"));
        check("::1:80", Err("'::1:80' is an IPv6 address without brackets"));
        check("h:0", Err("'h:0' has port '0', not a number from 1 to 65535"));
        check("h:http", Err("'h:http' has port 'http', not a number from 1 to 65535"));
        check("a b:1", Err("'a b:1' has a host that is neither a name nor an address"));
    }

    #[test]
    fn resolvers() {
        let check = |s: &str, expected: Option<&str>| {
            assert_eq!(parse_resolver(s).map(|a| a.to_string()).as_deref(), expected, "{s}");
        };
        check("127.0.0.1:15353", Some("127.0.0.1:15353"));
        check("1.1.1.1", Some("1.1.1.1:53"));
        check("[2001:db8::1]:5353", Some("[2001:db8::1]:5353"));
        check("2001:db8::1", Some("[2001:db8::1]:53"));
        check("dns.example.com:53", None);
        check("", None);
    }

    #[test]
    fn dns_names_and_header_names() {
        let check = |s: &str, ok: bool| assert_eq!(dns_name_problem(s).is_none(), ok, "{s}");
        check("www.example.test", true);
        check("_dmarc.example.com.", true);
        check("localhost", true);
        check("a..b", false);
        check("a b.c", false);
        check("", false);
        for (h, ok) in [
            ("X-Request-Id", true),
            ("Authorization", true),
            ("Bad Header", false),
            ("", false),
        ] {
            assert_eq!(valid_header_name(h), ok, "{h}");
        }
    }

    #[test]
    fn words_read_in_any_case_and_write_canonically() {
        assert_eq!("get".parse::<HttpMethod>().map(HttpMethod::as_str), Ok("GET"));
        assert_eq!(
            "cname".parse::<DnsRecordType>().map(|r| r.to_string()),
            Ok("CNAME".into())
        );
        assert_eq!("NO_DATA".parse::<OnSilence>(), Ok(OnSilence::NoData));
        assert_eq!(
            crate::reader::choice_hint("htp", MonitorKind::NAMES),
            "did you mean 'http'?"
        );
        let err = "ftp".parse::<MonitorKind>().unwrap_err();
        assert_eq!((err.what, err.expected), ("monitor kind", MonitorKind::NAMES));
    }
}
