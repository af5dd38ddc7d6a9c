//! The checked configuration as typed values. Serialising a value gives the
//! file's own shape (durations as "5s", hosts as strings or tables), and the
//! JSON Schema derived from these types describes rollway.toml for editors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rollway_model::EnvironmentSpec;
use rollway_model::rules::format::Format;
use rollway_model::status::{ArtifactKind, EnvironmentKind, JobType, Platform, SupervisorKind, VariableType};
use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::alerting::{AlertRuleConfig, AlertingConfig, ChannelConfig};
use crate::backups::BackupConfig;
use crate::logs::LogsConfig;
use crate::monitor::{MonitorConfig, domain_monitor};
use crate::schema;
use crate::serde_duration;

/// The minimum stability window of a production environment (DESIGN.md).
pub const PRODUCTION_MIN_STABILITY_WINDOW: Duration = Duration::from_secs(30 * 60);

/// The whole of rollway.toml, checked.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "rollway.toml", deny_unknown_fields)]
pub struct Config {
    /// The project's name; it names services, units and state. Letters, digits, `-`, `_` and `.`.
    pub project: String,
    /// How `rollway build` makes the artifact. Without it there is nothing to build or ship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildConfig>,
    /// The long-running service each host runs from its current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceConfig>,
    /// How a release is proved healthy: the boot check and the stability window.
    #[serde(default)]
    pub health: HealthConfig,
    /// How Rollway reaches SSH hosts.
    #[serde(default)]
    pub ssh: SshConfig,
    /// Where encrypted variable values live and who can read them.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Declared variables: their type, format, whether they are secret and where they are required.
    #[serde(default)]
    pub variables: BTreeMap<String, VariableConfig>,
    /// What every deployment runs before it ships.
    #[serde(default)]
    pub deploy: DeployConfig,
    /// The environments, by name.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// Pipeline jobs, by name; `needs` makes them a graph.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobConfig>,
    /// Deployment stacks, by name; `depends_on` orders them. No stacks means one release stack.
    #[serde(default)]
    pub stacks: BTreeMap<String, StackConfig>,
    /// Monitors `rollway serve` keeps probing, by name. An environment with a `domain` also gets
    /// `ENV-domain`, unless a monitor of that name is declared here.
    #[serde(default)]
    pub monitors: BTreeMap<String, MonitorConfig>,
    /// Where alert notifications go, by channel name: a webhook or e-mail.
    #[serde(default)]
    pub notify: BTreeMap<String, ChannelConfig>,
    /// How the built-in alert rules notify, and the defaults of [alerts] rules.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// Alert rules, by name: a metric crossing a threshold for long enough opens an alert.
    #[serde(default)]
    pub alerts: BTreeMap<String, AlertRuleConfig>,
    /// How long serve keeps collected log records and how often it collects.
    #[serde(default)]
    pub logs: LogsConfig,
    /// Backups, by name: what is backed up, when, and where the encrypted objects are kept.
    #[serde(default)]
    pub backups: BTreeMap<String, BackupConfig>,
}

/// `[build]`: the command that builds and the output that becomes the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildConfig {
    /// Shell command run with `sh -c` in the directory of rollway.toml. Optional: without it the output is packed as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// File or directory, relative to rollway.toml, that becomes the artifact.
    pub output: String,
    /// Artifact kind: app, frontend-build, backend-container or embeddings-data.
    #[serde(default = "default_artifact_kind")]
    #[schemars(schema_with = "schema::artifact_kind")]
    pub kind: ArtifactKind,
    /// Import alias prefixes (e.g. "@/") that must be resolved in the artifact. Default: tsconfig.json compilerOptions.paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// How long the artifact is kept, e.g. "90d".
    #[serde(default = "default_expire_after", serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub expire_after: Duration,
}

