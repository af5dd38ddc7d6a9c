//! Reads the spanned document section by section into a `Config`, checking
//! what one table can check on its own and noting where names and references
//! are, for the checks that need the whole file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use rollway_model::PropertyType;
use rollway_model::names::{name_too_long, shown};
use rollway_model::rules::validate_domain;
use rollway_model::status::{ArtifactKind, EnvironmentKind, JobType, Platform, SupervisorKind, VariableType};
use rollway_model::time::format_duration;
use toml_edit::{Item, TableLike, Value};

use crate::alerting::{AlertContext, ChannelConfig, read_alert, read_alerting, read_channel};
use crate::backups::read_backup;
use crate::hosts::parse_host;
use crate::logs::read_logs;
use crate::monitor::{MonitorConfig, MonitorContext, read_monitor};

/// The longest an ssh connection may wait to connect or stay silent.
const MAX_SSH_WAIT: Duration = Duration::from_secs(3600);
/// The longest one health probe may take, or wait for the next.
const MAX_PROBE_WAIT: Duration = Duration::from_secs(3600);
/// The longest stability or canary window.
const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// The longest an artifact is kept (10 years).
const MAX_EXPIRE_AFTER: Duration = Duration::from_secs(3650 * 86_400);
/// The longest a pipeline job may run.
const MAX_JOB_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
use crate::reader::{At, Ctx, Table, choice_hint, closest, describe, describe_value, value_at};
use crate::types::{
    BuildConfig, Config, DeployConfig, EnvironmentConfig, HealthConfig, HealthOverrides, HostConfig, HostTarget,
    JobConfig, PRODUCTION_MIN_STABILITY_WINDOW, SecretsConfig, ServiceConfig, ServiceOverrides, SshConfig, StackConfig,
    VariableConfig, VariableFormat, default_expire_after, default_keep_releases, default_timezone,
    default_uptime_target, empty_object,
};

/// Where names and references are, for the whole-file checks.
#[derive(Default)]
pub(crate) struct Marks {
    /// Job name → where its name is.
    pub jobs: BTreeMap<String, usize>,
    pub needs: BTreeMap<String, Vec<At<String>>>,
    /// References to jobs outside `needs`: (where it is written, the name).
    pub job_refs: Vec<(String, At<String>)>,
    /// Stack name → where its name is.
    pub stacks: BTreeMap<String, usize>,
    pub depends_on: BTreeMap<String, Vec<At<String>>>,
    /// (stack, output key), secret or not.
    pub outputs: Vec<(String, At<String>)>,
    /// (stack, command key, command text, the command value's byte range).
    pub commands: Vec<(String, &'static str, String, Range<usize>)>,
}

/// What reading an environment needs from the rest of the file.
struct EnvContext<'c> {
    health: &'c HealthConfig,
    /// Where `[health] stability_window` is written, if it is.
    global_window_at: Option<usize>,
    /// A `[service]` without a `port` key: every host must then name its
    /// port, unless the environment does.
    service_without_port: bool,
    /// `[service]` as read, for the keys an environment overrides.
    service: Option<&'c ServiceConfig>,
    /// Something is shipped to hosts (a build or a service, and a release stack).
    ships: bool,
}

