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
use rollway_model::{Backup, BackupClass, BackupKind, EventKind, Level, Restore, RestoreStatus, Timestamp};
use rollway_ops::backup::{self as io, BackupError};
use rollway_store::{LockRequest, Store};

use super::{RestoreRecord, check, does_not_verify, event, failed, lock_name, renewing, settle_stale, storage_dir};
use crate::error::{Code, Error, Result};
use crate::project::Project;

/// The two files of a config backup: rollway.toml, and `ENV.env`.
fn files(env: &str) -> [String; 2] {
    ["rollway.toml".to_owned(), format!("{env}.env")]
}

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
    settle_stale(store)?;
    let env = &def.environment;
    let toml_path = p.config_path();
    let toml = std::fs::read(toml_path)
        .map_err(|e| Error::failed(format_args!("cannot read {}: {e}", toml_path.display())))?;
    // The env file a deploy would write now (this also arms the masks
    // with the environment's secrets).
    let (env_text, _) = crate::deploy::env_file(p, config, store, env, &Default::default(), false)?;
    let recipients = p.vault(config, store)?.recipients();
    let dir = storage_dir(p, def)?;
    let class = if manual {
        BackupClass::Manual
    } else {
        BackupClass::Daily
    };
    let taken_at = taken_at.unwrap_or_else(|| store.clock().now());
    let mut b = Backup::new(env, BackupKind::Config, class, "", taken_at);
    let file_name = format!("{name}-{}.tar.zst.age", b.id);
    b.location = io::object_path(&dir, &file_name).display().to_string();
    b.name = name.to_owned();
    let lease = crate::deploy::lease();
    let lock = store.acquire_lock(&LockRequest {
        name: lock_name(&b),
        owner: p.operator(),
        reason: format!("backup {name}"),
        deployment_id: None,
        lease,
    })?;
    let b = store.insert_backup(
        &b,
        vec![event(
            EventKind::BackupChanged,
            Level::Info,
            &b,
            format!(
                "backup {name} ({}) of environment {env}'s config started into {}",
                b.id,
                dir.display()
            ),
        )],
    )?;
    let [toml_name, env_name] = files(env);
    let result = renewing(store, &lock, lease, || {
        io::store_stream(&dir, &file_name, &recipients, |w| {
            rollway_engine::pack_media_files(
                &[(&toml_name, 0o644, &toml), (&env_name, 0o600, env_text.as_bytes())],
                w,
            )
            .map(|_| ())
            .map_err(|why| BackupError::Io {
                what: "write the backup to",
                path: dir.clone(),
                source: std::io::Error::other(why),
            })
        })
    });
    let finished = store.clock().now().max(taken_at);
    let out = match result {
        Ok(stored) => store
            .update_backup(b.id, &mut |x| {
                x.complete(stored.sha256.clone(), stored.size, finished)?;
                Ok(vec![event(
                    EventKind::BackupChanged,
                    Level::Info,
                    x,
                    format!(
                        "backup {name} ({}) completed: {} bytes, sha256 {}",
                        x.id, stored.size, stored.sha256
                    ),
                )])
            })
            .map_err(Error::from),
        Err(e) => {
            let reason = failed(e, p);
            store.update_backup(b.id, &mut |x| {
                x.fail(reason.clone(), finished)?;
                Ok(vec![event(
                    EventKind::BackupChanged,
                    Level::Error,
                    x,
                    format!("backup {name} ({}) failed: {reason}", x.id),
                )])
            })?;
            Err(Error::failed(format_args!(
                "backup {name} ({}) failed: {reason}; nothing was stored",
                b.id
            )))
        }
    };
    let _ = store.release_lock(&lock);
    out
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
    let end = |status, level, message| record.end(status, level, message);
    if let Err(problems) = check(p, config, store, b)? {
        let e = does_not_verify(
            b,
            &problems,
            &format!("; restore {} refused, the target was not touched", job.id),
        );
        end(RestoreStatus::Failed, Level::Error, e.to_string())?;
        return Err(e);
    }
    end(
        RestoreStatus::Running,
        Level::Info,
        format!("backup {} verified; restoring into {}", b.id, job.target),
    )?;
    let vault = p.vault(config, store)?;
    let unpacked = match io::with_decrypted(Path::new(&b.location), vault.identities(), |r| {
        rollway_engine::unpack_media(&dir, force, r)
    }) {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => Err(format!("it does not decrypt: {why}")),
        Err(e) => Err(failed(e, p)),
    };
    match unpacked {
        Ok(entries) => end(
            RestoreStatus::Success,
            Level::Info,
            format!(
                "restore {} of backup {} into {} succeeded: {entries} files",
                job.id, b.id, job.target
            ),
        ),
        Err(why) => {
            let why = p.masks().mask(&why);
            let message = format!("restore {} of backup {} failed: {why}", job.id, b.id);
            end(RestoreStatus::Failed, Level::Error, message.clone())?;
            if why.contains("not empty") {
                return Err(Error::new(Code::Conflict, anyhow::anyhow!(message)));
            }
            Err(Error::failed(message))
        }
    }
}