/// `[service]`: how the release runs on a host and how it is restarted.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Command that starts the service, run in the release directory with its env file loaded and PORT set. Required unless supervisor = "command".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Port the service listens on; health probes go to 127.0.0.1:PORT on the host. A host table's `port` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Who restarts the service and counts its restarts: rollway, supervisord, systemd or command.
    #[serde(default = "default_supervisor")]
    #[schemars(schema_with = "schema::supervisor")]
    pub supervisor: SupervisorKind,
    /// Directories kept across releases under ROOT/shared and linked into each release.
    #[serde(default)]
    pub shared: Vec<String>,
    /// supervisor = "supervisord": the include directory where the program section is written. Default "/etc/supervisor/conf.d".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisord_conf: Option<String>,
    /// supervisor = "supervisord": the command that drives supervisord. Default "supervisorctl".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisorctl: Option<String>,
    /// supervisor = "command": the command that restarts the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// supervisor = "command": a command that prints the service's restart count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<String>,
}

impl ServiceConfig {
    /// Where supervisord program sections go.
    pub fn supervisord_conf_dir(&self) -> &str {
        self.supervisord_conf.as_deref().unwrap_or("/etc/supervisor/conf.d")
    }

    /// The command that drives supervisord.
    pub fn supervisorctl_command(&self) -> &str {
        self.supervisorctl.as_deref().unwrap_or("supervisorctl")
    }
}

/// `[service]` keys an environment overrides; unset keys come from `[service]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ServiceOverrides {
    /// Overrides `[service] start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Overrides `[service] port`; a host table's `port` overrides this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Overrides `[service] supervisor`: rollway, supervisord, systemd or command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::supervisor")]
    pub supervisor: Option<SupervisorKind>,
    /// Overrides `[service] supervisord_conf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisord_conf: Option<String>,
    /// Overrides `[service] supervisorctl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisorctl: Option<String>,
    /// Overrides `[service] restart` (supervisor = "command").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Overrides `[service] restarts` (supervisor = "command").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<String>,
}

impl ServiceOverrides {
    /// Whether no key is overridden.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `base` with these overrides applied; without a `[service]`, the
    /// overrides alone make one (or none, when there are none).
    pub fn apply(&self, base: Option<&ServiceConfig>) -> Option<ServiceConfig> {
        if base.is_none() && self.is_empty() {
            return None;
        }
        let base = base.cloned().unwrap_or(ServiceConfig {
            start: None,
            port: None,
            supervisor: default_supervisor(),
            shared: Vec::new(),
            supervisord_conf: None,
            supervisorctl: None,
            restart: None,
            restarts: None,
        });
        let pick = |o: &Option<String>, b: Option<String>| o.clone().or(b);
        Some(ServiceConfig {
            start: pick(&self.start, base.start),
            port: self.port.or(base.port),
            supervisor: self.supervisor.unwrap_or(base.supervisor),
            shared: base.shared,
            supervisord_conf: pick(&self.supervisord_conf, base.supervisord_conf),
            supervisorctl: pick(&self.supervisorctl, base.supervisorctl),
            restart: pick(&self.restart, base.restart),
            restarts: pick(&self.restarts, base.restarts),
        })
    }
}

/// `[health]`: the boot check and the stability window (DESIGN.md "Verification").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct HealthConfig {
    /// HTTP path probed on 127.0.0.1:PORT; starts with "/".
    pub path: String,
    /// The status that means healthy.
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u16,
    /// Bound on each probe, e.g. "5s".
    #[serde(serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub timeout: Duration,
    /// Spacing of boot-check attempts and of window probes, e.g. "1s".
    #[serde(serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub interval: Duration,
    /// Boot-check attempts before the release is declared down.
    #[schemars(range(min = 1))]
    pub retries: u32,
    /// Consecutive failed probes that fail the stability window.
    #[schemars(range(min = 1))]
    pub window_failures: u32,
    /// How long the release is watched after the last wave; at least "30m" in production.
    #[serde(serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub stability_window: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: "/".into(),
            expect_status: 200,
            timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            retries: 30,
            window_failures: 3,
            stability_window: PRODUCTION_MIN_STABILITY_WINDOW,
        }
    }
}

/// Health keys an environment overrides; unset keys come from `[health]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HealthOverrides {
    /// Overrides `[health] path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Overrides `[health] expect_status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: Option<u16>,
    /// Overrides `[health] timeout`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub timeout: Option<Duration>,
    /// Overrides `[health] interval`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub interval: Option<Duration>,
    /// Overrides `[health] retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retries: Option<u32>,
    /// Overrides `[health] window_failures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub window_failures: Option<u32>,
    /// Overrides `[health] stability_window` (at least "30m" in production).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub stability_window: Option<Duration>,
}

