//! rollway.toml: parsed into a spanned document, read into typed values and
//! checked as a whole, so one run reports every problem as
//! `rollway.toml:LINE:COL: what is wrong — what to do`.

mod alerting;
mod backups;
mod checks;
mod diagnostic;
mod hosts;
mod logs;
mod monitor;
mod parse;
mod reader;
mod schema;
mod serde_duration;
mod template;
mod types;

use std::path::Path;

pub use alerting::{
    AlertRuleConfig, AlertingConfig, ChannelConfig, ChannelKind, EmailConfig, SmtpSecurity, Subject, WebhookConfig,
    WebhookFormat, parse_smtp,
};
pub use backups::{BackupConfig, RunOn, parse_s3_url};
pub use diagnostic::{ConfigError, Diagnostic, Diagnostics};
pub use hosts::{parse_host, parse_ssh};
pub use logs::LogsConfig;
pub use monitor::{
    DEFAULT_MAX_REDIRECTS, DEFAULT_MONITOR_INTERVAL, DEFAULT_MONITOR_RETRIES, DEFAULT_MONITOR_TIMEOUT,
    DEFAULT_PUSH_GRACE, DEFAULT_WARN_DAYS, DnsCheck, DnsRecordType, HttpCheck, HttpMethod, MAX_MONITOR_INTERVAL,
    MIN_MONITOR_INTERVAL, MonitorCheck, MonitorConfig, MonitorKind, OnSilence, PostgresCheck, PushCheck, TcpCheck,
    TlsCheck, split_address,
};
pub use schema::json_schema;
pub use template::{PRESETS, template, template_for};
pub use types::{
    BuildConfig, Config, DEFAULT_KEEP_RELEASES, DeployConfig, EnvironmentConfig, HealthConfig, HealthOverrides,
    HostConfig, HostTarget, JobConfig, PRODUCTION_MIN_STABILITY_WINDOW, SecretsConfig, ServiceConfig, ServiceOverrides,
    SshConfig, SshDestination, StackConfig, VariableConfig, VariableFormat,
};

/// `ROLLWAY_OUTPUT_<STACK>_<KEY>`: how a stack output reaches later stacks.
pub fn output_var(stack: &str, key: &str) -> String {
    rollway_model::outputs::output_var(stack, key)
}

/// Parses and checks `source`; `file_name` is what diagnostics call the file.
/// Every problem found is returned, sorted by position.
pub fn parse(source: &str, file_name: &str) -> Result<Config, Diagnostics> {
    let lines = diagnostic::LineIndex::new(source);
    let locate = |at: usize, message: String, hint: String| {
        let (line, col) = lines.position(at);
        Diagnostic {
            file: file_name.to_owned(),
            line,
            col,
            message,
            hint,
        }
    };
    let doc = match toml_edit::Document::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let at = e.span().map_or(0, |r| r.start);
            let hint = if e.message().contains("duplicate key") {
                "each key may appear once in a table; remove or rename the repeated one"
            } else {
                "fix the TOML syntax here; strings need double quotes, tables are [name]"
            };
            return Err(Diagnostics(vec![locate(
                at,
                format!("invalid TOML: {}", e.message().trim()),
                hint.to_owned(),
            )]));
        }
    };
    let cx = reader::Ctx::new(source);
    let mut marks = parse::Marks::default();
    let config = parse::read_config(&cx, doc.as_table(), &mut marks);
    checks::check(&cx, &config, &marks);
    let mut found = cx.into_found();
    if found.is_empty() {
        return Ok(config);
    }
    // Stable: problems at one position keep the order they were found in.
    found.sort_by_key(|f| f.at);
    Err(Diagnostics(
        found.into_iter().map(|f| locate(f.at, f.message, f.hint)).collect(),
    ))
}

/// The largest rollway.toml read: a project's config is kilobytes, and a
/// path like `/dev/zero` must not be read without end.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// Reads and checks the file at `path`; diagnostics name it as given. A
/// file above [`MAX_CONFIG_BYTES`] or not UTF-8 is a located diagnostic.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    use std::io::Read as _;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let name = path.display().to_string();
    let refuse = |line, col, message: String, hint: &str| {
        ConfigError::Invalid(Diagnostics(vec![Diagnostic {
            file: name.clone(),
            line,
            col,
            message,
            hint: hint.to_owned(),
        }]))
    };
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(refuse(
            1,
            1,
            format!(
                "the file is larger than {} MiB, the most rollway.toml may be",
                MAX_CONFIG_BYTES >> 20
            ),
            "check that --config names your rollway.toml; a project's config is a few kilobytes",
        ));
    }
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
            let (line, col) = diagnostic::LineIndex::new(prefix).position(valid);
            return Err(refuse(
                line,
                col,
                "invalid UTF-8: rollway.toml must be UTF-8 text".to_owned(),
                "save the file as UTF-8, or remove the byte here",
            ));
        }
    };
    parse(&source, &name).map_err(ConfigError::Invalid)
}
