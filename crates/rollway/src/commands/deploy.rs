//! `rollway deploy`, `rollway verify`, `rollway rollback` and `rollway
//! recover`: the app layer assembles and runs the deployment; this shows
//! its progress, its dry-run plan and how it ended.

use std::time::Duration;

use clap::Args;
use rollway_app::deploy::{DeployPlan, DeployRequest, Deployed};
use rollway_app::rollback::{RollbackPlan, RollbackRequest};
use rollway_app::{HostDryRun, Mode, Result};

use crate::output::{Tone, cell};
use crate::progress::CliProgress;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The environment to deploy to.
    pub env: String,
    /// An artifact id or digest (or a unique prefix); default: build one now.
    #[arg(long)]
    pub artifact: Option<String>,
    /// Say per host what would travel and which commands would run; run
    /// nothing (no build, no job) and change nothing, here or on the hosts.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list every file that would be linked, patched or sent.
    #[arg(long, short)]
    pub verbose: bool,
    /// A note kept with the deployment.
    #[arg(long)]
    pub note: Option<String>,
    /// The version tag (default: `git describe --tags --always`, else the digest prefix).
    #[arg(long)]
    pub version_tag: Option<String>,
    /// Wait this long for another deployment's lease (e.g. 30s).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Return once the stability window starts; `rollway verify ENV` resumes watching.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub env: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub env: String,
    /// Why (kept as the rollback reason); not needed with --dry-run.
    #[arg(long, required_unless_present = "dry_run")]
    pub reason: Option<String>,
    /// The deployment to return to (default: the previous succeeded one).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
    /// Render today's variables and secrets instead of the env file the
    /// release ran with.
    #[arg(long)]
    pub current_config: bool,
    /// Say which release it would return to, per host whether that is a
    /// switch or a ship, and the env file (masked); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list every file that would be shipped.
    #[arg(long, short)]
    pub verbose: bool,
    /// Also restore the database from the pre-migration backup taken before
    /// the first deployment after the one returned to (asks first on a terminal).
    #[arg(long, conflicts_with = "dry_run")]
    pub restore_db: bool,
    /// With --restore-db: do not ask (needed without a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    rollway_app::model::time::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    pub env: String,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lock_wait: Duration,
}

impl DeployArgs {
    fn request(&self) -> DeployRequest {
        DeployRequest {
            env: self.env.clone(),
            artifact: self.artifact.clone(),
            note: self.note.clone(),
            version_tag: self.version_tag.clone(),
            lock_wait: self.lock_wait,
            detach: self.detach,
            overrides: Default::default(),
            verbose: self.verbose,
        }
    }
}

pub fn deploy(s: &Session, args: DeployArgs) -> Result<()> {
    let req = args.request();
    if args.dry_run {
        let plan = rollway_app::deploy::plan(s, &req)?;
        print_deploy_plan(s, &plan);
        return Ok(());
    }
    let progress = CliProgress::new(&s.printer);
    let deployed = rollway_app::deploy::deploy(s, req, &progress)?;
    print_deployed(s, &deployed);
    Ok(())
}

/// How a deployment ended, for people and machines.
pub fn print_deployed(s: &Session, deployed: &Deployed) {
    s.printer.answer(deployed);
    match deployed {
        Deployed::Succeeded {
            deployment,
            phases_line,
            ..
        } => {
            if !phases_line.is_empty() {
                s.printer.line(Tone::Dim, format!("phases: {phases_line}"));
            }
            s.printer
                .line(Tone::Good, format!("deployment {} succeeded", deployment.id));
        }
        Deployed::Detached { deployment, .. } => {
            s.printer.line(
                Tone::Warn,
                format!(
                    "deployment {} is in its stability window; run `rollway verify {}` to watch it",
                    deployment.id, deployment.environment
                ),
            );
        }
    }
}

pub fn verify(s: &Session, args: VerifyArgs) -> Result<()> {
    let progress = CliProgress::new(&s.printer);
    let deployed = rollway_app::deploy::verify(s, &args.env, &progress)?;
    print_deployed(s, &deployed);
    Ok(())
}

pub fn rollback(s: &Session, args: RollbackArgs) -> Result<()> {
    let req = RollbackRequest {
        env: args.env,
        reason: args.reason,
        to: args.to,
        lock_wait: args.lock_wait,
        current_config: args.current_config,
        verbose: args.verbose,
        restore_db: args.restore_db,
    };
    if args.restore_db && !args.yes {
        let b = rollway_app::rollback::restore_db_backup(s, &req)?;
        let question = format!(
            "restore the database of {} from pre-migration backup {} ({}, taken {}), replacing what is there now?",
            req.env, b.id, b.name, b.created_at
        );
        let confirmed = s
            .printer
            .confirm(&question)
            .map_err(|e| rollway_app::Error::from(anyhow::anyhow!("cannot read the answer from the terminal: {e}")))?;
        if !confirmed {
            return Err(rollway_app::Error::invalid(format_args!(
                "rollback of {} with --restore-db not confirmed: nothing was changed (pass --yes to confirm without a terminal)",
                req.env
            )));
        }
    }
    if args.dry_run {
        let plan = rollway_app::rollback::plan(s, &req)?;
        print_rollback_plan(s, &plan);
        return Ok(());
    }
    let progress = CliProgress::new(&s.printer);
    let deployed = rollway_app::rollback::rollback(s, req, &progress)?;
    print_deployed(s, &deployed);
    Ok(())
}