impl HealthOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: &HealthConfig) -> HealthConfig {
        HealthConfig {
            path: self.path.clone().unwrap_or_else(|| base.path.clone()),
            expect_status: self.expect_status.unwrap_or(base.expect_status),
            timeout: self.timeout.unwrap_or(base.timeout),
            interval: self.interval.unwrap_or(base.interval),
            retries: self.retries.unwrap_or(base.retries),
            window_failures: self.window_failures.unwrap_or(base.window_failures),
            stability_window: self.stability_window.unwrap_or(base.stability_window),
        }
    }
}

/// `[ssh]`: options for the system OpenSSH client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct SshConfig {
    /// An ssh config file passed as `ssh -F FILE`, relative to rollway.toml.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// How long connecting (TCP and the SSH handshake) may take: `ssh -o ConnectTimeout`, e.g. "10s".
    #[serde(serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub connect_timeout: Duration,
    /// How often a silent connection is probed: `ssh -o ServerAliveInterval`, e.g. "5s".
    #[serde(serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub alive_interval: Duration,
    /// Unanswered probes before the connection is dropped: `ssh -o ServerAliveCountMax`.
    #[schemars(range(min = 1, max = 100))]
    pub alive_count_max: u32,
    /// Keep each host's multiplexed connection open for 60 s after a command ends, so the next
    /// command starts faster (default false: closed when the command ends).
    pub persist: bool,
}

impl Default for SshConfig {
    fn default() -> Self {
        Self {
            config: None,
            connect_timeout: Duration::from_secs(10),
            alive_interval: Duration::from_secs(5),
            alive_count_max: 3,
            persist: false,
        }
    }
}

/// `[secrets]`: where the age-encrypted values live and who may decrypt them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Directory of the ENV.age files, relative to rollway.toml; meant to be committed.
    pub dir: String,
    /// age recipients ("age1…") or ssh public keys ("ssh-ed25519 AAAA… name"). Empty: the local identity only.
    pub recipients: Vec<String>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            dir: "secrets".into(),
            recipients: Vec::new(),
        }
    }
}

/// `[variables.NAME]`: what a variable's value must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct VariableConfig {
    /// Value type: string, url or key.
    #[serde(rename = "type", default = "default_variable_type")]
    #[schemars(schema_with = "schema::variable_type")]
    pub var_type: VariableType,
    /// For url variables: the scheme the URL must have, e.g. "postgres".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// A regex the value must match, as written (anchor it with ^…$), or a preset: "uuid", "hex:N", "base64:N" (N = bytes encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub format: Option<VariableFormat>,
    /// Whether the value is masked everywhere. Default true; `false` for plain values.
    #[serde(default = "default_true")]
    pub secret: bool,
    /// Environment kinds in which the variable must be set.
    #[serde(default)]
    #[schemars(schema_with = "schema::environment_kinds")]
    pub required_for: Vec<EnvironmentKind>,
}

/// The shape a variable's value must have: the spec as the config keeps
/// it. Its meaning and its parsing are the model's
/// (`rollway_model::rules::format::Format`), so the config and `rollway
/// secrets check` cannot disagree on what a spec accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableFormat {
    /// An RFC 4122 UUID in its hyphenated form.
    Uuid,
    /// Hex digits encoding exactly this many bytes.
    Hex(usize),
    /// Base64 (standard or URL-safe, padding optional) encoding exactly this many bytes.
    Base64(usize),
    /// A regular expression, matched as written (not anchored for you).
    Regex(String),
}

impl VariableFormat {
    /// Reads a `format` value with the model's parser: a preset name with a
    /// bad size is an error, anything else must compile as a regex.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match Format::parse(s)? {
            Format::Uuid => Self::Uuid,
            Format::Hex(n) => Self::Hex(n),
            Format::Base64(n) => Self::Base64(n),
            Format::Regex(_) => Self::Regex(s.to_owned()),
        })
    }
}