pub(crate) fn read_config(cx: &Ctx<'_>, root: &dyn TableLike, marks: &mut Marks) -> Config {
    let mut t = Table::root(cx, root);
    let project = match t.str_at("project") {
        Some(p) => {
            check_name(
                cx,
                &At {
                    v: p.v.as_str(),
                    at: p.at,
                },
                "project",
            );
            p.v
        }
        None => {
            t.require("project", "add project = \"NAME\" at the top of the file");
            String::new()
        }
    };
    let (health_overrides, global_window_at) = t.section("health", read_health).unwrap_or_default();
    let health = health_overrides.apply(&HealthConfig::default());
    let build = t.section("build", read_build);
    let service = t.section("service", read_service);
    let ssh = t
        .section("ssh", |s| {
            let d = SshConfig::default();
            SshConfig {
                config: s.nonempty_str("config"),
                connect_timeout: s
                    .bounded_duration("connect_timeout", MAX_SSH_WAIT)
                    .unwrap_or(d.connect_timeout),
                alive_interval: s
                    .bounded_duration("alive_interval", MAX_SSH_WAIT)
                    .unwrap_or(d.alive_interval),
                alive_count_max: s
                    .u32_at("alive_count_max", 1, "give at least one probe: alive_count_max = 3")
                    .map_or(d.alive_count_max, |a| a.v),
                persist: s.bool_or("persist", d.persist),
            }
        })
        .unwrap_or_default();
    let secrets = t.section("secrets", read_secrets).unwrap_or_default();
    let variables = t.entries("variables", read_variable);
    const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(600);
    let mut pre_migration_backup = None;
    let deploy = t
        .section("deploy", |d| {
            let jobs = d.unique_list("jobs").unwrap_or_default();
            marks
                .job_refs
                .extend(jobs.iter().map(|j| ("deploy.jobs".to_owned(), j.clone())));
            pre_migration_backup = d.str_at("pre_migration_backup");
            DeployConfig {
                jobs: jobs.into_iter().map(|a| a.v).collect(),
                before_switch: d.plain_list("before_switch"),
                after_switch: d.plain_list("after_switch"),
                hook_timeout: d
                    .bounded_duration("hook_timeout", MAX_JOB_TIMEOUT)
                    .unwrap_or(DEFAULT_HOOK_TIMEOUT),
                pre_migration_backup: pre_migration_backup.as_ref().map(|b| b.v.clone()),
            }
        })
        .unwrap_or_default();
    let stacks = t.entries("stacks", |name, s| read_stack(name, s, marks));
    let release_stack = stacks.is_empty() || stacks.values().any(StackConfig::is_release);
    let env_cx = EnvContext {
        health: &health,
        global_window_at,
        service_without_port: service
            .as_ref()
            .is_some_and(|(s, written)| s.port.is_none() && !written),
        service: service.as_ref().map(|(s, _)| s),
        ships: (build.is_some() || service.is_some()) && release_stack,
    };
    let environments = t.entries("environments", |name, e| read_environment(name, e, &env_cx, marks));
    let jobs = t.entries("jobs", |name, j| read_job(name, j, marks));
    let monitor_cx = MonitorContext {
        environments: environments.keys().map(String::as_str).collect(),
    };
    let monitors: BTreeMap<String, MonitorConfig> = t
        .entries("monitors", |name, m| read_monitor(name, m, &monitor_cx))
        .into_iter()
        .filter_map(|(name, m)| Some((name, m?)))
        .collect();
    let notify: BTreeMap<String, ChannelConfig> = t
        .entries("notify", read_channel)
        .into_iter()
        .filter_map(|(name, c)| Some((name, c?)))
        .collect();
    let channels: Vec<&str> = notify.keys().map(String::as_str).collect();
    let alerting = t
        .section("alerting", |a| read_alerting(a, &channels))
        .unwrap_or_default();
    let alerts = {
        let all_monitors: Vec<(String, String)> = monitors
            .iter()
            .map(|(n, m)| (n.clone(), m.environment.clone()))
            .chain(
                environments
                    .iter()
                    .filter(|(n, e)| e.domain.is_some() && !monitors.contains_key(&format!("{n}-domain")))
                    .map(|(n, _)| (format!("{n}-domain"), n.clone())),
            )
            .collect();
        let acx = AlertContext {
            environments: environments.keys().map(String::as_str).collect(),
            monitors: all_monitors.iter().map(|(n, e)| (n.as_str(), e.as_str())).collect(),
            hosts: environments.iter().map(|(n, e)| (n.as_str(), host_names(e))).collect(),
            channels,
            alerting: &alerting,
        };
        t.entries("alerts", |name, a| read_alert(name, a, &acx))
            .into_iter()
            .filter_map(|(name, a)| Some((name, a?)))
            .collect()
    };
    let logs = t.section("logs", read_logs).unwrap_or_default();
    let backups: BTreeMap<String, crate::BackupConfig> = {
        let names: Vec<&str> = environments.keys().map(String::as_str).collect();
        t.entries("backups", |name, b| read_backup(name, b, &names))
            .into_iter()
            .filter_map(|(name, b)| Some((name, b?)))
            .collect()
    };
    if let Some(b) = &pre_migration_backup {
        match backups.get(&b.v) {
            None => t.cx().report(
                b.at,
                format!("deploy.pre_migration_backup '{}' is not a [backups.NAME]", b.v),
                match closest(&b.v, backups.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean '{c}'?"),
                    None => format!("define [backups.{}] of kind \"database\"", b.v),
                },
            ),
            Some(def) if def.kind != rollway_model::BackupKind::Database => t.cx().report(
                b.at,
                format!(
                    "deploy.pre_migration_backup '{}' is a {} backup, not a database one",
                    b.v, def.kind
                ),
                "name a [backups.NAME] with kind = \"database\"",
            ),
            Some(_) => {}
        }
    }
    t.finish();
    Config {
        project,
        build,
        service: service.map(|(s, _)| s),
        health,
        ssh,
        secrets,
        variables,
        deploy,
        environments,
        jobs,
        stacks,
        monitors,
        notify,
        alerting,
        alerts,
        logs,
        backups,
    }
}

