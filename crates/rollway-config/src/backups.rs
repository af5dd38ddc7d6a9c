//! `[backups.NAME]` (OPERATIONS.md "Backups and restores"): what is backed
//! up (a PostgreSQL database whose URL is a secret of the environment),
//! where it runs, when (a cron schedule, checked here with the model's
//! `croner` reader) and where the encrypted object is stored. Database
//! backups are taken on the deployer, or with `run_on = "host"` on the
//! environment's first host through its agent (the URL read from the
//! release's env file there, the dump encrypted there); media backups (a
//! directory on each host of the environment, `path`) always go through
//! the host agent; config backups (rollway.toml and the environment's env
//! file) on the deployer; all into a local directory. S3 storage is
//! refused at load with a "not supported yet" error rather than accepted
//! and ignored.

use rollway_model::maintenance::parse_cron;
use rollway_model::status::BackupKind;
use schemars::JsonSchema;
use serde::Serialize;

use crate::monitor::word_enum;
use crate::parse::{check_ident, check_name};
use crate::reader::{At, Table, closest};
use crate::schema;

word_enum! {
    /// Which machine runs the dump.
    RunOn ("run_on") {
        /// The machine `rollway` runs on.
        Deployer = "deployer",
        /// The host, through its agent: for a database, the environment's
        /// first host (one dump, not one per host); media is always taken
        /// on each host.
        Host = "host",
    }
}

/// `[backups.NAME]`: one backup definition.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct BackupConfig {
    /// The environment whose data this is; one of [environments].
    pub environment: String,
    /// database (PostgreSQL through pg_dump -Fc), media (the directory `path` on each host) or config (rollway.toml and the environment's env file as deployed).
    #[schemars(schema_with = "schema::backup_kind")]
    pub kind: BackupKind,
    /// deployer (default) or host: a database dumped on the environment's first host through its agent, with the URL of that host's current release and encrypted there before it is streamed back.
    #[serde(default = "default_run_on")]
    #[schemars(schema_with = "schema::run_on")]
    pub run_on: RunOn,
    /// When `rollway serve` takes it: a cron expression of five fields, e.g. "0 3 * * *".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Where backups are stored: a local directory (relative to rollway.toml or absolute).
    pub storage: String,
    /// For kind database: the variable of the environment holding the PostgreSQL URL, e.g. "DATABASE_URL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<String>,
    /// For kind media: the directory on each host, absolute or relative to the environment's root, e.g. "shared/uploads".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn default_run_on() -> RunOn {
    RunOn::Deployer
}

/// Reads one `[backups.NAME]`; `environments` are the environments' names.
pub(crate) fn read_backup(name: At<&str>, t: &mut Table<'_>, environments: &[&str]) -> Option<BackupConfig> {
    let cx = t.cx();
    check_name(cx, &name, "backup");
    let environment = t.str_at("environment");
    match &environment {
        None => t.require("environment", "add environment = \"NAME\": whose data this backs up"),
        Some(e) if !environments.contains(&e.v.as_str()) => cx.report(
            e.at,
            format!(
                "backup '{}' is of environment '{}', which is not an environment",
                name.v, e.v
            ),
            match closest(&e.v, environments.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("define [environments.{}], or name one of the environments", e.v),
            },
        ),
        Some(_) => {}
    }
    let kind = t.choice_at::<BackupKind>("kind");
    if kind.is_none() && !t.has("kind") {
        t.require("kind", "add kind = \"database\"");
    }
    let run_on = t.choice_at::<RunOn>("run_on");
    if let (Some(r), Some(k)) = (&run_on, &kind)
        && r.v == RunOn::Host
        && k.v == BackupKind::Config
    {
        cx.report(
            r.at,
            format!("{} \"host\" cannot take a config backup", t.name("run_on")),
            "remove run_on: a config backup is made where rollway.toml and the vault are, on the deployer",
        );
    }
    let schedule = t.str_at("schedule");
    if let Some(s) = &schedule
        && let Err(why) = parse_cron(&s.v)
    {
        cx.report(
            s.at,
            format!("{}: {why}", t.name("schedule")),
            "write five fields, e.g. \"0 3 * * *\" for every day at 03:00",
        );
    }
    let storage = t.str_at("storage");
    match &storage {
        None => t.require("storage", "add storage = \"DIRECTORY\": where backups are kept"),
        Some(s) if s.v.trim().is_empty() => cx.report(
            s.at,
            format!("{} is empty", t.name("storage")),
            "name a directory, e.g. storage = \"/var/backups/rollway\"",
        ),
        Some(s) if s.v.starts_with("s3://") => cx.report(
            s.at,
            format!("{} '{}': S3 storage is not supported yet", t.name("storage"), s.v),
            "use a local directory for now, e.g. storage = \"/var/backups/rollway\"",
        ),
        Some(s) if s.v.contains("://") => cx.report(
            s.at,
            format!("{} '{}' is not a directory path", t.name("storage"), s.v),
            "name a local directory, e.g. storage = \"/var/backups/rollway\"",
        ),
        Some(_) => {}
    }
    let url_secret = t.str_at("url_secret");
    match (&url_secret, kind.as_ref().map(|k| k.v)) {
        (Some(u), Some(k)) if k != BackupKind::Database => cx.report(
            u.at,
            format!(
                "{} is for kind database, and this backup is of kind {k}",
                t.name("url_secret")
            ),
            if k == BackupKind::Media {
                "remove url_secret: a media backup reads the directory named by path"
            } else {
                "remove url_secret: a config backup holds rollway.toml and the environment's env file"
            },
        ),
        (Some(u), _) => check_ident(cx, u, "url_secret"),
        (None, Some(BackupKind::Database)) => t.require(
            "url_secret",
            "add url_secret = \"DATABASE_URL\": the secret holding the database's URL",
        ),
        (None, _) => {}
    }
    let path = t.str_at("path");
    match (&path, kind.as_ref().map(|k| k.v)) {
        (None, Some(BackupKind::Media)) => t.require(
            "path",
            "add path = \"DIRECTORY\": the directory on each host, absolute or relative to the environment's root",
        ),
        (Some(p), Some(BackupKind::Media)) if p.v.trim().is_empty() => cx.report(
            p.at,
            format!("{} is empty", t.name("path")),
            "name the directory on each host, e.g. path = \"shared/uploads\"",
        ),
        (Some(p), Some(BackupKind::Media)) if p.v.contains('\0') => cx.report(
            p.at,
            format!("{} contains a NUL byte", t.name("path")),
            "name the directory on each host, e.g. path = \"shared/uploads\"",
        ),
        (Some(p), Some(k)) if k != BackupKind::Media => cx.report(
            p.at,
            format!("{} is for kind media, and this backup is of kind {k}", t.name("path")),
            "remove path",
        ),
        _ => {}
    }
    Some(BackupConfig {
        environment: environment?.v,
        kind: kind?.v,
        run_on: run_on.map_or(RunOn::Deployer, |r| r.v),
        schedule: schedule.map(|s| s.v),
        storage: storage?.v,
        url_secret: url_secret.map(|u| u.v),
        path: path.map(|p| p.v),
    })
}
