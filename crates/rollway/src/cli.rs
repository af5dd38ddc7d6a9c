//! Command-line grammar (clap) and dispatch: every command runs in a
//! `Session` and its error becomes one exit code and one message.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rollway_app::Note;
use rollway_app::service::ServiceOp;

use crate::commands;
use crate::output::{Printer, Tone};
use crate::session::Session;

/// Ship an application to its servers and keep watching it.
#[derive(Debug, Parser)]
#[command(name = "rollway", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 the operation failed, 2 invalid input, 3 conflict (lock held, forbidden transition), 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The project file.
    #[arg(long, global = true, default_value = "rollway.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Where Rollway keeps its state (default: `.rollway/` beside the config).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The store: a SQLite path or `postgres://…` (default: SQLite in the state directory).
    #[arg(
        long,
        global = true,
        env = "ROLLWAY_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Create a new SQLite store at `--store PATH` when none exists there
    /// (the default store in the state directory is always created).
    #[arg(long, global = true)]
    pub create_store: bool,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting (default: $ROLLWAY_OPERATOR, the git user email, user@hostname).
    #[arg(long, global = true, value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented rollway.toml in the current directory.
    Init(commands::init::InitArgs),
    /// Check rollway.toml or print its JSON Schema.
    #[command(subcommand)]
    Config(commands::config::ConfigCmd),
    /// List, show, activate and deprecate environments.
    #[command(subcommand)]
    Env(commands::env::EnvCmd),
    /// List the audit events or verify their hash chain.
    #[command(subcommand)]
    Events(commands::events::EventsCmd),
    /// List the monitors, probe or show one, push samples from elsewhere.
    #[command(subcommand)]
    Monitor(commands::monitor::MonitorCmd),
    /// Monthly uptime per monitor (seed 003): downtime, maintenance, no data, target verdict.
    Uptime(commands::uptime::UptimeArgs),
    /// An environment's error budget and burn rates (5m, 30m, 1h, 6h, 3d) with the page and ticket rules.
    Slo(commands::uptime::SloArgs),
    /// An environment's seed 003 metric records: latest health check, 5-minute average, hourly error rate, monthly uptime, with thresholds and status.
    Metrics(commands::metrics::MetricsArgs),
    /// Maintenance windows, removed from both the downtime and the period.
    #[command(subcommand)]
    Maintenance(commands::uptime::MaintenanceCmd),
    /// Alerts serve opened: list, show, acknowledge, resolve.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCmd),
    /// Business metrics for alert rules: push a value.
    #[command(subcommand)]
    Metric(commands::alerts::MetricCmd),
    /// Database backups: create, list, show, verify, prune.
    #[command(subcommand)]
    Backup(commands::backup::BackupCmd),
    /// Restore a backup into its database (or --to another), after verifying it.
    Restore(commands::backup::RestoreArgs),
    /// Keep watching: probe the monitors, store and roll up samples, serve /healthz, /readyz and /metrics.
    Serve(commands::serve::ServeArgs),
    /// Variables and secrets: age-encrypted, masked everywhere.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCmd),
    /// Run the [jobs] DAG; list, show, follow and cancel runs.
    #[command(subcommand)]
    Pipeline(commands::pipeline::PipelineCmd),
    /// Build a sample app and deploy it to a local target: v1, then a broken v2 rolled back by itself.
    Demo(commands::demo::DemoArgs),
    /// Ship a release to an environment, verify it, roll back by itself when it is not healthy.
    Deploy(commands::deploy::DeployArgs),
    /// Resume watching a detached deployment's stability window (a fresh full window when it ended unwatched).
    Verify(commands::deploy::VerifyArgs),
    /// Return an environment to an earlier release as it ran (a new deployment of kind rollback).
    Rollback(commands::deploy::RollbackArgs),
    /// Settle what a crashed run left in progress: fail it and return its hosts.
    Recover(commands::deploy::RecoverArgs),
    /// Stop the service on every host of an environment.
    Stop(commands::service::ServiceArgs),
    /// Start the service on every host of an environment.
    Start(commands::service::ServiceArgs),
    /// Restart the service on every host of an environment.
    Restart(commands::service::ServiceArgs),
    /// The service's last output lines on every host (masked).
    Logs(commands::service::LogsArgs),
    /// Run the build and pack its output into a checksummed artifact.
    Build(commands::build::BuildArgs),
    /// List, show, verify and prune artifacts.
    #[command(subcommand)]
    Artifact(commands::build::ArtifactCmd),
    /// What each environment runs now, and what is in progress.
    Status(commands::deploys::StatusArgs),
    /// Every deployment: transitions with times, reasons, host results.
    History(commands::deploys::HistoryArgs),
    /// Print a shell completion script.
    Completions(commands::meta::CompletionsArgs),
    /// Print the man page (or write one per command with --dir).
    Man(commands::meta::ManArgs),
    /// The host agent (run by the deployer, locally or over ssh).
    #[command(hide = true)]
    Agent(commands::agent::AgentArgs),
    /// Rollway's own supervisor (run on a host by the agent).
    #[command(hide = true)]
    Supervise(commands::host::SuperviseArgs),
    /// Run a one-off command in the current release of an environment's hosts, with the release's variables.
    Exec(commands::host::ExecArgs),
}