/// How alert rules may name an environment's hosts: as written
/// (`deploy@app1.example.com:2222`, `local`) or by the bare ssh host name.
fn host_names(e: &EnvironmentConfig) -> Vec<String> {
    e.hosts
        .iter()
        .flat_map(|h| {
            let bare = match &h.target {
                HostTarget::Ssh(d) => Some(d.host.clone()),
                HostTarget::Local => None,
            };
            std::iter::once(h.to_string()).chain(bare)
        })
        .collect()
}

const NAME_HINT: &str = "use letters, digits, '-', '_' and '.', starting with a letter or digit";
const IDENT_HINT: &str = "use letters, digits and '_', not starting with a digit";

/// Names of projects, environments, jobs and stacks end up in file names and units.
pub(crate) fn valid_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An environment variable name.
pub(crate) fn valid_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn check_name(cx: &Ctx<'_>, name: &At<&str>, what: &str) {
    if let Some(why) = name_too_long(name.v) {
        cx.report(
            name.at,
            format!("{what} name '{}' {why}", shown(name.v)),
            "use a shorter name",
        );
    } else if !valid_name(name.v) {
        cx.report(
            name.at,
            format!("{what} name '{}' is not allowed", shown(name.v)),
            NAME_HINT,
        );
    }
}

pub(crate) fn check_ident(cx: &Ctx<'_>, name: &At<String>, what: &str) {
    if let Some(why) = name_too_long(&name.v) {
        cx.report(
            name.at,
            format!("{what} '{}' {why}", shown(&name.v)),
            "use a shorter name",
        );
    } else if !valid_ident(&name.v) {
        cx.report(
            name.at,
            format!("{what} '{}' is not a valid environment variable name", shown(&name.v)),
            IDENT_HINT,
        );
    }
}

/// The `[health]` keys, in `[health]` or overriding it in an environment;
/// also where `stability_window` is written.
fn read_health(t: &mut Table<'_>) -> (HealthOverrides, Option<usize>) {
    let path = t.str_at("path");
    if let Some(p) = &path
        && !p.v.starts_with('/')
    {
        t.cx().report(
            p.at,
            format!("{} '{}' does not start with '/'", t.name("path"), p.v),
            "write an absolute path, e.g. \"/healthz\"",
        );
    }
    let expect_status = t
        .int_at(
            "expect_status",
            100..=599,
            "use an HTTP status from 100 to 599, e.g. 200",
        )
        .and_then(|a| u16::try_from(a.v).ok());
    let timeout = t.bounded_duration("timeout", MAX_PROBE_WAIT);
    let interval = t.bounded_duration("interval", MAX_PROBE_WAIT);
    let retries = t.u32_at("retries", 1, "make at least one attempt: retries = 1 or more");
    let window_failures = t.u32_at(
        "window_failures",
        1,
        "fail the window after at least one failed probe: window_failures = 1 or more",
    );
    let window = t.duration_at("stability_window").and_then(|w| {
        let at = w.at;
        t.at_most("stability_window", w, MAX_WINDOW).map(|v| At { v, at })
    });
    let window_at = window.as_ref().map(|w| w.at);
    (
        HealthOverrides {
            path: path.map(|a| a.v),
            expect_status,
            timeout,
            interval,
            retries: retries.map(|a| a.v),
            window_failures: window_failures.map(|a| a.v),
            stability_window: window.map(|a| a.v),
        },
        window_at,
    )
}

fn read_build(t: &mut Table<'_>) -> BuildConfig {
    let command = t.nonempty_str("command");
    let output = t.nonempty_str("output");
    t.require(
        "output",
        "add output = \"dist\": the file or directory that becomes the artifact",
    );
    let kind = t.choice_or("kind", ArtifactKind::App);
    let aliases = t.unique_list("aliases").map(|list| {
        for a in &list {
            if a.v.is_empty() {
                t.cx().report(
                    a.at,
                    format!("{} holds an empty alias", t.name("aliases")),
                    "remove the empty entry",
                );
            }
        }
        list.into_iter().map(|a| a.v).collect()
    });
    let expire_after = t
        .bounded_duration("expire_after", MAX_EXPIRE_AFTER)
        .unwrap_or_else(default_expire_after);
    BuildConfig {
        command,
        output: output.unwrap_or_default(),
        kind,
        aliases,
        expire_after,
    }
}

