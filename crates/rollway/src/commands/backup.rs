//! `rollway backup create|list|show|verify|prune` and `rollway restore`:
//! database and media backups of `[backups.NAME]`, age-encrypted into a
//! local storage directory or an S3-compatible bucket, verified and
//! restored through restore jobs.

use clap::{Args, Subcommand};
use rollway_app::Result;
use rollway_app::model::status::{BackupKind, BackupStatus, RestoreStatus};
use rollway_app::model::{Backup, Restore};

use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Take a backup of [backups.NAME] now: dump, encrypt, hash, store.
    Create {
        name: String,
        /// Taken by hand: kept a year by the manual class, never by daily/weekly/monthly.
        #[arg(long)]
        manual: bool,
        /// Record it as taken at this time (RFC 3339): for imports and tests.
        #[arg(long, value_name = "T", hide = true)]
        at: Option<String>,
    },
    /// The backups, newest first.
    List {
        /// Only this environment's.
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
    },
    /// One backup (by id or a unique prefix) with its restore jobs.
    Show { id: String },
    /// Check a backup: SHA-256 of the stored bytes, decryption, pg_restore --list (media: the tar read through).
    Verify {
        id: String,
        /// Also restore it into a scratch database on its server (dropped
        /// after) and compare the schema and every table's rows with the archive.
        #[arg(long)]
        restore_test: bool,
    },
    /// Expire the backups no retention class keeps: delete their objects, keep their records.
    Prune {
        /// Show which class keeps each survivor and what would expire; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Judge retention at this time (RFC 3339) instead of now: for tests.
        #[arg(long, value_name = "T", hide = true)]
        now: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: its id or a unique prefix.
    pub id: String,
    /// The database to restore into, from this machine (default: the backup's own URL secret,
    /// on the host it was taken on for run_on = "host"); for a media backup, the directory on the
    /// host, absolute or relative to its root (default: the backup's own path).
    #[arg(long, value_name = "URL|PATH")]
    pub to: Option<String>,
    /// For a media backup, or a database taken with run_on = "host": the host to restore onto
    /// (default: the one it was taken on).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Restore into a database that is not empty, replacing what the backup holds.
    #[arg(long)]
    pub force: bool,
}

fn status_cell(b: &Backup) -> Cell {
    let s = b.status();
    cell(
        s.as_str(),
        match s {
            BackupStatus::Completed => Tone::Good,
            BackupStatus::InProgress => Tone::Warn,
            BackupStatus::Failed => Tone::Bad,
            BackupStatus::Expired => Tone::Dim,
        },
    )
}

fn restore_cell(r: &Restore) -> Cell {
    let s = r.status();
    cell(
        s.as_str(),
        match s {
            RestoreStatus::Success => Tone::Good,
            RestoreStatus::Pending | RestoreStatus::Running => Tone::Warn,
            RestoreStatus::Failed => Tone::Bad,
        },
    )
}

fn opt(v: Option<String>) -> Cell {
    Cell::from(v.unwrap_or_else(|| "-".to_owned()))
}

fn row(b: &Backup) -> Vec<Cell> {
    vec![
        Cell::from(b.id.to_string()),
        status_cell(b),
        Cell::from(b.environment.clone()),
        Cell::from(b.name.clone()),
        Cell::from(b.class.as_str()),
        Cell::from(b.size_bytes.to_string()),
        Cell::from(b.created_at.to_string()),
    ]
}

const HEADERS: [&str; 7] = ["ID", "STATUS", "ENV", "NAME", "CLASS", "BYTES", "CREATED"];

fn fields(s: &Session, b: &Backup) {
    // A media backup's host and directory stand where a database's name does.
    // A database taken on a host (run_on = "host") names that host too.
    let source = match (&b.host, &b.path) {
        (Some(h), Some(p)) => ("directory", Cell::from(format!("{h}:{p}"))),
        (Some(h), None) => (
            "database",
            Cell::from(format!("{} on {h}", b.database_name.as_deref().unwrap_or("-"))),
        ),
        _ => ("database", opt(b.database_name.clone())),
    };
    s.printer.fields(&[
        ("id", Cell::from(b.id.to_string())),
        ("status", status_cell(b)),
        ("environment", Cell::from(b.environment.clone())),
        ("name", Cell::from(b.name.clone())),
        ("kind", Cell::from(b.kind.as_str())),
        ("class", Cell::from(b.class.as_str())),
        source,
        ("location", Cell::from(b.location.clone())),
        ("bytes", Cell::from(b.size_bytes.to_string())),
        ("sha256", opt(b.checksum.as_ref().map(ToString::to_string))),
        ("created", Cell::from(b.created_at.to_string())),
        ("finished", opt(b.finished_at.map(|t| t.to_string()))),
        ("expires", Cell::from(b.expires_at.to_string())),
        ("deployment", opt(b.deployment_id.map(|d| d.to_string()))),
        ("failure", opt(b.failure.clone())),
    ]);
}