pub fn recover(s: &Session, args: RecoverArgs) -> Result<()> {
    let progress = CliProgress::new(&s.printer);
    let recovered = rollway_app::deploy::recover(s, &args.env, args.lock_wait, &progress)?;
    s.printer.answer(&recovered);
    if recovered.recovered.is_empty() {
        s.printer
            .line(Tone::Good, format!("{}: nothing was left in progress", args.env));
    }
    for id in &recovered.recovered {
        s.printer
            .line(Tone::Warn, format!("{}: settled interrupted deployment {id}", args.env));
    }
    Ok(())
}

fn print_deploy_plan(s: &Session, plan: &DeployPlan) {
    if !plan.jobs.is_empty() {
        s.printer.line(
            Tone::Plain,
            format!("would run jobs: {} (not run in a dry run)", plan.jobs.join(", ")),
        );
    }
    let mut wave = 0;
    for st in &plan.stacks {
        if st.wave != wave {
            wave = st.wave;
            let names: Vec<&str> = plan
                .stacks
                .iter()
                .filter(|x| x.wave == wave)
                .map(|x| x.stack.as_str())
                .collect();
            s.printer
                .line(Tone::Plain, format!("wave {wave}: {}", names.join(", ")));
        }
        if st.release {
            s.printer
                .line(Tone::Dim, format!("  {}: ship the artifact to the hosts", st.stack));
        }
        for (phase, c) in st.commands() {
            s.printer.line(Tone::Dim, format!("  {} {phase}: {c}", st.stack));
        }
    }
    if let Some(first) = &plan.build_first {
        let what = match &first.command {
            Some(c) => format!("would build first (`{c}`, not run in a dry run)"),
            None => "would pack the build output first (not done in a dry run)".to_owned(),
        };
        match &first.planned_from {
            Some((id, digest)) => s.printer.line(
                Tone::Plain,
                format!("{what}; planned from the last artifact built, {id} ({digest})"),
            ),
            None => s.printer.line(Tone::Plain, format!("{what}; no artifact exists yet")),
        }
    }
    if plan.ships {
        print_hosts(s, &plan.hosts, "");
    }
    s.printer.line(Tone::Good, "dry run: nothing was changed");
    s.printer.answer(plan);
}

fn print_rollback_plan(s: &Session, plan: &RollbackPlan) {
    s.printer.line(
        Tone::Plain,
        format!(
            "rollback of {} would return from {} to release {}{}",
            plan.environment,
            plan.from,
            plan.to,
            plan.version_tag.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        ),
    );
    print_hosts(s, &plan.hosts, &plan.env);
    s.printer.line(Tone::Good, "dry run: nothing was changed");
    s.printer.answer(plan);
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Per host, what would travel (counts and bytes; every file when listed)
/// and which commands would run; then a table, and the env file (masked).
fn print_hosts(s: &Session, hosts: &[HostDryRun], env_file: &str) {
    let mut rows = Vec::new();
    for h in hosts {
        let current = h.current.as_deref().unwrap_or("none");
        s.printer.line(Tone::Plain, format!("{} ({})", h.host, h.root));
        match h.mode {
            Mode::Switch => s.printer.line(
                Tone::Dim,
                format!(
                    "  current {current}; switch: release {} is still on the host, 0 bytes shipped",
                    h.switch_to.as_deref().unwrap_or_default()
                ),
            ),
            Mode::Ship => s.printer.line(
                Tone::Dim,
                format!(
                    "  current {current}; ship: {} file(s) linked ({}), {} patched ({}) against {}, {} sent whole ({})",
                    h.files_linked,
                    bytes(h.bytes_linked),
                    h.files_patched,
                    bytes(h.bytes_patched),
                    h.base.as_deref().unwrap_or("-"),
                    h.files_sent,
                    bytes(h.bytes_sent),
                ),
            ),
            Mode::BuildFirst => s.printer.line(
                Tone::Dim,
                format!("  current {current}; no artifact built yet: the files are known once it is built"),
            ),
        }
        let listed = h
            .patches
            .iter()
            .flatten()
            .map(|f| ("patch", f))
            .chain(h.whole.iter().flatten().map(|f| ("send", f)));
        for (what, f) in listed {
            s.printer
                .line(Tone::Dim, format!("  {what:<5} {} ({} B)", f.path, f.bytes));
        }
        for c in &h.commands {
            s.printer.line(Tone::Dim, format!("  run   {c}"));
        }
        rows.push(vec![
            cell(h.host.clone(), Tone::Plain),
            cell(h.mode.as_str(), Tone::Plain),
            cell(h.files_linked.to_string(), Tone::Plain),
            cell(h.files_patched.to_string(), Tone::Plain),
            cell(h.files_sent.to_string(), Tone::Plain),
            cell(bytes(h.bytes_patched + h.bytes_sent), Tone::Plain),
        ]);
    }
    s.printer
        .table(&["HOST", "MODE", "LINKED", "PATCHED", "WHOLE", "BYTES"], &rows);
    if !env_file.is_empty() {
        s.printer.line(Tone::Plain, "env file (masked):");
        for l in env_file.lines() {
            s.printer.line(Tone::Dim, format!("  {l}"));
        }
    }
}