impl fmt::Display for VariableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid => f.write_str("uuid"),
            Self::Hex(n) => write!(f, "hex:{n}"),
            Self::Base64(n) => write!(f, "base64:{n}"),
            Self::Regex(r) => f.write_str(r),
        }
    }
}

impl Serialize for VariableFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[deploy]`: what every deployment runs in its building phase, and the
/// hooks it runs on each host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct DeployConfig {
    /// Jobs (and what they need) run before shipping; an environment's `jobs` overrides it.
    pub jobs: Vec<String>,
    /// Commands run on each host in the new release with its env file before `current` switches
    /// (migrations); one that fails stops the deployment before that host switches.
    pub before_switch: Vec<String>,
    /// Commands run on each host in the new release once its service passed the boot check
    /// (cache warm-up); one that fails fails the deployment, which returns the hosts.
    pub after_switch: Vec<String>,
    /// How long each hook may run (default 10m).
    #[schemars(schema_with = "schema::duration")]
    #[serde(serialize_with = "serde_duration::ser")]
    pub hook_timeout: Duration,
    /// A `[backups.NAME]` of kind database taken before a deployment of its
    /// environment runs its jobs and hooks (migrations), linked to the
    /// deployment so `rollway rollback ENV --restore-db` can return to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_migration_backup: Option<String>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            jobs: Vec::new(),
            before_switch: Vec::new(),
            after_switch: Vec::new(),
            hook_timeout: Duration::from_secs(600),
            pre_migration_backup: None,
        }
    }
}

/// `[environments.NAME]`: where and how a release runs.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// development, test, staging or production (dev and prod are accepted too).
    #[schemars(schema_with = "schema::environment_kind")]
    pub kind: EnvironmentKind,
    /// Hosts: "local", "user@host:port", or tables { ssh = "user@host:port", root = "…", port = 3001 }.
    #[serde(default)]
    pub hosts: Vec<HostConfig>,
    /// Release root on each host (ROOT/releases, ROOT/shared, ROOT/current); a host table's `root` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The domain the environment serves, e.g. "api.example.com".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Whether the environment serves HTTPS; must be true in production.
    #[serde(default)]
    pub https: bool,
    /// The time zone of calendar months (`rollway uptime`) and of
    /// maintenance cron schedules: an IANA name such as "Europe/Berlin".
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The monthly uptime target in percent (below it a month is
    /// `breached`), also the SLO's target for error budgets and burn rates.
    #[serde(default = "default_uptime_target")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub uptime_target: f64,
    /// self-hosted, railway, vercel, supabase or other.
    #[serde(default = "default_platform")]
    #[schemars(schema_with = "schema::platform")]
    pub platform: Platform,
    /// The application's name on its platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Path of the environment's nginx configuration, relative to rollway.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_config: Option<String>,
    /// Free-form settings kept as JSON with the environment record.
    #[serde(default = "empty_object")]
    #[schemars(schema_with = "schema::object")]
    pub config: serde_json::Value,
    /// Releases kept per host; the current release and the rollback target are never removed.
    #[serde(default = "default_keep_releases")]
    #[schemars(range(min = 1))]
    pub keep_releases: u32,
    /// Hosts in the first (canary) wave; 0 means no canary wave.
    #[serde(default)]
    pub canary: u32,
    /// How long the canary wave is watched before the next wave starts.
    #[serde(default, serialize_with = "serde_duration::ser")]
    #[schemars(schema_with = "schema::duration")]
    pub canary_window: Duration,
    /// Hosts deployed at once per wave. Default: all hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallel: Option<u32>,
    /// Variables that must have a value before a deploy.
    #[serde(default)]
    pub required_vars: Vec<String>,
    /// Tags every stack resource must carry.
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Plain (non-secret) values written into the release's env file.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Platform sync command, run once per variable with the value on stdin; `{key}` and `{environment}` are substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// Jobs run in the building phase here, instead of `[deploy] jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<String>>,
    /// `[health]` keys overridden for this environment.
    #[serde(flatten)]
    pub health_overrides: HealthOverrides,
    /// `[service]` keys overridden for this environment.
    #[serde(flatten)]
    pub service_overrides: ServiceOverrides,
}

