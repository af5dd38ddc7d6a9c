//! Config backups (`[backups.NAME] kind = "config"`): the project's
//! rollway.toml and the environment's env file exactly as a deploy renders
//! it, packed on the deployer into the media backups' tar stream, then
//! encrypted, hashed and stored as every backup is; restored into a new
//! directory on this machine (`restore ID --to DIR`), the env file 0600.
//!
//! The env file holds the environment's secrets in clear text, so it
//! exists only inside the encrypted object and, after a restore, in the
//! 0600 file the operator asked for — never in a temporary file.

use std::path::Path;

use rollway_config::{BackupConfig, Config};
use rollway_model::{Backup, BackupClass, BackupKind, Restore, Timestamp};
use rollway_ops::backup as io;
use rollway_store::Store;

use super::{RestoreRecord, TakeFailure, Taking, failed, object_of, settle_stale, storage};
use crate::error::{Error, Result};
use crate::project::Project;

/// Takes a config backup of `def`'s environment.
pub(super) fn take(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    name: &str,
    def: &BackupConfig,
    manual: bool,
    taken_at: Option<Timestamp>,
) -> Result<Backup> {
    settle_stale(p, Some(config), store)?;
    let env = &def.environment;
    let toml_path = p.config_path();
    let toml = std::fs::read(toml_path)
        .map_err(|e| Error::failed(format_args!("cannot read {}: {e}", toml_path.display())))?;
    // The env file a deploy would write now (this also arms the masks
    // with the environment's secrets).
    let (env_text, _) = crate::deploy::env_file(p, config, store, env, &Default::default(), false)?;
    let recipients = p.vault(config, store)?.recipients();
    let storage = storage(p, config, store, def)?;
    let class = if manual {
        BackupClass::Manual
    } else {
        BackupClass::Daily
    };
    let mut b = Backup::new(
        env,
        BackupKind::Config,
        class,
        "",
        taken_at.unwrap_or_else(|| store.clock().now()),
    );
    let object = storage.object(&format!("{name}-{}.tar.zst.age", b.id));
    b.location = object.location();
    b.name = name.to_owned();
    let label = format!("backup {name} ({}) of environment {env}'s config", b.id);
    let taking = Taking::start(p, store, &b, label.clone(), &storage.describe())?;
    let env_name = format!("{env}.env");
    let result = taking.run(|| {
        io::store_stream(&object, &recipients, |w| {
            rollway_engine::pack_media_files(
                &[("rollway.toml", 0o644, &toml), (&env_name, 0o600, env_text.as_bytes())],
                w,
            )
            .map(|_| ())
            .map_err(|why| TakeFailure::Storage(object.error("write the backup to", std::io::Error::other(why))))
        })
    })?;
    result.map_err(|reason| Error::failed(format_args!("{label} failed: {reason}; nothing was stored")))
}

/// Restores a config backup into the directory `to` on this machine:
/// verified first, refused when `to` is not empty unless `force`, unpacked
/// beside it and moved in only when complete.
pub(super) fn restore(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    b: &Backup,
    to: Option<&str>,
    force: bool,
) -> Result<Restore> {
    let to = to.ok_or_else(|| {
        Error::invalid(format_args!(
            "backup {} holds rollway.toml and environment {}'s env file: name a directory on this machine to restore them into with --to DIR (nothing is overwritten in place)",
            b.id, b.environment
        ))
    })?;
    let dir = std::path::absolute(Path::new(to))
        .map_err(|e| Error::invalid(format_args!("cannot make {to} absolute: {e}")))?;
    let mut job = Restore::new(&b.environment, b.id, store.clock().now());
    job.target = dir.display().to_string();
    let record = RestoreRecord::create(p, store, &job)?;
    let job = record.job.clone();
    record.refuse_unverified(config, b)?;
    record.running(b, &job.target)?;
    let vault = p.vault(config, store)?;
    let object = object_of(p, config, store, b)?;
    let unpacked = match io::with_decrypted(&object, vault.identities(), |r| {
        rollway_engine::unpack_media(&dir, force, r)
    }) {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => Err(format!("it does not decrypt: {why}")),
        Err(e) => Err(failed(e, p)),
    };
    record.settle(
        b,
        &job.target,
        unpacked.map(|files| format!(": {files} files")),
        "restore into a new directory with --to DIR, or pass --force to replace it",
        "the files are unpacked beside the target and moved in only when complete, so the target is as it was",
    )
}
