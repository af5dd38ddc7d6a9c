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
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            let files: u64 = a.contents.iter().map(|c| c.files).sum();
            let bytes: u64 = a.contents.iter().map(|c| c.bytes).sum();
            s.printer.fields(&[
                ("artifact", Cell::from(a.id.to_string())),
                ("kind", Cell::from(a.kind.as_str())),
                ("sha256", Cell::from(a.sha256.to_string())),
                ("content digest", Cell::from(a.content_digest.to_string())),
                (
                    "size",
                    Cell::from(format!("{} bytes packed, {files} files, {bytes} bytes", a.size_bytes)),
                ),
                (
                    "commit",
                    Cell::from(format!(
                        "{}{}",
                        or_dash(a.source_version.as_ref().map(ToString::to_string)),
                        if a.dirty { " (dirty)" } else { "" }
                    )),
                ),
                ("branch", Cell::from(or_dash(a.branch.clone()))),
                ("built", Cell::from(a.built_at.to_string())),
                ("expires", Cell::from(a.expires_at.to_string())),
                (
                    "aliases",
                    Cell::from(if a.aliases_resolved { "resolved" } else { "unresolved" }),
                ),
                ("location", Cell::from(a.location.clone())),
            ]);
            for l in &a.unresolved_aliases {
                s.printer.line(Tone::Warn, format!("  unresolved alias: {l}"));
            }
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
