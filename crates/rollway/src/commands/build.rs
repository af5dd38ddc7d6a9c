//! `rollway build` and `rollway artifact list|show|verify|prune`: the app
//! layer builds, packs and looks after artifacts; this prints what it did.

use clap::{Args, Subcommand};
use rollway_app::Result;

use crate::output::{Cell, Tone};
use crate::progress::CliProgress;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Run the build with this environment's variables (and refuse files holding its secrets).
    #[arg(long = "env", value_name = "ENV")]
    pub env: Option<String>,
    /// Pack `build.output` as it is, without running `build.command`.
    #[arg(long)]
    pub skip_command: bool,
}

#[derive(Debug, Subcommand)]
pub enum ArtifactCmd {
    /// Every artifact, newest first.
    List,
    /// One artifact's record (id, digest or a unique prefix).
    Show { id: String },
    /// Re-hash an artifact (id, digest, prefix or archive path) against its record.
    Verify { artifact: String },
    /// Remove expired artifacts, never a current release or a rollback target.
    Prune {
        /// Say what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn build(s: &Session, args: BuildArgs) -> Result<()> {
    let progress = CliProgress::new(&s.printer);
    let artifact = rollway_app::build::build(s, args.env.as_deref(), !args.skip_command, &progress)?;
    s.printer.json(&artifact);
    Ok(())
}

pub fn artifact(s: &Session, cmd: ArtifactCmd) -> Result<()> {
    match cmd {
        ArtifactCmd::List => {
            let all = rollway_app::build::artifacts(s)?;
            s.printer.json(&all);
            let rows: Vec<Vec<Cell>> = all
                .iter()
                .map(|a| {
                    vec![
                        Cell::from(a.id.to_string()),
                        Cell::from(a.short_digest().to_owned()),
                        Cell::from(a.kind.as_str()),
                        Cell::from(a.size_bytes.to_string()),
                        Cell::from(a.built_at.to_string()),
                        Cell::from(a.expires_at.to_string()),
                    ]
                })
                .collect();
            s.printer
                .table(&["ID", "SHA256", "KIND", "BYTES", "BUILT", "EXPIRES"], &rows);
        }
        ArtifactCmd::Show { id } => {
            let a = rollway_app::build::artifact(s, &id)?;
            s.printer.json(&a);
            s.printer.line(Tone::Plain, serde_json::to_string_pretty(&a)?);
        }
        ArtifactCmd::Verify { artifact } => {
            let report = rollway_app::build::verify_artifact(s, &artifact)?;
            s.printer.answer(&report);
            s.printer.line(
                Tone::Good,
                format!(
                    "artifact {} is intact: {} files, sha256 {}",
                    report.artifact, report.files, report.sha256
                ),
            );
        }
        ArtifactCmd::Prune { dry_run } => {
            let pruned = rollway_app::build::prune(s, dry_run)?;
            s.printer.answer(&pruned);
            for a in &pruned.removed {
                s.printer.line(
                    Tone::Plain,
                    format!(
                        "{} {} (expired {})",
                        if dry_run { "would remove" } else { "removed" },
                        a.id,
                        a.expires_at
                    ),
                );
            }
            if pruned.removed.is_empty() {
                s.printer.line(Tone::Dim, "nothing to prune");
            }
        }
    }
    Ok(())
}