/// The service, and whether a `port` key is written (even a wrong one).
fn read_service(t: &mut Table<'_>) -> (ServiceConfig, bool) {
    let cx = t.cx();
    let start = t.nonempty_str("start");
    let port = t.port("port");
    let port_written = t.has("port");
    let supervisor = t.choice_at::<SupervisorKind>("supervisor");
    let kind = supervisor.as_ref().map_or(SupervisorKind::Rollway, |a| a.v);
    let shared = t.unique_list("shared").unwrap_or_default();
    for s in &shared {
        let bad = s.v.is_empty() || s.v.starts_with('/') || s.v.split('/').any(|part| part == ".." || part == ".");
        if bad {
            cx.report(
                s.at,
                format!("shared directory '{}' is not a plain relative path", s.v),
                "name a directory inside the release, e.g. \"uploads\" or \"storage/logs\"",
            );
        }
    }
    let only_for = |key: &'static str, wanted: SupervisorKind, t: &mut Table<'_>| -> Option<String> {
        let v = t.str_at(key)?;
        // A wrong supervisor value is reported once, at the value; do not pile on.
        if (supervisor.is_some() || !t.has("supervisor")) && kind != wanted {
            cx.report(
                v.at,
                format!(
                    "{} applies only to supervisor = \"{wanted}\", not \"{kind}\"",
                    t.name(key)
                ),
                format!("remove {key}, or set supervisor = \"{wanted}\""),
            );
        }
        Some(v.v)
    };
    let supervisord_conf = only_for("supervisord_conf", SupervisorKind::Supervisord, t);
    let supervisorctl = only_for("supervisorctl", SupervisorKind::Supervisord, t);
    let restart = only_for("restart", SupervisorKind::Command, t);
    let restarts = only_for("restarts", SupervisorKind::Command, t);
    if kind == SupervisorKind::Command {
        t.require(
            "restart",
            "add restart = \"COMMAND\": how supervisor = \"command\" restarts the service",
        );
        t.require(
            "restarts",
            "add restarts = \"COMMAND\": it prints the service's restart count",
        );
    } else if supervisor.is_some() || !t.has("supervisor") {
        t.require(
            "start",
            "add start = \"COMMAND\": it starts the service in the release directory",
        );
    }
    (
        ServiceConfig {
            start,
            port,
            supervisor: kind,
            shared: shared.into_iter().map(|a| a.v).collect(),
            supervisord_conf,
            supervisorctl,
            restart,
            restarts,
        },
        port_written,
    )
}

fn read_secrets(t: &mut Table<'_>) -> SecretsConfig {
    let dir = t.nonempty_str("dir");
    let recipients = t.unique_list("recipients").unwrap_or_default();
    for r in &recipients {
        let ok = r.v.starts_with("age1") && !r.v.contains(char::is_whitespace)
            || ["ssh-ed25519 ", "ssh-rsa "].iter().any(|p| r.v.starts_with(p));
        if !ok {
            t.cx().report(
                r.at,
                format!("recipient '{}' is neither an age recipient nor an ssh public key", r.v),
                "use an \"age1…\" recipient (rollway secrets init prints yours) or an \"ssh-ed25519 AAAA…\" key",
            );
        }
    }
    SecretsConfig {
        dir: dir.unwrap_or_else(|| "secrets".into()),
        recipients: recipients.into_iter().map(|a| a.v).collect(),
    }
}

fn read_variable(name: At<&str>, t: &mut Table<'_>) -> VariableConfig {
    let cx = t.cx();
    check_ident(
        cx,
        &At {
            v: name.v.to_owned(),
            at: name.at,
        },
        "variable name",
    );
    let var_type = t.choice_at::<VariableType>("type");
    let type_known = var_type.is_some() || !t.has("type");
    let var_type = var_type.map_or(VariableType::String, |a| a.v);
    let scheme = t.str_at("scheme");
    if let Some(s) = &scheme {
        let valid = s.v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            cx.report(
                s.at,
                format!("{} '{}' is not a URL scheme", t.name("scheme"), s.v),
                "write only the scheme, e.g. \"postgres\" or \"https\"",
            );
        } else if type_known && var_type != VariableType::Url {
            cx.report(
                s.at,
                format!(
                    "{} applies only to url variables, but {} has type \"{var_type}\"",
                    t.name("scheme"),
                    name.v
                ),
                "set type = \"url\", or remove scheme",
            );
        }
    }
    let format = t.str_at("format").and_then(|f| match VariableFormat::parse(&f.v) {
        Ok(format) => Some(format),
        Err(e) => {
            cx.report(
                f.at,
                format!("invalid format for {}: {e}", t.name("format")),
                "write a regex, or a preset: uuid, hex:N, base64:N",
            );
            None
        }
    });
    let secret = t.bool_or("secret", true);
    let mut required_for = Vec::new();
    for k in t.unique_list("required_for").unwrap_or_default() {
        match k.v.parse::<EnvironmentKind>() {
            Ok(kind) => required_for.push(kind),
            Err(e) => cx.report(
                k.at,
                format!("unknown environment kind '{}' in {}", k.v, t.name("required_for")),
                choice_hint(&k.v, e.expected),
            ),
        }
    }
    VariableConfig {
        var_type,
        scheme: scheme.map(|a| a.v),
        format,
        secret,
        required_for,
    }
}

