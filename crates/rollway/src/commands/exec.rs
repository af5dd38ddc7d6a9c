//! `rollway exec ENV [--host H] -- COMMAND…`: a one-off command in the
//! current release on each host (like `kamal app exec` or `dokku run`),
//! run by the app layer; this prints each host's output as it comes.

use std::ffi::OsString;
use std::time::Duration;

use rollway_app::Result;

use crate::output::Tone;
use crate::session::Session;

pub fn run(s: &Session, env: &str, only: Option<&str>, timeout: Duration, command: &[OsString]) -> Result<()> {
    let words: Vec<String> = command.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    let answers = rollway_app::service::exec(s, env, only, timeout, &words, &mut |ran| {
        for l in ran.output.lines() {
            s.printer.line(Tone::Plain, format!("{} │ {l}", ran.host));
        }
    })?;
    s.printer.answer(&answers);
    Ok(())
}
