//! rollway.toml checking: each case is a config text and the exact diagnostic
//! lines it must give (none for a valid config).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rollway_config::{Config, HostTarget, VariableFormat, parse, template};
use rollway_model::status::{EnvironmentKind, Platform, SupervisorKind};

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

fn valid(toml: &str) -> Config {
    check(toml, "").unwrap()
}

#[test]
fn the_template_passes() {
    let config = valid(&template());
    assert_eq!(config.environments["staging"].kind, EnvironmentKind::Staging);
    assert_eq!(config.environments["staging"].hosts[0].target, HostTarget::Local);
    assert_eq!(config.environments["staging"].root.as_deref(), Some("srv/staging"));
    let prod = &config.environments["production"];
    assert_eq!(prod.kind, EnvironmentKind::Production);
    assert!(prod.https);
    assert_eq!(prod.domain.as_deref(), Some("app.example.com"));
    assert!(matches!(prod.hosts[0].target, HostTarget::Ssh(_)));
    assert_eq!(prod.health(&config.health).stability_window, Duration::from_secs(1800));
    assert_eq!(
        config.environments["staging"].health(&config.health).stability_window,
        Duration::from_secs(60)
    );
}

#[test]
fn the_templates_commented_examples_are_valid_too() {
    // Uncomment every line that is commented-out TOML ("# [x]" or "# key = …").
    let uncommented: String = template()
        .lines()
        .map(|l| {
            let body = l.strip_prefix("# ").unwrap_or(l);
            let is_toml = body.starts_with('[')
                || body
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if l.starts_with("# ") && is_toml { body } else { l }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(uncommented, template(), "the template has commented examples");
    let config = valid(&uncommented);
    assert_eq!(config.deploy.jobs, ["test"]);
    assert!(config.variables.contains_key("DATABASE_URL"));
}

/// The acceptance case of issue 2: six problems, six lines, each where it is.
#[test]
fn six_problems_give_six_diagnostics() {
    check(
        r#"project = "hello"
colour = "blue"

[health]
retries = "many"

[environments.production]
kind = "production"
hosts = ["local"]
root = "/srv/hello"
domain = "not a domain"
https = false

[environments.qa]
kind = "quality"
hosts = ["local"]
root = ".rollway/qa"

[jobs.a]
run = "true"
needs = ["b"]

[jobs.b]
run = "true"
needs = ["a"]
"#,
        "
        rollway.toml:2:1: unknown key 'colour' at the top level — remove it; the keys allowed here are project, health, build, service, ssh, secrets, variables, deploy, stacks, environments, jobs, monitors, notify, alerting, alerts, logs, backups
        rollway.toml:5:11: health.retries must be an integer, not a string — write a whole number without quotes, e.g. retries = 1
        rollway.toml:11:10: environments.production.domain is not a valid domain: 'not a domain' has no dot; a domain needs at least two labels like example.com — write a fully qualified name like api.example.com
        rollway.toml:12:9: production environment 'production' has https = false — set https = true; a production environment must serve https
        rollway.toml:15:8: unknown environment kind 'quality' for environments.qa.kind — use one of: development, test, staging, production
        rollway.toml:21:10: needs cycle: a → b → a — remove one of these needs so the jobs can run in order
        ",
    );
}

#[test]
fn a_wrong_type_does_not_hide_other_errors() {
    check(
        r#"project = 7
[health]
timeout = 5
interval = "1x"
expect_status = 700
path = "healthz"
[service]
start = "node server.js"
port = 70000
supervisor = "upstart"
[environments.staging]
kind = "staging"
hosts = "local"
root = ".rollway/staging"
https = "yes"
keep_releases = 0
"#,
        r#"
        rollway.toml:1:11: project must be a string, not an integer — put the value in double quotes: project = "…"
        rollway.toml:3:11: health.timeout must be a duration string, not an integer — write a number and a unit in quotes, e.g. "500ms", "5s", "30m", "1h30m" or "90d"
        rollway.toml:4:12: invalid duration for health.interval: '1x' has an unknown unit 'x' (use ms, s, m, h, d, w) — write a number and a unit in quotes, e.g. "500ms", "5s", "30m", "1h30m" or "90d"
        rollway.toml:5:17: health.expect_status is 700, but it must be from 100 to 599 — use an HTTP status from 100 to 599, e.g. 200
        rollway.toml:6:8: health.path 'healthz' does not start with '/' — write an absolute path, e.g. "/healthz"
        rollway.toml:9:8: service.port is 70000, but it must be from 1 to 65535 — use a port from 1 to 65535
        rollway.toml:10:14: unknown supervisor 'upstart' for service.supervisor — use one of: rollway, supervisord, systemd, command
        rollway.toml:13:9: environments.staging.hosts must be an array, not a string — write hosts = ["local"] or hosts = ["deploy@app1.example.com"]
        rollway.toml:15:9: environments.staging.https must be a boolean, not a string — write true or false without quotes: https = true
        rollway.toml:16:17: environments.staging.keep_releases is 0, but it must be at least 1 — keep at least the current release: keep_releases = 1 or more
        "#,
    );
}

#[test]
fn a_syntax_error_is_one_diagnostic_at_its_position() {
    check(
        "project = \"x\"\n[build]\ncommand = \n",
        "rollway.toml:3:11: invalid TOML: string values must be quoted, expected literal string — fix the TOML syntax here; strings need double quotes, tables are [name]",
    );
    check(
        "project = \"x\"\nproject = \"y\"\n",
        "rollway.toml:2:1: invalid TOML: duplicate key — each key may appear once in a table; remove or rename the repeated one",
    );
}

#[test]
fn missing_required_keys_are_reported_at_the_table() {
    check(
        r#"[build]
command = "make"

[environments.x]
hosts = ["local"]

[jobs.lint]
type = "lint"
"#,
        r#"
        rollway.toml:1:1: missing key 'project' at the top level — add project = "NAME" at the top of the file
        rollway.toml:1:1: missing key 'output' in [build] — add output = "dist": the file or directory that becomes the artifact
        rollway.toml:4:1: missing key 'kind' in [environments.x] — add kind = "development", "test", "staging" or "production"
        rollway.toml:4:1: environments.x has hosts but no release root — add root = "/srv/APP" (or root in each host's table)
        rollway.toml:7:1: missing key 'run' in [jobs.lint] — add run = "COMMAND"; it runs with sh -c in the directory of rollway.toml
        "#,
    );
}

#[test]
fn unknown_keys_suggest_the_near_one() {
    check(
        r#"project = "p"
[health]
retry = 3
[environments.prod]
kind = "prod"
https = true
stabilty_window = "45m"
hosts = [{ ssh = "a@b", prot = 1 }]
root = "/srv/p"
"#,
        "
        rollway.toml:3:1: unknown key 'retry' in [health] — did you mean 'retries'?
        rollway.toml:7:1: unknown key 'stabilty_window' in [environments.prod] — did you mean 'stability_window'?
        rollway.toml:8:25: unknown key 'prot' in environments.prod.hosts[0] — did you mean 'port'?
        ",
    );
}

#[test]
fn host_forms() {
    let config = valid(
        r#"project = "p"
[service]
start = "./server"
port = 3000
[environments.production]
kind = "production"
https = true
root = "/srv/p"
hosts = [
  "deploy@app1.example.com",
  "app2.example.com:2222",
  { ssh = "root@127.0.0.1:22222", root = "/srv/other", port = 3101 },
  { local = true, root = "/tmp/p" },
  "local",
  "deploy@[::1]:22",
]
"#,
    );
    let hosts = &config.environments["production"].hosts;
    let shown: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    assert_eq!(
        shown,
        [
            "deploy@app1.example.com",
            "app2.example.com:2222",
            "root@127.0.0.1:22222",
            "local",
            "local",
            "deploy@[::1]:22"
        ]
    );
    assert_eq!(hosts[2].root.as_deref(), Some("/srv/other"));
    assert_eq!(hosts[2].effective_port(config.service.as_ref()), Some(3101));
    assert_eq!(hosts[0].effective_port(config.service.as_ref()), Some(3000));
    let env = &config.environments["production"];
    assert_eq!(hosts[3].effective_root(env), Some("/tmp/p"));
    assert_eq!(hosts[4].effective_root(env), Some("/srv/p"));
    // Serialised hosts read like the file.
    let json = serde_json::to_value(hosts).unwrap();
    assert_eq!(json[0], "deploy@app1.example.com");
    assert_eq!(
        json[2],
        serde_json::json!({ "ssh": "root@127.0.0.1:22222", "root": "/srv/other", "port": 3101 })
    );

    check(
        r#"project = "p"
[environments.e]
kind = "test"
root = "/srv/p"
hosts = ["@nobody", "h:0", "::1", 5, { port = 80 }, { ssh = "a@b:99999" }, { ssh = "x", local = true }]
"#,
        "
        rollway.toml:5:10: environments.e.hosts[0] is not a host: '@nobody' has an empty user before '@' — write \"local\", \"user@host\" or \"user@host:port\"
        rollway.toml:5:21: environments.e.hosts[1] is not a host: 'h:0': port 0 is out of range (1 to 65535) — write \"local\", \"user@host\" or \"user@host:port\"
        rollway.toml:5:28: environments.e.hosts[2] is not a host: '::1' has several ':'; write IPv6 addresses in brackets, e.g. [::1]:22 — write \"local\", \"user@host\" or \"user@host:port\"
        rollway.toml:5:35: environments.e.hosts[3] must be a string or a table, not an integer — write \"local\", \"user@host:port\" or { ssh = \"user@host:port\", root = \"…\", port = 3001 }
        rollway.toml:5:38: environments.e.hosts[4] names no host — add ssh = \"user@host:port\", or local = true for this machine
        rollway.toml:5:61: environments.e.hosts[5].ssh is not an ssh destination: 'a@b:99999': port 99999 is out of range (1 to 65535) — write \"user@host\" or \"user@host:port\"
        rollway.toml:5:97: environments.e.hosts[6] sets both ssh = \"x\" and local = true — keep one of them
        ",
    );
}

#[test]
fn a_host_listed_twice_is_reported_at_the_second() {
    check(
        r#"project = "p"
[environments.staging]
kind = "staging"
root = "/srv/p"
hosts = ["deploy@App1.example.com", "local", "deploy@app1.example.com", { ssh = "deploy@app1.example.com", root = "/srv/q" }, { local = true }]
"#,
        "
        rollway.toml:5:46: host 'deploy@app1.example.com' is listed twice in environments.staging.hosts — remove the repeated entry, or give each its own root in a host table
        rollway.toml:5:127: host 'local' is listed twice in environments.staging.hosts — remove the repeated entry, or give each its own root in a host table
        ",
    );
}

#[test]
fn durations() {
    let config = valid(
        r#"project = "p"
[build]
output = "dist"
expire_after = "2w"
[health]
timeout = "1500ms"
interval = "250ms"
stability_window = "1h30m"
[environments.t]
kind = "test"
hosts = ["local"]
root = ".rollway/t"
canary_window = "5m"
[jobs.j]
run = "true"
timeout = "10m"
"#,
    );
    assert_eq!(
        config.build.as_ref().unwrap().expire_after,
        Duration::from_secs(14 * 86_400)
    );
    assert_eq!(config.health.timeout, Duration::from_millis(1500));
    assert_eq!(config.health.interval, Duration::from_millis(250));
    assert_eq!(config.health.stability_window, Duration::from_secs(5400));
    assert_eq!(config.environments["t"].canary_window, Duration::from_secs(300));
    assert_eq!(config.jobs["j"].timeout, Some(Duration::from_secs(600)));
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["health"]["stability_window"], "90m");
    assert_eq!(json["build"]["expire_after"], "14d");

    check(
        r#"project = "p"
[health]
timeout = "0s"
interval = "5"
stability_window = "soon"
[jobs.j]
run = "true"
timeout = ""
"#,
        r#"
        rollway.toml:3:11: health.timeout is zero — give it a length greater than zero, e.g. "5s"
        rollway.toml:4:12: invalid duration for health.interval: '5' needs a unit (ms, s, m, h, d, w) — write a number and a unit in quotes, e.g. "500ms", "5s", "30m", "1h30m" or "90d"
        rollway.toml:5:20: invalid duration for health.stability_window: 'soon' is not a duration (expected e.g. 500ms, 5s, 30m, 2h, 90d) — write a number and a unit in quotes, e.g. "500ms", "5s", "30m", "1h30m" or "90d"
        rollway.toml:8:11: invalid duration for jobs.j.timeout: empty duration — write a number and a unit in quotes, e.g. "500ms", "5s", "30m", "1h30m" or "90d"
        "#,
    );
}

#[test]
fn production_needs_https_and_a_thirty_minute_window() {
    check(
        r#"project = "p"
[health]
stability_window = "10m"

[environments.live]
kind = "prod"
hosts = ["local"]
root = "/srv/p"

[environments.main]
kind = "production"
https = true
stability_window = "29m"

[environments.stage]
kind = "staging"
"#,
        r#"
        rollway.toml:3:20: production environment 'live' has a stability window of 10m, shorter than the production minimum of 30m — set stability_window = "30m" or longer in [environments.live], or raise [health] stability_window
        rollway.toml:5:1: production environment 'live' does not set https — add https = true; a production environment must serve https
        rollway.toml:13:20: production environment 'main' has a stability window of 29m, shorter than the production minimum of 30m — set stability_window = "30m" or longer
        "#,
    );
    // A short global window is fine when production overrides it.
    let config = valid(
        r#"project = "p"
[health]
stability_window = "1m"
[environments.main]
kind = "production"
https = true
stability_window = "30m"
"#,
    );
    assert_eq!(config.health_for("main").stability_window, Duration::from_secs(1800));
}

#[test]
fn dev_and_prod_are_kinds() {
    let config = valid(
        r#"project = "p"
[environments.d]
kind = "dev"
[environments.p]
kind = "prod"
https = true
[variables.KEY]
required_for = ["prod", "dev", "staging"]
"#,
    );
    assert_eq!(config.environments["d"].kind, EnvironmentKind::Development);
    assert_eq!(config.environments["p"].kind, EnvironmentKind::Production);
    assert_eq!(
        config.variables["KEY"].required_for,
        [
            EnvironmentKind::Production,
            EnvironmentKind::Development,
            EnvironmentKind::Staging
        ]
    );
    let specs = config.environment_specs();
    assert_eq!(
        specs.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        ["development", "production"]
    );
}

#[test]
fn defaults_are_applied() {
    let config = valid(
        r#"project = "p"
[build]
output = "dist"
[service]
start = "./run"
port = 8080
[environments.s]
kind = "staging"
hosts = ["local", "b@h"]
root = "/srv/s"
"#,
    );
    let h = &config.health;
    assert_eq!(h.path, "/");
    assert_eq!(h.expect_status, 200);
    assert_eq!(h.timeout, Duration::from_secs(5));
    assert_eq!(h.interval, Duration::from_secs(1));
    assert_eq!(h.retries, 30);
    assert_eq!(h.window_failures, 3);
    assert_eq!(h.stability_window, Duration::from_secs(30 * 60));
    let b = config.build.as_ref().unwrap();
    assert_eq!(b.expire_after, Duration::from_secs(90 * 86_400));
    assert_eq!(b.kind.as_str(), "app");
    assert_eq!(b.aliases, None);
    let s = config.service.as_ref().unwrap();
    assert_eq!(s.supervisor, SupervisorKind::Rollway);
    assert_eq!(s.supervisord_conf_dir(), "/etc/supervisor/conf.d");
    assert_eq!(s.supervisorctl_command(), "supervisorctl");
    let e = &config.environments["s"];
    assert_eq!(e.keep_releases, 5);
    assert_eq!(e.canary, 0);
    assert_eq!(e.canary_window, Duration::ZERO);
    assert_eq!(e.parallel, None);
    assert_eq!(e.effective_parallel(), 2);
    assert_eq!(e.platform, Platform::SelfHosted);
    assert!(!e.https);
    assert_eq!(e.config, serde_json::json!({}));
    assert_eq!(e.health(&config.health), config.health);
    assert_eq!(config.secrets.dir, "secrets");
    assert!(config.secrets.recipients.is_empty());
    assert_eq!(config.ssh.config, None);
    assert!(config.deploy.jobs.is_empty());
}

#[test]
fn the_design_example_is_valid() {
    let config = valid(
        r#"project = "hello"

[build]
command = "npm ci && npm run build"
output = "dist"
kind = "app"
aliases = ["@/"]
expire_after = "90d"

[service]
start = "node server.js"
port = 3000
supervisor = "rollway"
shared = ["uploads"]

[health]
path = "/"
expect_status = 200
timeout = "5s"
interval = "1s"
retries = 30
window_failures = 3
stability_window = "30m"

[ssh]
config = "deploy/ssh_config"

[secrets]
dir = "secrets"
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI alice"]

[variables.DATABASE_URL]
type = "url"
scheme = "postgres"
secret = true
required_for = ["staging", "production"]

[variables.COHERE_API_KEY]
type = "key"
format = "^[A-Za-z0-9]{40}$"
secret = true

[variables.APP_KEY]
type = "key"
format = "base64:32"

[deploy]
jobs = ["lint", "test"]

[environments.production]
kind = "production"
hosts = ["deploy@app1.example.com", { ssh = "deploy@app2.example.com:2222", port = 3001 }]
root = "/srv/hello"
domain = "api.example.com"
https = true
platform = "self-hosted"
app = "backend"
nginx_config = "deploy/nginx/production.conf"
config = { region = "eu-north", replicas = 2, tags = ["a", "b"], limits = { cpu = 1.5 } }
keep_releases = 5
canary = 1
canary_window = "5m"
parallel = 2
required_vars = ["DATABASE_URL"]
required_tags = ["owner", "cost-center"]
vars = { LOG_LEVEL = "info", WORKERS = 4, DEBUG = false }
sync = "vercel env add {key} production"
jobs = ["test"]

[environments.staging]
kind = "staging"
hosts = ["local"]
root = ".rollway/staging"
stability_window = "1m"

[jobs.lint]
type = "lint"
run = "npm run lint"

[jobs.test]
type = "test"
run = "npm test"
needs = ["lint"]
timeout = "10m"
env = { NODE_ENV = "test" }
artifacts = ["coverage/lcov.info"]

[stacks.database]
deploy = "./infra/deploy-db.sh"
verify = "./infra/verify-db.sh {{ database.HOST }}"
outputs = ["HOST"]
secret_outputs = ["PASSWORD"]
required_properties = ["engine"]

[stacks.api]
deploy = "./infra/api.sh --db {{ database.HOST }} --pw {{database.PASSWORD}} --fmt '{{.State}}'"
depends_on = ["database"]
outputs = ["URL"]

[stacks.app]
depends_on = ["database", "api"]
"#,
    );
    let prod = &config.environments["production"];
    assert_eq!(prod.config["region"], "eu-north");
    assert_eq!(prod.config["limits"]["cpu"], 1.5);
    assert_eq!(prod.vars["WORKERS"], "4");
    assert_eq!(prod.vars["DEBUG"], "false");
    assert_eq!(prod.deploy_jobs(&config.deploy), ["test"]);
    assert_eq!(
        config.environments["staging"].deploy_jobs(&config.deploy),
        ["lint", "test"]
    );
    assert_eq!(config.variables["APP_KEY"].format, Some(VariableFormat::Base64(32)));
    assert!(config.variables["APP_KEY"].secret, "secret by default");
    assert_eq!(config.stack_waves(), [vec!["database"], vec!["api"], vec!["app"]]);
    assert!(config.stacks["app"].is_release());
    let spec = &config.environment_specs()[0];
    assert_eq!(spec.name, "production");
    assert_eq!(spec.app.as_deref(), Some("backend"));
    assert_eq!(spec.config["replicas"], 2);
}

#[test]
fn job_references_and_needs_cycles() {
    check(
        r#"project = "p"
[deploy]
jobs = ["lnit", "build", "build"]
[environments.s]
kind = "staging"
jobs = ["nope"]
[jobs.lint]
run = "x"
needs = ["lint"]
[jobs.build]
run = "x"
needs = ["test", "zzz"]
[jobs.test]
run = "x"
needs = ["deploy"]
[jobs.deploy]
run = "x"
needs = ["build"]
"#,
        "
        rollway.toml:3:9: 'lnit' in deploy.jobs is not a job — did you mean 'lint'?
        rollway.toml:3:26: 'build' is listed twice in deploy.jobs — remove the repeated entry
        rollway.toml:6:9: 'nope' in environments.s.jobs is not a job — define [jobs.nope], or remove the reference
        rollway.toml:9:10: needs cycle: lint → lint — remove one of these needs so the jobs can run in order
        rollway.toml:12:10: needs cycle: build → test → deploy → build — remove one of these needs so the jobs can run in order
        rollway.toml:12:18: job 'build' needs 'zzz', which is not a job — define [jobs.zzz], or remove the reference
        ",
    );
}

#[test]
fn depends_on_cycles_print_their_path() {
    check(
        r#"project = "p"
[stacks.network]
deploy = "n"
depends_on = ["app"]
[stacks.database]
deploy = "d"
depends_on = ["network", "cache"]
[stacks.app]
depends_on = ["database"]
"#,
        "
        rollway.toml:7:26: stack 'database' depends on 'cache', which is not a stack — define [stacks.cache], or remove the reference
        rollway.toml:9:15: depends_on cycle: app → database → network → app — remove one of these dependencies so the stacks have an order
        ",
    );
}

#[test]
fn stack_outputs_and_placeholders() {
    check(
        r#"project = "p"
[stacks.db]
deploy = "d"
outputs = ["HOST", "url"]
secret_outputs = ["HOST"]
[stacks.x-y]
deploy = "e"
outputs = ["URL"]
[stacks.x_y]
deploy = "f"
outputs = ["url"]
[stacks.api]
deploy = "x {{ db.HOST }} {{ db.PORT }} {{ web.URL }} {{ nowhere.X }}"
depends_on = ["db"]
[stacks.web]
deploy = "w"
[stacks.site]
[stacks.release]
"#,
        "
        rollway.toml:5:19: output 'HOST' of stack 'db' is in both outputs and secret_outputs — keep it in one list: secret_outputs if it must be masked
        rollway.toml:11:12: output 'url' of stack 'x_y' and output 'URL' of stack 'x-y' both become ROLLWAY_OUTPUT_X_Y_URL — rename one of them
        rollway.toml:13:27: {{ db.PORT }} in stack 'api': stack 'db' declares no output 'PORT' — add \"PORT\" to outputs of [stacks.db], or fix the name
        rollway.toml:13:41: {{ web.URL }} in stack 'api' uses an output of 'web', which 'api' does not depend on — add \"web\" to depends_on of [stacks.api]
        rollway.toml:13:55: {{ nowhere.X }} in stack 'api' names stack 'nowhere', which is not a stack — define [stacks.nowhere], or remove the reference
        rollway.toml:18:9: stacks 'site' and 'release' both have no deploy command, so both would ship the artifact — give all but one of them a deploy command; one release stack ships the artifact
        ",
    );
}

#[test]
fn variables_service_and_names() {
    check(
        r#"project = "my app"
[service]
supervisor = "command"
start = "x"
restart = "systemctl restart x"
supervisorctl = "supervisorctl"
shared = ["../etc", "uploads"]
[secrets]
recipients = ["bob"]
[variables.1BAD]
scheme = "postgres"
[variables.TOKEN]
type = "key"
format = "([a-z]"
[variables.HEX]
format = "hex:0"
[variables.DB]
type = "url"
scheme = "postgres://"
required_for = ["qa"]
[environments.s]
kind = "staging"
platform = "railway"
vars = { "LOG-LEVEL" = "x", OK = [1] }
required_vars = ["9X"]
[jobs.j]
run = "x"
env = { "A B" = "c" }
"#,
        r#"
        rollway.toml:1:11: project name 'my app' is not allowed — use letters, digits, '-', '_' and '.', starting with a letter or digit
        rollway.toml:2:1: missing key 'restarts' in [service] — add restarts = "COMMAND": it prints the service's restart count
        rollway.toml:6:17: service.supervisorctl applies only to supervisor = "supervisord", not "command" — remove supervisorctl, or set supervisor = "supervisord"
        rollway.toml:7:11: shared directory '../etc' is not a plain relative path — name a directory inside the release, e.g. "uploads" or "storage/logs"
        rollway.toml:9:15: recipient 'bob' is neither an age recipient nor an ssh public key — use an "age1…" recipient (rollway secrets init prints yours) or an "ssh-ed25519 AAAA…" key
        rollway.toml:10:12: variable name '1BAD' is not a valid environment variable name — use letters, digits and '_', not starting with a digit
        rollway.toml:11:10: variables.1BAD.scheme applies only to url variables, but 1BAD has type "string" — set type = "url", or remove scheme
        rollway.toml:14:10: invalid format for variables.TOKEN.format: '([a-z]' is not a valid regex: unclosed group — write a regex, or a preset: uuid, hex:N, base64:N
        rollway.toml:16:10: invalid format for variables.HEX.format: 'hex:0' needs a positive byte count after 'hex:', e.g. hex:32 — write a regex, or a preset: uuid, hex:N, base64:N
        rollway.toml:19:10: variables.DB.scheme 'postgres://' is not a URL scheme — write only the scheme, e.g. "postgres" or "https"
        rollway.toml:20:17: unknown environment kind 'qa' in variables.DB.required_for — use one of: development, test, staging, production
        rollway.toml:24:10: variable 'LOG-LEVEL' is not a valid environment variable name — use letters, digits and '_', not starting with a digit
        rollway.toml:24:34: environments.s.vars.OK must be a string, number or boolean, not an array — write OK = "value"
        rollway.toml:25:18: required variable '9X' is not a valid environment variable name — use letters, digits and '_', not starting with a digit
        rollway.toml:28:9: env name 'A B' is not a valid environment variable name — use letters, digits and '_', not starting with a digit
        "#,
    );
}

#[test]
fn environments_that_ship_need_hosts_roots_and_ports() {
    check(
        r#"project = "p"
[service]
start = "./run"
[environments.a]
kind = "staging"
[environments.b]
kind = "test"
hosts = ["local", { local = true, root = "/x", port = 1 }]
canary = 3
[environments.c]
kind = "test"
platform = "vercel"
"#,
        r#"
        rollway.toml:4:1: environments.a is self-hosted but has no hosts — add hosts = ["local"] or ssh destinations like "deploy@app1.example.com"
        rollway.toml:6:1: environments.b has hosts but no release root — add root = "/srv/APP" (or root in each host's table)
        rollway.toml:6:1: the hosts of environments.b have no service port — set port in [service] or in this environment, or port in each host's table
        rollway.toml:9:10: environments.b.canary is 3, but the environment has 2 host(s) — set canary to at most 2
        "#,
    );
}

#[test]
fn tables_and_arrays_of_the_wrong_shape() {
    check(
        r#"project = "p"
health = 3
[[jobs]]
run = "x"
[environments]
staging = "local"
[environments.p]
kind = "test"
config = "eu"
required_tags = "owner"
"#,
        r#"
        rollway.toml:2:10: health must be a table, not an integer — write it as a [health] section
        rollway.toml:3:1: jobs must be a table, not an array of tables — write one [jobs.NAME] section per entry
        rollway.toml:6:11: environments.staging must be a table, not a string — write it as a [environments.staging] section
        rollway.toml:9:10: environments.p.config must be a table, not a string — write a table: config = { region = "eu-north" }
        rollway.toml:10:17: environments.p.required_tags must be an array of strings, not a string — write a list of strings: required_tags = ["…", "…"]
        "#,
    );
}

#[test]
fn serialised_config_round_trips_through_the_parser() {
    // What `env show --json` prints reads back as the same config.
    let config = valid(&template());
    let json = serde_json::to_value(&config).unwrap();
    let mut toml = String::new();
    to_toml(&json, &mut toml);
    assert_eq!(valid(&toml), config);
}

/// A tiny JSON → TOML writer (inline tables) for the round-trip test.
fn to_toml(v: &serde_json::Value, out: &mut String) {
    fn value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Object(m) => format!(
                "{{ {} }}",
                m.iter()
                    .map(|(k, v)| format!("{k:?} = {}", value(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            serde_json::Value::Array(a) => format!("[{}]", a.iter().map(value).collect::<Vec<_>>().join(", ")),
            other => other.to_string(),
        }
    }
    for (k, v) in v.as_object().unwrap() {
        out.push_str(&format!("{k} = {}\n", value(v)));
    }
}

#[test]
fn json_schema_describes_the_file() {
    let schema = rollway_config::json_schema();
    assert!(schema.is_object());
    let text = schema.to_string();
    for needle in [
        "environments",
        "stability_window",
        "depends_on",
        "\"prod\"",
        "self-hosted",
        "anyOf",
    ] {
        assert!(text.contains(needle), "schema should mention {needle}");
    }
    assert!(!text.contains("null"), "TOML has no null; optional keys are left out");
    assert_eq!(schema["title"], "rollway.toml");
    let env = &schema["$defs"]["EnvironmentConfig"]["properties"];
    assert_eq!(env["keep_releases"]["default"], 5);
    assert_eq!(env["keep_releases"]["minimum"], 1);
    assert!(env["kind"]["description"].as_str().unwrap().contains("dev and prod"));
    assert_eq!(schema["required"], serde_json::json!(["project"]));
}

#[test]
fn load_names_the_file_as_given() {
    let dir = std::env::temp_dir().join(format!("rollway-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("custom.toml");
    std::fs::write(&path, "project = \"p\"\nnope = 1\n").unwrap();
    let err = rollway_config::load(&path).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:2:1: unknown key 'nope'", path.display())),
        "{shown}"
    );
    assert!(matches!(err, rollway_config::ConfigError::Invalid(_)));
    let missing = rollway_config::load(&dir.join("absent.toml")).unwrap_err();
    assert!(matches!(missing, rollway_config::ConfigError::Read { .. }));
    assert!(missing.to_string().starts_with("cannot read "), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