fn read_environment(name: At<&str>, t: &mut Table<'_>, env: &EnvContext<'_>, marks: &mut Marks) -> EnvironmentConfig {
    let cx = t.cx();
    check_name(cx, &name, "environment");
    let kind = t.choice_at::<EnvironmentKind>("kind");
    if kind.is_none() {
        t.require(
            "kind",
            "add kind = \"development\", \"test\", \"staging\" or \"production\"",
        );
    }
    let kind = kind.map(|a| a.v);
    let hosts = read_hosts(t);
    let root = t.nonempty_str("root");
    let domain = t.str_at("domain");
    if let Some(d) = &domain
        && let Some(why) = validate_domain(&d.v)
    {
        cx.report(
            d.at,
            format!("{} is not a valid domain: {why}", t.name("domain")),
            "write a fully qualified name like api.example.com",
        );
    }
    let https = t.bool_at("https");
    let timezone = t.str_at("timezone").map_or_else(default_timezone, |z| {
        if let Err(e) = jiff::tz::TimeZone::get(&z.v) {
            cx.report(
                z.at,
                format!("{} '{}' is not a known time zone: {e}", t.name("timezone"), z.v),
                "write an IANA name such as \"Europe/Berlin\" or \"UTC\" (see /usr/share/zoneinfo)",
            );
        }
        z.v
    });
    let uptime_target = t
        .number_at(
            "uptime_target",
            0.0,
            100.0,
            "write a percentage above 0 and at most 100, e.g. uptime_target = 99.5",
        )
        .map_or_else(default_uptime_target, |a| a.v);
    let platform = t.choice_or("platform", Platform::SelfHosted);
    let app = t.nonempty_str("app");
    let nginx_config = t.nonempty_str("nginx_config");
    let config = t.json("config").unwrap_or_else(empty_object);
    let keep_releases = t.u32_or(
        "keep_releases",
        1,
        default_keep_releases(),
        "keep at least the current release: keep_releases = 1 or more",
    );
    let canary = t.u32_at("canary", 0, "use 0 for no canary wave, or the number of canary hosts");
    let canary_window = t
        .duration_at("canary_window")
        .and_then(|w| t.at_most("canary_window", w, MAX_WINDOW))
        .unwrap_or(Duration::ZERO);
    let parallel = t
        .u32_at(
            "parallel",
            1,
            "deploy at least one host at a time: parallel = 1 or more",
        )
        .map(|a| a.v);
    let required_vars = t.unique_list("required_vars").unwrap_or_default();
    for v in &required_vars {
        check_ident(cx, v, "required variable");
    }
    let required_tags = t.plain_list("required_tags");
    let mut vars = BTreeMap::new();
    for (k, v) in t.scalar_map("vars") {
        check_ident(cx, &k, "variable");
        vars.insert(k.v, v.v);
    }
    let sync = t.nonempty_str("sync");
    let jobs = t.unique_list("jobs").map(|list| {
        let place = t.name("jobs");
        marks.job_refs.extend(list.iter().map(|j| (place.clone(), j.clone())));
        list.into_iter().map(|a| a.v).collect::<Vec<_>>()
    });
    let (health_overrides, window_at) = read_health(t);
    let service_overrides = read_service_overrides(t, env);

    if kind == Some(EnvironmentKind::Production) {
        match &https {
            Some(At { v: false, at }) => cx.report(
                *at,
                format!("production environment '{}' has https = false", name.v),
                "set https = true; a production environment must serve https",
            ),
            None if !t.has("https") => cx.report(
                t.at,
                format!("production environment '{}' does not set https", name.v),
                "add https = true; a production environment must serve https",
            ),
            _ => {}
        }
        let window = health_overrides.stability_window.unwrap_or(env.health.stability_window);
        if window < PRODUCTION_MIN_STABILITY_WINDOW {
            let (at, hint) = match window_at {
                Some(at) => (Some(at), "set stability_window = \"30m\" or longer".to_owned()),
                None => (
                    env.global_window_at,
                    format!(
                        "set stability_window = \"30m\" or longer in [environments.{}], or raise [health] stability_window",
                        name.v
                    ),
                ),
            };
            cx.report(
                at.unwrap_or(t.at),
                format!(
                    "production environment '{}' has a stability window of {}, shorter than the production minimum of 30m",
                    name.v,
                    format_duration(window)
                ),
                hint,
            );
        }
    }

    if let Some(c) = &canary
        && !hosts.is_empty()
        && c.v as usize > hosts.len()
    {
        cx.report(
            c.at,
            format!(
                "{} is {}, but the environment has {} host(s)",
                t.name("canary"),
                c.v,
                hosts.len()
            ),
            format!("set canary to at most {}", hosts.len()),
        );
    }
    check_hosts(t, &hosts, root.as_deref(), env, platform, t.has("port"));

    EnvironmentConfig {
        kind: kind.unwrap_or(EnvironmentKind::Development),
        hosts: hosts.into_iter().map(|h| h.v).collect(),
        root,
        domain: domain.map(|a| a.v),
        https: https.is_some_and(|a| a.v),
        timezone,
        uptime_target,
        platform,
        app,
        nginx_config,
        config,
        keep_releases,
        canary: canary.map_or(0, |a| a.v),
        canary_window,
        parallel,
        required_vars: required_vars.into_iter().map(|a| a.v).collect(),
        required_tags,
        vars,
        sync,
        jobs,
        health_overrides,
        service_overrides,
    }
}