/// UTC: months and cron schedules read in UTC unless an environment says.
pub fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Seed 003's 99.5 %.
pub fn default_uptime_target() -> f64 {
    99.5
}

impl EnvironmentConfig {
    /// The effective health settings: `global` with this environment's overrides.
    pub fn health(&self, global: &HealthConfig) -> HealthConfig {
        self.health_overrides.apply(global)
    }

    /// The effective service: `global` (`[service]`) with this
    /// environment's overrides.
    pub fn service(&self, global: Option<&ServiceConfig>) -> Option<ServiceConfig> {
        self.service_overrides.apply(global)
    }

    /// Hosts per wave after the canary wave.
    pub fn effective_parallel(&self) -> usize {
        match self.parallel {
            Some(n) => n as usize,
            None => self.hosts.len().max(1),
        }
    }

    /// The jobs a deployment of this environment runs before shipping.
    pub fn deploy_jobs<'a>(&'a self, deploy: &'a DeployConfig) -> &'a [String] {
        self.jobs.as_deref().unwrap_or(&deploy.jobs)
    }

    /// Whether this is a production environment.
    pub fn is_production(&self) -> bool {
        self.kind == EnvironmentKind::Production
    }
}

/// One host of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Where the host is.
    pub target: HostTarget,
    /// This host's release root, instead of the environment's.
    pub root: Option<String>,
    /// This host's service port, instead of `[service] port`.
    pub port: Option<u16>,
}

impl HostConfig {
    /// The release root on this host.
    pub fn effective_root<'a>(&'a self, env: &'a EnvironmentConfig) -> Option<&'a str> {
        self.root.as_deref().or(env.root.as_deref())
    }

    /// The service port on this host.
    pub fn effective_port(&self, service: Option<&ServiceConfig>) -> Option<u16> {
        self.port.or(service.and_then(|s| s.port))
    }
}

impl fmt::Display for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.target.fmt(f)
    }
}

impl Serialize for HostConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.root.is_none() && self.port.is_none() {
            return s.collect_str(&self.target);
        }
        let mut m = s.serialize_map(None)?;
        match &self.target {
            HostTarget::Local => m.serialize_entry("local", &true)?,
            HostTarget::Ssh(d) => m.serialize_entry("ssh", &d.to_string())?,
        }
        if let Some(root) = &self.root {
            m.serialize_entry("root", root)?;
        }
        if let Some(port) = self.port {
            m.serialize_entry("port", &port)?;
        }
        m.end()
    }
}

impl JsonSchema for HostConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Host".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schema::host()
    }
}

/// How a host is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostTarget {
    /// This machine, without ssh.
    Local,
    /// A host reached with the system OpenSSH client.
    Ssh(SshDestination),
}

impl fmt::Display for HostTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Ssh(d) => d.fmt(f),
        }
    }
}

/// `user@host:port`, each part but the host optional; `host` may be an alias of the ssh config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshDestination {
    /// The remote user; default: ssh's own choice.
    pub user: Option<String>,
    /// Host name, address or ssh config alias (IPv6 without brackets).
    pub host: String,
    /// The ssh port; default: ssh's own choice.
    pub port: Option<u16>,
}

impl SshDestination {
    /// `user@host` (or `host`) as ssh takes it, with the port passed separately as `-p`.
    pub fn user_host(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for SshDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// `[jobs.NAME]`: one pipeline job.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct JobConfig {
    /// lint, test, build-frontend, build-backend, deploy-frontend, deploy-backend, migrate-db, populate-embeddings or custom.
    #[serde(rename = "type", default = "default_job_type")]
    #[schemars(schema_with = "schema::job_type")]
    pub job_type: JobType,
    /// Shell command run with `sh -c` in the directory of rollway.toml.
    pub run: String,
    /// Jobs that must succeed before this one starts.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Longest the job may run, e.g. "10m"; no limit when unset.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_duration::ser_opt"
    )]
    #[schemars(schema_with = "schema::duration")]
    pub timeout: Option<Duration>,
    /// Extra environment variables for the job.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Paths the job produces, relative to rollway.toml; each becomes an artifact record.
    #[serde(default)]
    pub artifacts: Vec<String>,
}

