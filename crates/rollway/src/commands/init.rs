//! `rollway init`: writes the commented template that `config check` passes,
//! and a `.gitignore` beside it that keeps the state directory and the
//! local staging root out of git.

use std::fs;

use anyhow::Context as _;
use clap::Args;

use crate::output::Tone;
use crate::session::Session;
use rollway_app::Error;
use rollway_app::Result;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
    /// Declare the variables of a known app: strapi (seed 002) or rag-app (seed 001).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(rollway_config::PRESETS))]
    pub preset: Option<String>,
}

pub fn run(s: &Session, args: InitArgs) -> Result<()> {
    let path = s.config_path();
    if path.exists() && !args.force {
        return Err(Error::invalid(format_args!(
            "{} already exists: pass --force to overwrite it",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = rollway_config::template_for(args.preset.as_deref()).map_err(Error::invalid)?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let ignore = path.with_file_name(".gitignore");
    let added = ignore_local_state(&ignore)?;
    s.printer
        .json(&serde_json::json!({ "written": path, "gitignore": ignore, "ignored": added }));
    s.printer.line(Tone::Good, format!("wrote {}", path.display()));
    if !added.is_empty() {
        s.printer
            .line(Tone::Good, format!("{} ignores {}", ignore.display(), added.join(" ")));
    }
    s.printer
        .line(Tone::Dim, "next: edit it, then run `rollway config check`");
    Ok(())
}

/// What `rollway init` keeps out of git: the state directory (store, logs,
/// artifacts), the template's local staging root, and the lock files that
/// sit beside the committed `ENV.age` secrets files while they change.
const IGNORED: [&str; 3] = ["/.rollway/", "/srv/", "*.age.lock"];

/// Adds the lines of [`IGNORED`] that `path` lacks (creating it), keeping
/// whatever it already says; returns the lines added.
fn ignore_local_state(path: &std::path::Path) -> Result<Vec<&'static str>> {
    let old = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot read {}", path.display()))
                .into());
        }
    };
    // `/.rollway/`, `.rollway/`, `/.rollway` and `.rollway` all ignore it.
    let bare = |l: &str| l.trim().trim_start_matches('/').trim_end_matches('/').to_owned();
    let has = |line: &str| old.lines().any(|l| bare(l) == bare(line));
    let added: Vec<&str> = IGNORED.into_iter().filter(|l| !has(l)).collect();
    if added.is_empty() {
        return Ok(added);
    }
    let mut text = old;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# rollway: the state directory, the local staging root, secrets file locks\n");
    for l in &added {
        text.push_str(l);
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(added)
}