/// The `[service]` keys an environment overrides, checked against the
/// environment's effective supervisor: keys of another supervisor are
/// refused, and the keys that supervisor needs must be set here or in
/// `[service]`.
fn read_service_overrides(t: &mut Table<'_>, env: &EnvContext<'_>) -> ServiceOverrides {
    let cx = t.cx();
    let start = t.nonempty_str("start");
    let port = t.port("port");
    let supervisor = t.choice_at::<SupervisorKind>("supervisor");
    let global = env.service;
    let kind = supervisor
        .as_ref()
        .map(|a| a.v)
        .or(global.map(|g| g.supervisor))
        .unwrap_or(SupervisorKind::Rollway);
    // A wrong supervisor value is reported once, at the value; do not pile on.
    let kind_known = supervisor.is_some() || !t.has("supervisor");
    let only_for = |key: &'static str, wanted: SupervisorKind, t: &mut Table<'_>| -> Option<String> {
        let v = t.str_at(key)?;
        if kind_known && kind != wanted {
            cx.report(
                v.at,
                format!(
                    "{} applies only to supervisor = \"{wanted}\", but this environment's supervisor is \"{kind}\"",
                    t.name(key)
                ),
                format!("remove {key}, or set supervisor = \"{wanted}\" in this environment"),
            );
        }
        Some(v.v)
    };
    let supervisord_conf = only_for("supervisord_conf", SupervisorKind::Supervisord, t);
    let supervisorctl = only_for("supervisorctl", SupervisorKind::Supervisord, t);
    let restart = only_for("restart", SupervisorKind::Command, t);
    let restarts = only_for("restarts", SupervisorKind::Command, t);
    // What [service] already requires is reported there; here only what
    // this environment's own choice of supervisor adds.
    if kind_known && (supervisor.is_some() || t.has("start")) {
        let has = |key: &str, own: bool, theirs: Option<&Option<String>>| {
            own || t.has(key) || theirs.is_some_and(Option::is_some)
        };
        let missing = |key: &str, hint: &str| {
            cx.report(
                t.at,
                format!("missing key '{key}' in [{}] (or in [service])", t.path()),
                hint,
            );
        };
        if kind == SupervisorKind::Command {
            if !has("restart", restart.is_some(), global.map(|g| &g.restart)) {
                missing(
                    "restart",
                    "add restart = \"COMMAND\": how supervisor = \"command\" restarts the service",
                );
            }
            if !has("restarts", restarts.is_some(), global.map(|g| &g.restarts)) {
                missing(
                    "restarts",
                    "add restarts = \"COMMAND\": it prints the service's restart count",
                );
            }
        } else if !has("start", start.is_some(), global.map(|g| &g.start)) {
            missing(
                "start",
                "add start = \"COMMAND\": it starts the service in the release directory",
            );
        }
    }
    ServiceOverrides {
        start,
        port,
        supervisor: supervisor.map(|a| a.v),
        supervisord_conf,
        supervisorctl,
        restart,
        restarts,
    }
}