pub fn run(s: &Session, cmd: BackupCmd) -> Result<()> {
    match cmd {
        BackupCmd::Create { name, manual, at } => {
            let all =
                crate::progress::with_transfer_bar(&s.printer, &format!("backup {name}"), s.backup_meter(), || {
                    rollway_app::backup::create(s, &name, manual, at.as_deref())
                })?;
            // A database backup answers one object; a media backup a list,
            // one per host.
            match all.as_slice() {
                [b] if b.kind == BackupKind::Database => s.printer.answer(b),
                _ => s.printer.answer(&all),
            }
            for b in &all {
                let on = b.host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default();
                s.printer.line(
                    Tone::Good,
                    format!(
                        "backup {} of {}{on} completed: {} bytes, sha256 {}",
                        b.id,
                        b.name,
                        b.size_bytes,
                        b.checksum.as_ref().map(ToString::to_string).unwrap_or_default()
                    ),
                );
            }
        }
        BackupCmd::List { env } => {
            let all = rollway_app::backup::list(s, env.as_deref())?;
            s.printer.answer(&all);
            if all.is_empty() {
                s.printer.line(Tone::Dim, "no backups");
            } else {
                let rows: Vec<Vec<Cell>> = all.iter().map(row).collect();
                s.printer.table(&HEADERS, &rows);
            }
            // The schedules, for people: a missed or failed run stands out.
            for st in rollway_app::backup::schedules(s, env.as_deref())? {
                let (Some(at), Some(outcome)) = (st.occurrence, st.outcome) else {
                    continue;
                };
                let word = serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let tone = if outcome.is_bad() { Tone::Bad } else { Tone::Dim };
                s.printer.line(
                    tone,
                    format!("schedule of {} ({}): the run of {at} {word}", st.name, st.schedule),
                );
            }
        }
        BackupCmd::Show { id } => {
            let shown = rollway_app::backup::show(s, &id)?;
            s.printer.answer(&shown);
            fields(s, &shown.backup);
            let rows: Vec<Vec<Cell>> = shown
                .restores
                .iter()
                .map(|r| {
                    vec![
                        Cell::from(r.id.to_string()),
                        restore_cell(r),
                        Cell::from(r.target.clone()),
                        Cell::from(r.started_at.to_string()),
                        opt(r.finished_at.map(|t| t.to_string())),
                        opt(r.notes.clone()),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                s.printer
                    .table(&["RESTORE", "STATUS", "TARGET", "STARTED", "FINISHED", "NOTES"], &rows);
            }
        }
        BackupCmd::Verify { id, restore_test } => {
            let v = rollway_app::backup::verify(s, &id, restore_test)?;
            s.printer.answer(&v);
            s.printer.line(
                Tone::Good,
                if v.backup.kind == BackupKind::Media {
                    format!(
                        "backup {} of {} verified: sha256 matches, it decrypts, its tar reads through ({} entries)",
                        v.backup.id, v.backup.name, v.entries
                    )
                } else {
                    format!(
                        "backup {} of {} verified: sha256 matches, it decrypts, pg_restore lists {} entries",
                        v.backup.id, v.backup.name, v.entries
                    )
                },
            );
            if let Some(t) = &v.restore_test {
                s.printer.line(
                    Tone::Good,
                    format!(
                        "restore test: restored into {} (dropped again); its schema ({} lines) and the rows of its {} tables ({} rows) equal the archive's",
                        t.database, t.schema_lines, t.tables, t.rows
                    ),
                );
            }
        }
        BackupCmd::Prune { dry_run, now } => {
            let r = rollway_app::backup::prune(s, dry_run, now.as_deref())?;
            s.printer.answer(&r);
            let mut rows: Vec<Vec<Cell>> = r
                .kept
                .iter()
                .map(|k| {
                    let classes: Vec<&str> = k.classes.iter().map(|c| c.as_str()).collect();
                    vec![
                        Cell::from(k.backup.id.to_string()),
                        Cell::from(k.backup.name.clone()),
                        Cell::from(k.backup.created_at.to_string()),
                        cell(format!("kept by {}", classes.join(", ")), Tone::Good),
                    ]
                })
                .collect();
            rows.extend(r.expired.iter().map(|b| {
                vec![
                    Cell::from(b.id.to_string()),
                    Cell::from(b.name.clone()),
                    Cell::from(b.created_at.to_string()),
                    cell(if r.dry_run { "would expire" } else { "expired" }, Tone::Dim),
                ]
            }));
            if rows.is_empty() {
                s.printer.line(Tone::Dim, "no completed backups");
                return Ok(());
            }
            s.printer.table(&["ID", "NAME", "CREATED", "RETENTION"], &rows);
            s.printer.line(
                Tone::Dim,
                format!(
                    "{} kept, {} {}",
                    r.kept.len(),
                    r.expired.len(),
                    if r.dry_run {
                        "would expire (dry run: nothing changed)"
                    } else {
                        "expired"
                    }
                ),
            );
        }
    }
    Ok(())
}

pub fn restore(s: &Session, args: RestoreArgs) -> Result<()> {
    let r = crate::progress::with_transfer_bar(&s.printer, &format!("restore {}", args.id), s.backup_meter(), || {
        rollway_app::backup::restore(s, &args.id, args.to.as_deref(), args.host.as_deref(), args.force)
    })?;
    s.printer.answer(&r);
    s.printer.line(
        Tone::Good,
        format!("restore {} of backup {} into {} succeeded", r.id, r.backup_id, r.target),
    );
    Ok(())
}