/// Parses the arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, std::env::args().skip(1).any(|a| a == "secrets")),
    };
    let printer = Printer::new(cli.global.json, rollway_app::Masks::default());
    let session = Session::new(cli.global.clone(), printer.clone());
    let result = match cli.command {
        Command::Init(args) => commands::init::run(&session, args),
        Command::Config(cmd) => commands::config::run(&session, cmd),
        Command::Env(cmd) => commands::env::run(&session, cmd),
        Command::Events(cmd) => commands::events::run(&session, cmd),
        Command::Monitor(cmd) => commands::monitor::run(&session, cmd),
        Command::Uptime(args) => commands::uptime::uptime(&session, args),
        Command::Slo(args) => commands::uptime::slo(&session, args),
        Command::Metrics(args) => commands::metrics::run(&session, args),
        Command::Maintenance(cmd) => commands::uptime::maintenance(&session, cmd),
        Command::Alerts(cmd) => commands::alerts::run(&session, cmd),
        Command::Metric(cmd) => commands::alerts::metric(&session, cmd),
        Command::Backup(cmd) => commands::backup::run(&session, cmd),
        Command::Restore(args) => commands::backup::restore(&session, args),
        Command::Serve(args) => commands::serve::run(&session, args),
        Command::Secrets(cmd) => commands::secrets::run(&session, cmd),
        Command::Pipeline(cmd) => commands::pipeline::run(&session, cmd),
        Command::Demo(args) => commands::demo::run(&session, args),
        Command::Deploy(args) => commands::deploy::deploy(&session, args),
        Command::Verify(args) => commands::deploy::verify(&session, args),
        Command::Rollback(args) => commands::deploy::rollback(&session, args),
        Command::Recover(args) => commands::deploy::recover(&session, args),
        Command::Stop(args) => commands::service::control(&session, args, ServiceOp::Stop),
        Command::Start(args) => commands::service::control(&session, args, ServiceOp::Start),
        Command::Restart(args) => commands::service::control(&session, args, ServiceOp::Restart),
        Command::Logs(args) => commands::service::logs(&session, args),
        Command::Build(args) => commands::build::build(&session, args),
        Command::Artifact(cmd) => commands::build::artifact(&session, cmd),
        Command::Status(args) => commands::deploys::status(&session, args),
        Command::History(args) => commands::deploys::history(&session, args),
        Command::Completions(args) => commands::meta::completions(&session, args),
        Command::Man(args) => commands::meta::man(&session, args),
        Command::Agent(args) => commands::agent::run(&session, args),
        Command::Supervise(args) => commands::host::supervise(&session, args),
        Command::Exec(args) => commands::host::exec(&session, args),
    };
    match result {
        Ok(()) => 0,
        Err(err) => report(&printer, &err),
    }
}

/// Prints clap's usage error and returns its exit code. Under `secrets`
/// the argument clap did not expect (or could not take) may be a value, so
/// it is shown as `****`, never echoed.
fn usage_error(e: &clap::Error, secrets: bool) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !secrets || informational {
        let _ = e.print();
        return e.exit_code();
    }
    let mut text = e.render().to_string();
    for kind in [ContextKind::InvalidArg, ContextKind::InvalidValue] {
        if let Some(ContextValue::String(v)) = e.get(kind) {
            text = redact_arg(&text, v);
        }
    }
    let _ = write!(anstream::stderr(), "{text}");
    e.exit_code()
}

/// `text` with every quoted or `--`-passed occurrence of `arg` as `****`;
/// a `--flag=VALUE` argument keeps its flag.
fn redact_arg(text: &str, arg: &str) -> String {
    let shown = match arg.split_once('=') {
        Some((flag, _)) if flag.starts_with("--") => format!("{flag}=****"),
        _ => "****".to_owned(),
    };
    text.replace(&format!("'{arg}'"), &format!("'{shown}'"))
        .replace(&format!("-- {arg}"), &format!("-- {shown}"))
}

/// Prints an error once, in the printer's mode, after its notes, and
/// returns its exit code.
fn report(printer: &Printer, err: &rollway_app::Error) -> i32 {
    let code = err.code().exit_code();
    print_notes(printer, err.notes());
    match err.diagnostics() {
        Some(d) => {
            if !printer.is_json() {
                for diag in &d.0 {
                    printer.stderr_line(Tone::Plain, &diag.to_string());
                }
            }
            let n = d.0.len();
            let file = d.0.first().map_or("rollway.toml", |x| x.file.as_str());
            let msg = format!(
                "{n} problem{} in {file}; fix {} and run `rollway config check` again",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" }
            );
            printer.error(code, &msg, serde_json::to_value(&d.0).ok());
        }
        None => printer.error(code, &err.to_string(), err.details().cloned()),
    }
    code
}

/// What an error says before its message: a check's problems, warnings,
/// a failed deployment's phases.
pub fn print_notes(printer: &Printer, notes: &[Note]) {
    for note in notes {
        match note {
            Note::Problem(text) => printer.stderr_line(Tone::Plain, text),
            Note::Warning(text) => printer.stderr_line(Tone::Warn, text),
            Note::Phases(text) => printer.line(Tone::Dim, format!("phases: {text}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn usage_errors_under_secrets_never_echo_the_argument() {
        let check = |args: &[&str], expected: &str, hidden: &str| {
            let e = Cli::try_parse_from(args).expect_err("a usage error");
            let mut text = e.render().to_string();
            for kind in [
                clap::error::ContextKind::InvalidArg,
                clap::error::ContextKind::InvalidValue,
            ] {
                if let Some(clap::error::ContextValue::String(v)) = e.get(kind) {
                    text = redact_arg(&text, v);
                }
            }
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains(hidden), "{text}");
        };
        check(
            &["rollway", "secrets", "rotate", "staging", "KEY", "s3cr3t-value"],
            "unexpected argument '****'",
            "s3cr3t-value",
        );
        check(
            &["rollway", "secrets", "rm", "staging", "KEY", "--value=s3cr3t-value"],
            "unexpected argument '****'",
            "s3cr3t-value",
        );
    }

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