/// Duplicates, and hosts that lack a root or a port.
fn check_hosts(
    t: &Table<'_>,
    hosts: &[At<HostConfig>],
    root: Option<&str>,
    env: &EnvContext<'_>,
    platform: Platform,
    env_port: bool,
) {
    let cx = t.cx();
    let mut seen: Vec<(HostTarget, Option<&str>)> = Vec::new();
    for h in hosts {
        let target = match &h.v.target {
            HostTarget::Ssh(d) => {
                let mut d = d.clone();
                d.host = d.host.to_ascii_lowercase();
                HostTarget::Ssh(d)
            }
            HostTarget::Local => HostTarget::Local,
        };
        let key = (target, h.v.root.as_deref().or(root));
        if seen.contains(&key) {
            cx.report(
                h.at,
                format!("host '{}' is listed twice in {}", h.v, t.name("hosts")),
                "remove the repeated entry, or give each its own root in a host table",
            );
        } else {
            seen.push(key);
        }
    }
    if root.is_none() && !t.has("root") && hosts.iter().any(|h| h.v.root.is_none()) {
        cx.report(
            t.at,
            format!("{} has hosts but no release root", t.path()),
            "add root = \"/srv/APP\" (or root in each host's table)",
        );
    }
    if env.service_without_port && !env_port && hosts.iter().any(|h| h.v.port.is_none()) {
        cx.report(
            t.at,
            format!("the hosts of {} have no service port", t.path()),
            "set port in [service] or in this environment, or port in each host's table",
        );
    }
    if env.ships && platform == Platform::SelfHosted && !t.has("hosts") {
        cx.report(
            t.at,
            format!("{} is self-hosted but has no hosts", t.path()),
            "add hosts = [\"local\"] or ssh destinations like \"deploy@app1.example.com\"",
        );
    }
}

fn read_hosts(t: &mut Table<'_>) -> Vec<At<HostConfig>> {
    let mut out = Vec::new();
    let Some((item, at)) = t.entry("hosts") else {
        return out;
    };
    let cx = t.cx();
    let path = t.name("hosts");
    let string_hint = "write \"local\", \"user@host\" or \"user@host:port\"";
    match item {
        Item::Value(Value::Array(array)) => {
            for (i, v) in array.iter().enumerate() {
                let vat = value_at(v, at);
                match v {
                    Value::String(s) => match parse_host(s.value()) {
                        Ok(target) => out.push(At {
                            v: HostConfig { target, root: None, port: None },
                            at: vat,
                        }),
                        Err(e) => cx.report(vat, format!("{path}[{i}] is not a host: {e}"), string_hint),
                    },
                    Value::InlineTable(table) => {
                        let mut ht = Table::nested(cx, table, format!("{path}[{i}]"), vat, true);
                        if let Some(h) = read_host_table(&mut ht) {
                            out.push(At { v: h, at: vat });
                        }
                        ht.finish();
                    }
                    other => cx.report(
                        vat,
                        format!("{path}[{i}] must be a string or a table, not {}", describe_value(other)),
                        "write \"local\", \"user@host:port\" or { ssh = \"user@host:port\", root = \"…\", port = 3001 }",
                    ),
                }
            }
        }
        Item::ArrayOfTables(tables) => {
            for (i, table) in tables.iter().enumerate() {
                let tat = table.span().map_or(at, |r| r.start);
                let mut ht = Table::nested(cx, table, format!("{path}[{i}]"), tat, false);
                if let Some(h) = read_host_table(&mut ht) {
                    out.push(At { v: h, at: tat });
                }
                ht.finish();
            }
        }
        other => t.wrong(
            "hosts",
            at,
            describe(other),
            "an array",
            "write hosts = [\"local\"] or hosts = [\"deploy@app1.example.com\"]",
        ),
    }
    out
}

fn read_host_table(t: &mut Table<'_>) -> Option<HostConfig> {
    let cx = t.cx();
    let ssh = t.str_at("ssh");
    let local = t.bool_at("local");
    let root = t.nonempty_str("root");
    let port = t.port("port");
    let target = match (ssh, local) {
        (Some(s), Some(At { v: true, at })) => {
            cx.report(
                at,
                format!("{} sets both ssh = \"{}\" and local = true", t.path(), s.v),
                "keep one of them",
            );
            return None;
        }
        (Some(s), _) => match parse_host(&s.v) {
            Ok(target) => target,
            Err(e) => {
                cx.report(
                    s.at,
                    format!("{} is not an ssh destination: {e}", t.name("ssh")),
                    "write \"user@host\" or \"user@host:port\"",
                );
                return None;
            }
        },
        (None, Some(At { v: true, .. })) => HostTarget::Local,
        (None, _) => {
            if !t.has("ssh") && !t.has("local") {
                cx.report(
                    t.at,
                    format!("{} names no host", t.path()),
                    "add ssh = \"user@host:port\", or local = true for this machine",
                );
            }
            return None;
        }
    };
    Some(HostConfig { target, root, port })
}