/// `[stacks.NAME]`: a unit of a deployment. Without `deploy` it is the release
/// stack, which ships the artifact to the hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StackConfig {
    /// Synthesizes the stack; may write a template path to $ROLLWAY_TEMPLATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synth: Option<String>,
    /// Validates the synthesized template (e.g. cfn-lint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
    /// Deploys the stack; may write $ROLLWAY_OUTPUTS and $ROLLWAY_RESOURCES. Absent: the release stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    /// Verifies the deployed stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// Undoes the stack's deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// Stacks deployed before this one; their outputs reach it.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Output keys `deploy` must write.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Output keys `deploy` must write, stored encrypted and masked.
    #[serde(default)]
    pub secret_outputs: Vec<String>,
    /// Properties every resource of this stack must have.
    #[serde(default)]
    pub required_properties: Vec<String>,
    /// Properties every resource of this stack must have with exactly
    /// this value, e.g. `{ engine = "postgres", encrypted = true }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_json::Value>,
    /// Properties every resource of this stack must have with a value of
    /// this JSON type: string, number, integer, boolean, array or object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub property_types: BTreeMap<String, String>,
}

impl StackConfig {
    /// The release stack has no deploy command: it ships the artifact.
    pub fn is_release(&self) -> bool {
        self.deploy.is_none()
    }
}

impl Config {
    /// What the store records of each environment, in name order.
    pub fn environment_specs(&self) -> Vec<EnvironmentSpec> {
        self.environments
            .iter()
            .map(|(name, e)| EnvironmentSpec {
                name: name.clone(),
                kind: e.kind,
                domain: e.domain.clone(),
                https: e.https,
                platform: e.platform,
                app: e.app.clone(),
                nginx_config: e.nginx_config.clone(),
                config: e.config.clone(),
            })
            .collect()
    }

    /// The effective health settings of environment `name` (the global ones when it is unknown).
    pub fn health_for(&self, name: &str) -> HealthConfig {
        match self.environments.get(name) {
            Some(e) => e.health(&self.health),
            None => self.health.clone(),
        }
    }

    /// Every monitor: those declared in `[monitors]` and, for each
    /// environment with a domain, its default `ENV-domain` HTTP monitor
    /// (a declared monitor of that name replaces it).
    pub fn all_monitors(&self) -> BTreeMap<String, MonitorConfig> {
        let mut all = self.monitors.clone();
        for (name, env) in &self.environments {
            if let Some(domain) = &env.domain {
                let (key, monitor) = domain_monitor(name, domain, env.https, &env.health(&self.health));
                all.entry(key).or_insert(monitor);
            }
        }
        all
    }

    /// Stacks in dependency waves: each wave depends only on earlier waves,
    /// names sorted within a wave. Parsing has refused cycles.
    pub fn stack_waves(&self) -> Vec<Vec<String>> {
        let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
        let mut waves: Vec<Vec<String>> = Vec::new();
        while placed.len() < self.stacks.len() {
            let wave: Vec<&str> = self
                .stacks
                .iter()
                .filter(|(name, s)| {
                    !placed.contains_key(name.as_str()) && s.depends_on.iter().all(|d| placed.contains_key(d.as_str()))
                })
                .map(|(name, _)| name.as_str())
                .collect();
            if wave.is_empty() {
                break;
            }
            let n = waves.len();
            placed.extend(wave.iter().map(|w| (*w, n)));
            waves.push(wave.into_iter().map(str::to_owned).collect());
        }
        waves
    }
}

fn default_artifact_kind() -> ArtifactKind {
    ArtifactKind::App
}

pub(crate) fn default_expire_after() -> Duration {
    Duration::from_secs(90 * 86_400)
}

fn default_supervisor() -> SupervisorKind {
    SupervisorKind::Rollway
}

fn default_variable_type() -> VariableType {
    VariableType::String
}

fn default_true() -> bool {
    true
}

fn default_platform() -> Platform {
    Platform::SelfHosted
}

pub(crate) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Releases kept per host when `keep_releases` is not set.
pub const DEFAULT_KEEP_RELEASES: u32 = 5;

pub(crate) fn default_keep_releases() -> u32 {
    DEFAULT_KEEP_RELEASES
}

fn default_job_type() -> JobType {
    JobType::Custom
}
