//! Shard leases (`shard_owners`, `shard_leases`, schema 7), written once
//! for both backends. A claim is one transaction: the owner's row renewed,
//! dead owners' rows deleted, its unexpired leases renewed, then free or
//! expired shards taken up to its fair share. On PostgreSQL the shards to
//! take are picked `FOR UPDATE SKIP LOCKED`, so instances claiming at once
//! never wait on one another and never take one shard both; every update
//! re-checks that the lease is still free (or still the owner's). These
//! writes never take the event head: they do not queue behind deployments.

use std::time::Duration;

use rollway_model::Timestamp;
use rollway_model::rules::Violation;
use rollway_model::shards::fair_share;

use super::Db;
use crate::error::StoreError;
use crate::shards::{Claimed, Previous, ShardLease, Taken};
use crate::sql::{Backend, Row, Sql};

const COLS: &str = "shard, owner, acquired_at, renewed_at, expires_at, released_at";

fn lease_from_row(r: &Row) -> Result<ShardLease, StoreError> {
    let shard = r.int(0, "shard").unwrap_or_default();
    let decode = || -> Result<ShardLease, String> {
        Ok(ShardLease {
            shard: u32::try_from(r.int(0, "shard")?).map_err(|_| format!("shard {shard} is out of range"))?,
            owner: r.opt_text(1, "owner")?.ok_or("a lease without an owner")?,
            acquired_at: Timestamp::from_millis(r.int(2, "acquired_at")?),
            renewed_at: Timestamp::from_millis(r.int(3, "renewed_at")?),
            expires_at: Timestamp::from_millis(r.int(4, "expires_at")?),
            released_at: r.opt_int(5, "released_at")?.map(Timestamp::from_millis),
        })
    };
    decode().map_err(|d| StoreError::corrupt("shard lease", shard.to_string(), d))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(sql: &mut dyn Sql, query: &str, params: &[crate::sql::Param]) -> Result<i64, StoreError> {
    sql.row(query, params)?
        .map(|r| r.int(0, "count"))
        .transpose()
        .map_err(|d| StoreError::corrupt("shard leases", "count", d))
        .map(Option::unwrap_or_default)
}

fn check(owner: &str, shards: u32, lease: Option<Duration>) -> Result<(), StoreError> {
    let mut violations = Vec::new();
    if owner.trim().is_empty() {
        violations.push(Violation::new("owner", "shards.owner", "a shard lease needs an owner"));
    }
    if shards == 0 {
        violations.push(Violation::new(
            "shards",
            "shards.count",
            "there must be at least one shard",
        ));
    }
    if lease.is_some_and(|l| l.is_zero()) {
        violations.push(Violation::new(
            "lease",
            "shards.lease",
            "a shard lease must last longer than 0 s",
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "shard claim",
            id: owner.to_owned(),
            violations,
        })
    }
}

impl<B: Backend> Db<B> {
    pub(super) fn do_claim_shards(&self, owner: &str, shards: u32, lease: Duration) -> Result<Claimed, StoreError> {
        check(owner, shards, Some(lease))?;
        let now = self.clock.now();
        let at = now.as_millis();
        let until = at.saturating_add(ms(lease));
        let n = i64::from(shards);
        self.backend.write(|sql| {
            sql.exec(
                "INSERT INTO shard_owners (owner, started_at, renewed_at, expires_at) VALUES ($1, $2, $2, $3) \
                 ON CONFLICT (owner) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
                &[owner.into(), at.into(), until.into()],
            )?;
            // Dead instances' rows (killed: nobody deleted them). Rows another
            // claim is deleting right now are skipped, never waited for.
            sql.exec(
                &format!(
                    "DELETE FROM shard_owners WHERE owner IN \
                     (SELECT owner FROM shard_owners WHERE expires_at <= $1{})",
                    B::SKIP_LOCKED
                ),
                &[at.into()],
            )?;
            let owners = count(
                sql,
                "SELECT COUNT(*) FROM shard_owners WHERE expires_at > $1",
                &[at.into()],
            )?;
            if count(sql, "SELECT COUNT(*) FROM shard_leases WHERE shard < $1", &[n.into()])? < n {
                // The first claim (or a larger shard count) makes the rows;
                // one statement in shard order, so two first claims queue.
                let values: Vec<String> = (0..shards).map(|s| format!("({s}, NULL, 0, 0, 0)")).collect();
                sql.exec(
                    &format!(
                        "INSERT INTO shard_leases (shard, owner, acquired_at, renewed_at, expires_at) VALUES {} \
                         ON CONFLICT (shard) DO NOTHING",
                        values.join(", ")
                    ),
                    &[],
                )?;
            }
            let renewed = sql.exec(
                "UPDATE shard_leases SET renewed_at = $2, expires_at = $3 \
                 WHERE owner = $1 AND released_at IS NULL AND expires_at > $2 AND shard < $4",
                &[owner.into(), at.into(), until.into(), n.into()],
            )?;
            let fair = fair_share(shards, u32::try_from(owners).unwrap_or(u32::MAX));
            let want = i64::from(fair).saturating_sub(i64::try_from(renewed).unwrap_or(i64::MAX));
            let mut taken = Vec::new();
            if want > 0 {
                let free = sql.rows(
                    &format!(
                        "SELECT {COLS} FROM shard_leases \
                         WHERE shard < $1 AND (owner IS NULL OR expires_at <= $2) \
                         ORDER BY shard LIMIT $3{}",
                        B::SKIP_LOCKED
                    ),
                    &[n.into(), at.into(), want.into()],
                )?;
                for r in &free {
                    let shard = r
                        .int(0, "shard")
                        .map_err(|d| StoreError::corrupt("shard lease", "?", d))?;
                    let before = (|| -> Result<Previous, String> {
                        Ok(match r.opt_text(1, "owner")? {
                            None => Previous::Free,
                            Some(owner) => match r.opt_int(5, "released_at")? {
                                Some(t) => Previous::Released {
                                    owner,
                                    at: Timestamp::from_millis(t),
                                },
                                None => Previous::Expired {
                                    owner,
                                    at: Timestamp::from_millis(r.int(4, "expires_at")?),
                                },
                            },
                        })
                    })()
                    .map_err(|d| StoreError::corrupt("shard lease", shard.to_string(), d))?;
                    let took = sql.exec(
                        "UPDATE shard_leases SET owner = $1, acquired_at = $2, renewed_at = $2, expires_at = $3, \
                         released_at = NULL WHERE shard = $4 AND (owner IS NULL OR expires_at <= $2)",
                        &[owner.into(), at.into(), until.into(), shard.into()],
                    )?;
                    if took == 1 {
                        taken.push(Taken {
                            shard: u32::try_from(shard).unwrap_or_default(),
                            previous: before,
                        });
                    }
                }
            }
            let held = sql
                .rows(
                    &format!(
                        "SELECT {COLS} FROM shard_leases \
                         WHERE owner = $1 AND released_at IS NULL AND expires_at > $2 AND shard < $3 ORDER BY shard"
                    ),
                    &[owner.into(), at.into(), n.into()],
                )?
                .iter()
                .map(lease_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Claimed {
                at: now,
                owners: u32::try_from(owners).unwrap_or(u32::MAX),
                fair_share: fair,
                held,
                taken,
            })
        })
    }

    pub(super) fn do_release_shards(&self, owner: &str, shards: &[u32]) -> Result<usize, StoreError> {
        check(owner, 1, None)?;
        let at = self.clock.now().as_millis();
        self.backend.write(|sql| {
            let mut released = 0;
            for &shard in shards {
                released += sql.exec(
                    "UPDATE shard_leases SET expires_at = $3, released_at = $3 \
                     WHERE shard = $2 AND owner = $1 AND released_at IS NULL AND expires_at > $3",
                    &[owner.into(), i64::from(shard).into(), at.into()],
                )?;
            }
            Ok(usize::try_from(released).unwrap_or(usize::MAX))
        })
    }

    pub(super) fn do_leave_shards(&self, owner: &str) -> Result<usize, StoreError> {
        check(owner, 1, None)?;
        let at = self.clock.now().as_millis();
        self.backend.write(|sql| {
            let released = sql.exec(
                "UPDATE shard_leases SET expires_at = $2, released_at = $2 \
                 WHERE owner = $1 AND released_at IS NULL AND expires_at > $2",
                &[owner.into(), at.into()],
            )?;
            sql.exec("DELETE FROM shard_owners WHERE owner = $1", &[owner.into()])?;
            Ok(usize::try_from(released).unwrap_or(usize::MAX))
        })
    }

    pub(super) fn do_shard_leases(&self) -> Result<Vec<ShardLease>, StoreError> {
        self.backend.read(|sql| {
            sql.rows(
                &format!("SELECT {COLS} FROM shard_leases WHERE owner IS NOT NULL ORDER BY shard"),
                &[],
            )?
            .iter()
            .map(lease_from_row)
            .collect()
        })
    }
}