fn read_job(name: At<&str>, t: &mut Table<'_>, marks: &mut Marks) -> JobConfig {
    let cx = t.cx();
    check_name(cx, &name, "job");
    marks.jobs.insert(name.v.to_owned(), name.at);
    let job_type = t.choice_or("type", JobType::Custom);
    let run = t.nonempty_str("run");
    t.require(
        "run",
        "add run = \"COMMAND\"; it runs with sh -c in the directory of rollway.toml",
    );
    let needs = t.unique_list("needs").unwrap_or_default();
    marks.needs.insert(name.v.to_owned(), needs.clone());
    let timeout = t.bounded_duration("timeout", MAX_JOB_TIMEOUT);
    let mut env = BTreeMap::new();
    for (k, v) in t.scalar_map("env") {
        check_ident(cx, &k, "env name");
        env.insert(k.v, v.v);
    }
    let artifacts = t.unique_list("artifacts").unwrap_or_default();
    for a in &artifacts {
        if a.v.trim().is_empty() {
            cx.report(
                a.at,
                format!("{} holds an empty path", t.name("artifacts")),
                "remove the empty entry",
            );
        }
    }
    JobConfig {
        job_type,
        run: run.unwrap_or_default(),
        needs: needs.into_iter().map(|a| a.v).collect(),
        timeout,
        env,
        artifacts: artifacts.into_iter().map(|a| a.v).collect(),
    }
}

fn read_stack(name: At<&str>, t: &mut Table<'_>, marks: &mut Marks) -> StackConfig {
    let cx = t.cx();
    check_name(cx, &name, "stack");
    marks.stacks.insert(name.v.to_owned(), name.at);
    let mut command = |key: &'static str, t: &mut Table<'_>| -> Option<String> {
        let (item, _) = t.entry(key)?;
        let range = item.span();
        let s = t.nonempty_str(key)?;
        if let Some(range) = range {
            marks.commands.push((name.v.to_owned(), key, s.clone(), range));
        }
        Some(s)
    };
    let synth = command("synth", t);
    let validate = command("validate", t);
    let deploy = command("deploy", t);
    let verify = command("verify", t);
    let rollback = command("rollback", t);
    let depends_on = t.unique_list("depends_on").unwrap_or_default();
    marks.depends_on.insert(name.v.to_owned(), depends_on.clone());
    let outputs = t.unique_list("outputs").unwrap_or_default();
    let secret_outputs = t.unique_list("secret_outputs").unwrap_or_default();
    for s in &secret_outputs {
        if outputs.iter().any(|o| o.v == s.v) {
            cx.report(
                s.at,
                format!(
                    "output '{}' of stack '{}' is in both outputs and secret_outputs",
                    s.v, name.v
                ),
                "keep it in one list: secret_outputs if it must be masked",
            );
        }
    }
    for o in outputs.iter().chain(&secret_outputs) {
        if o.v.trim().is_empty() {
            cx.report(
                o.at,
                format!("stack '{}' declares an empty output name", name.v),
                "remove the empty entry",
            );
        }
        marks.outputs.push((name.v.to_owned(), o.clone()));
    }
    let required_properties = t.plain_list("required_properties");
    let properties = match t.json("properties") {
        Some(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let mut property_types = BTreeMap::new();
    for (key, ty) in t.scalar_map("property_types") {
        if PropertyType::NAMES.contains(&ty.v.as_str()) {
            property_types.insert(key.v, ty.v);
        } else {
            cx.report(
                ty.at,
                format!(
                    "property type '{}' of {} in stack '{}' is not a JSON type",
                    ty.v, key.v, name.v
                ),
                format!("use one of {}", PropertyType::NAMES.join(", ")),
            );
        }
    }
    StackConfig {
        synth,
        validate,
        deploy,
        verify,
        rollback,
        depends_on: depends_on.into_iter().map(|a| a.v).collect(),
        outputs: outputs.into_iter().map(|a| a.v).collect(),
        secret_outputs: secret_outputs.into_iter().map(|a| a.v).collect(),
        required_properties,
        properties,
        property_types,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_identifiers() {
        for (s, name, ident) in [
            ("production", true, true),
            ("prod-backend", true, false),
            ("v1.2", true, false),
            ("DATABASE_URL", true, true),
            ("_PRIVATE", false, true),
            ("9LIVES", true, false),
            ("", false, false),
            ("a b", false, false),
            ("../x", false, false),
        ] {
            assert_eq!(valid_name(s), name, "name {s:?}");
            assert_eq!(valid_ident(s), ident, "ident {s:?}");
        }
    }
}
