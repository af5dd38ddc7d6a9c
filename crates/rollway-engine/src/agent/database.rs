//! Database backups taken on the host (`[backups.NAME] run_on = "host"`):
//! the agent finds the database's URL in the current release's env file
//! (so no secret crosses the wire), dumps it through the PostgreSQL tools
//! the binary hands in ([`Databases`]: the engine runs none itself), and
//! age-encrypts the dump on the host before a byte of it leaves; a restore
//! feeds a clear archive from the deployer into `pg_restore` on the host.
//!
//! Every error that can carry text from the tools passes a masker armed
//! with the env file's values, so a URL's password never travels back.

use std::io::{self, Read, Write};
use std::str::FromStr as _;

use rollway_model::Masker;
use rollway_secrets::Recipient;

use crate::layout::HostLayout;

/// The PostgreSQL client tools as the agent uses them (`pg_dump -Fc`,
/// `psql`, `pg_restore`), supplied by the binary so the engine holds no
/// copy of them; a URL's password reaches them only through `PGPASSWORD`.
pub trait Databases {
    /// `pg_dump -Fc` of `url` streamed into `out`.
    fn dump(&self, url: &str, out: &mut dyn Write) -> Result<(), String>;
    /// Whether the database holds no relation of its own yet.
    fn is_empty(&self, url: &str) -> Result<bool, String>;
    /// `pg_restore` of the archive read from `input` into `url`, in one
    /// transaction; `clean` drops existing objects first.
    fn restore(&self, url: &str, clean: bool, input: &mut dyn Read) -> Result<(), String>;
}

/// A database URL found on the host, with the masker of every value of
/// the env file it came from.
pub(super) struct HostUrl {
    pub url: String,
    pub masker: Masker,
}

/// The value of `var` in the env file of the release `current` points at.
pub(super) fn url_of(layout: &HostLayout, current: Option<&str>, var: &str) -> Result<HostUrl, String> {
    let release = current.ok_or_else(|| {
        format!(
            "{} has no current release, so there is no env file holding {var}: deploy the environment first, or take the backup with run_on = \"deployer\"",
            layout.root.display()
        )
    })?;
    let file = layout.env_file(release);
    // The loader's errors never hold a value (positions only).
    let vars = crate::exec::load_env_file(&file).map_err(|e| e.to_string())?;
    let masker = Masker::new(vars.iter().map(|(_, v)| v.as_str()));
    let url = vars
        .iter()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            format!(
                "{var} is not set in {}, the env file of the current release: set it with `rollway secrets set ENV {var}` and deploy again",
                file.display()
            )
        })?;
    Ok(HostUrl { url, masker })
}

/// Parses the recipients the deployer sent (public keys only).
pub(super) fn recipients(keys: &[String]) -> Result<Vec<Recipient>, String> {
    if keys.is_empty() {
        return Err(
            "no recipients were sent to encrypt the dump to: run `rollway secrets init` on the deployer".into(),
        );
    }
    keys.iter()
        .map(|k| Recipient::from_str(k).map_err(|e| format!("recipient: {e}")))
        .collect()
}

/// Dumps `url` into `out`, age-encrypted to `recipients` as it goes.
pub(super) fn dump_encrypted(
    databases: &dyn Databases,
    url: &HostUrl,
    recipients: &[Recipient],
    out: &mut dyn Write,
) -> Result<(), String> {
    let mut enc = rollway_secrets::encrypt_stream(out, recipients).map_err(|e| e.to_string())?;
    databases.dump(&url.url, &mut enc).map_err(|e| url.masker.mask(&e))?;
    enc.finish()
        .map(|_| ())
        .map_err(|e: io::Error| format!("writing the encrypted dump failed: {e}"))
}

/// Restores the clear archive from `input` into `url`, refusing a
/// database that holds anything unless `force`.
pub(super) fn restore(
    databases: &dyn Databases,
    url: &HostUrl,
    force: bool,
    input: &mut dyn Read,
) -> Result<(), String> {
    let empty = databases.is_empty(&url.url).map_err(|e| url.masker.mask(&e))?;
    if !empty && !force {
        return Err(String::from(
            "the target database is not empty: restore into an empty database, or pass --force to replace what is there",
        ));
    }
    databases
        .restore(&url.url, !empty, input)
        .map_err(|e| url.masker.mask(&e))
}
