//! The PostgreSQL backend, for several Rollway instances sharing one store.
//! Every write transaction first locks the `event_head` row, so writers —
//! and with them event appends — queue one after another across instances.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::Host;
use postgres::types::{IsNull, ToSql, Type, WrongType};
use postgres::{Client, Config, IsolationLevel, NoTls};

use crate::error::{StoreError, pg_detail};
use crate::location::StoreLocation;
use crate::monitoring::RollupLayout;
use crate::sql::{Backend, Param, Row, Sql, Val};

/// Used when the URL names no `connect_timeout`, so an unreachable server
/// fails the command quickly instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct PgBackend {
    client: Mutex<Client>,
    /// Kept to connect again when the server dropped the connection.
    config: Config,
    location: StoreLocation,
    shown: String,
}

/// How long one statement may run on the server (`statement_timeout`),
/// unless the URL's `options` set one: a lock or a stuck query fails the
/// command instead of holding it.
const STATEMENT_TIMEOUT: &str = "30s";

/// How long sent data may stay unacknowledged before the connection counts
/// as dead (a server that vanished, not one that is slow).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend").field("location", &self.shown).finish()
    }
}

/// True when every server the config names is on this machine: the
/// connection carries no TLS, so nothing may cross a network.
fn is_loopback(config: &Config) -> bool {
    let host_ok = |h: &Host| match h {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    config.get_hosts().iter().all(host_ok) && config.get_hostaddrs().iter().all(IpAddr::is_loopback)
}

impl PgBackend {
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let location = StoreLocation::Postgres(url.to_owned());
        let shown = location.to_string();
        let connect_err = |source: postgres::Error| StoreError::PostgresConnect {
            location: shown.clone(),
            detail: pg_detail(&source),
            source,
        };
        let mut config: Config = url.parse().map_err(connect_err)?;
        if !is_loopback(&config) {
            return Err(StoreError::NotLoopback { location: shown });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rollway");
        }
        if !config.get_options().is_some_and(|o| o.contains("statement_timeout")) {
            let options = match config.get_options() {
                Some(o) => format!("{o} -c statement_timeout={STATEMENT_TIMEOUT}"),
                None => format!("-c statement_timeout={STATEMENT_TIMEOUT}"),
            };
            config.options(&options);
        }
        config.keepalives(true);
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
        let client = connect_within(&config, &shown)?;
        Ok(Self {
            client: Mutex::new(client),
            config,
            location,
            shown,
        })
    }

    /// Runs `f` in the transaction `start` opens and commits it. A
    /// connection the server dropped since the last transaction is made
    /// again first; nothing of this one ran yet.
    fn in_transaction<T>(
        &self,
        start: impl for<'c> Fn(&'c mut Client) -> Result<postgres::Transaction<'c>, postgres::Error>,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client();
        let err = |e| StoreError::postgres(&self.shown, e);
        let mut f = Some(f);
        for attempt in 0..2 {
            let closed = match start(&mut client) {
                Ok(mut tx) => {
                    let f = f
                        .take()
                        .ok_or_else(|| StoreError::corrupt("transaction", "body", "ran twice"))?;
                    let out = f(&mut PgSql {
                        tx: &mut tx,
                        location: &self.shown,
                    })?;
                    tx.commit().map_err(err)?;
                    return Ok(out);
                }
                Err(e) if attempt == 0 && dropped(&e) => true,
                Err(e) => return Err(err(e)),
            };
            if closed {
                self.reconnect(&mut client)?;
            }
        }
        Err(StoreError::corrupt("transaction", "body", "no connection"))
    }

    /// A new connection in place of one the server dropped (a restart, an
    /// administrator's `pg_terminate_backend`).
    fn reconnect(&self, client: &mut Client) -> Result<(), StoreError> {
        *client = connect_within(&self.config, &self.shown)?;
        Ok(())
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        // A panic while holding the client dropped its transaction, which
        // rolled back; the connection itself is still good.
        self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// True when `e` says the server ended this connection: it is closed, or
/// the server's last words were that it was terminating it (an
/// administrator's `pg_terminate_backend`, a shutdown, a crash restart).
fn dropped(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(c)
        })
}

/// Connects, bounded as a whole by the config's connect timeout: the
/// driver bounds only the TCP connect, and a peer that accepts and then
/// never answers the startup would hold the command forever. A connect that
/// is given up on is left to its thread, which ends with the process.
fn connect_within(config: &Config, shown: &str) -> Result<Client, StoreError> {
    let limit = config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = config.clone();
    std::thread::spawn(move || {
        let _ = tx.send(cfg.connect(NoTls));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) => Err(StoreError::PostgresConnect {
            location: shown.to_owned(),
            detail: pg_detail(&source),
            source,
        }),
        Err(_) => Err(StoreError::PostgresTimeout {
            location: shown.to_owned(),
            waited: limit,
        }),
    }
}

impl Backend for PgBackend {
    const NAME: &'static str = "postgres";
    const LOCK_HEAD: &'static str = " FOR UPDATE";
    const LOCK_ROW: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const RANGES_JOIN: &'static str = "q CROSS JOIN LATERAL (SELECT * FROM TABLE x \
         WHERE x.monitor_id = (SELECT id FROM monitors WHERE name = q.name) \
         AND x.bucket >= q.lo AND x.bucket < q.hi OFFSET 0) r";
    const ROLLUPS: RollupLayout = RollupLayout::Compact;
    const BULK_READ: &'static str = "SET LOCAL jit = off";
    // Any constant will do, as long as it is the same in every instance.
    const MIGRATION_LOCK: &'static str = "SELECT pg_advisory_xact_lock(7236828373140453)";
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/postgres/0001_init.sql")),
        (2, include_str!("../migrations/postgres/0002_variables.sql")),
        (3, include_str!("../migrations/postgres/0003_deployments.sql")),
        (4, include_str!("../migrations/postgres/0004_failed_probes.sql")),
        (5, include_str!("../migrations/postgres/0005_monitoring.sql")),
        (6, include_str!("../migrations/postgres/0006_maintenance.sql")),
        (7, include_str!("../migrations/postgres/0007_shard_leases.sql")),
        (8, include_str!("../migrations/postgres/0008_metric_records.sql")),
        (10, include_str!("../migrations/postgres/0010_alerts.sql")),
        (11, include_str!("../migrations/postgres/0011_log_records.sql")),
        (12, include_str!("../migrations/postgres/0012_compact_monitoring.sql")),
        (14, include_str!("../migrations/postgres/0014_backups.sql")),
        (15, include_str!("../migrations/postgres/0015_compact_rollups.sql")),
    ];

    fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn write<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.in_transaction(|c| c.transaction(), f)
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.in_transaction(
            |c| {
                c.build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
            },
            f,
        )
    }

    fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        self.client()
            .batch_execute(sql)
            .map_err(|e| StoreError::postgres(&self.shown, e))
    }
}

struct PgSql<'t, 'c> {
    tx: &'t mut postgres::Transaction<'c>,
    location: &'t str,
}

/// One parameter as `postgres` binds it. An integer goes as BIGINT, or as
/// INTEGER / SMALLINT where it is compared with or written to such a column
/// (the rollups' keys and counts, schema 15); one that does not fit is
/// refused with its value and type, never truncated. Every other value
/// goes as its Rust type, checked against the column as usual.
#[derive(Debug)]
struct PgParam<'a>(&'a Param);

type BindResult = Result<IsNull, Box<dyn std::error::Error + Sync + Send>>;

fn bind_int(v: Option<i64>, ty: &Type, out: &mut BytesMut) -> BindResult {
    let Some(v) = v else {
        return Ok(IsNull::Yes);
    };
    let too_big = || format!("the integer {v} does not fit a {ty} column or parameter (it is not truncated)");
    if *ty == Type::INT4 {
        i32::try_from(v).map_err(|_| too_big())?.to_sql(ty, out)
    } else if *ty == Type::INT2 {
        i16::try_from(v).map_err(|_| too_big())?.to_sql(ty, out)
    } else {
        v.to_sql(ty, out)
    }
}

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> BindResult {
        match self.0 {
            Param::Int(v) => bind_int(*v, ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Real(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
        }
    }

    /// Any type: [`Self::to_sql_checked`] checks each value's own.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> BindResult {
        match self.0 {
            Param::Int(v) if [Type::INT2, Type::INT4, Type::INT8].contains(ty) => bind_int(*v, ty, out),
            Param::Int(_) => Err(Box::new(WrongType::new::<i64>(ty.clone()))),
            Param::Text(v) => v.to_sql_checked(ty, out),
            Param::Bool(v) => v.to_sql_checked(ty, out),
            Param::Real(v) => v.to_sql_checked(ty, out),
            Param::Bytes(v) => v.to_sql_checked(ty, out),
        }
    }
}

fn bind(params: &[Param]) -> Vec<PgParam<'_>> {
    params.iter().map(PgParam).collect()
}

/// The bound parameters as `postgres` takes them.
fn refs<'a>(bound: &'a [PgParam<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect()
}

fn value(row: &postgres::Row, i: usize) -> Result<Val, postgres::Error> {
    let ty = row.columns()[i].type_();
    Ok(if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map_or(Val::Null, |v| Val::Int(i64::from(v)))
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map_or(Val::Null, |v| Val::Int(i64::from(v)))
    } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME || *ty == Type::BPCHAR {
        row.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text)
    } else if *ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map_or(Val::Null, Val::Real)
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map_or(Val::Null, Val::Bool)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Bytes)
    } else {
        Val::Other(format!("a value of type {ty}"))
    })
}

impl Sql for PgSql<'_, '_> {
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.tx
            .execute(sql, &refs(&bind(params)))
            .map_err(|e| StoreError::postgres(self.location, e))
    }

    fn rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let err = |e| StoreError::postgres(self.location, e);
        let bound = bind(params);
        let rows = self.tx.query(sql, &refs(&bound)).map_err(err)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| value(r, i).map_err(err))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.tx
            .batch_execute(sql)
            .map_err(|e| StoreError::postgres(self.location, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn only_loopback_servers_are_reached() {
        let check = |url: &str, expected: bool| {
            let config: Config = url.parse().unwrap();
            assert_eq!(is_loopback(&config), expected, "{url}");
        };
        check("postgres://postgres@127.0.0.1:5432/test", true);
        check("postgres://postgres@localhost/test", true);
        check("postgres://postgres@[::1]:5432/test", true);
        check("postgres://postgres@%2Frun%2Fpostgresql/test", true);
        check("postgres://postgres@db.example.com/test", false);
        check("postgres://postgres@10.0.0.5/test", false);
        check("postgres://postgres@127.0.0.1,db.example.com/test", false);
        check("postgres://postgres@localhost/test?hostaddr=10.0.0.5", false);
    }

    #[test]
    fn integers_bind_to_the_width_asked_and_are_never_truncated() {
        let check = |v: Option<i64>, ty: Type, expected: Result<&[u8], &str>| {
            let p = Param::Int(v);
            let mut out = BytesMut::new();
            let got = PgParam(&p)
                .to_sql_checked(&ty, &mut out)
                .map(|n| matches!(n, IsNull::Yes))
                .map_err(|e| e.to_string());
            match expected {
                Ok(bytes) => {
                    assert_eq!(got, Ok(v.is_none()), "{v:?} as {ty}");
                    assert_eq!(&out[..], bytes, "{v:?} as {ty}");
                }
                Err(needle) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(needle), "{v:?} as {ty}: {e}");
                }
            }
        };
        check(Some(5), Type::INT8, Ok(&[0, 0, 0, 0, 0, 0, 0, 5]));
        check(Some(-2), Type::INT4, Ok(&[0xff, 0xff, 0xff, 0xfe]));
        check(Some(300), Type::INT2, Ok(&[1, 44]));
        check(None, Type::INT4, Ok(&[]));
        check(
            Some(1 << 31),
            Type::INT4,
            Err("the integer 2147483648 does not fit a int4"),
        );
        check(Some(-40_000), Type::INT2, Err("the integer -40000 does not fit a int2"));
        check(Some(1), Type::TEXT, Err("cannot convert"));
        // Other values keep their own type check.
        let text = Param::Text(Some("x".into()));
        assert!(
            PgParam(&text)
                .to_sql_checked(&Type::INT4, &mut BytesMut::new())
                .is_err()
        );
        let bytes = Param::Bytes(Some(vec![1, 2]));
        assert!(
            PgParam(&bytes)
                .to_sql_checked(&Type::BYTEA, &mut BytesMut::new())
                .is_ok()
        );
    }

    #[test]
    fn a_remote_url_is_refused_without_connecting() {
        let err = PgBackend::connect("postgres://u:s3cret@db.example.com/x").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::NotLoopback { .. }), "{msg}");
        assert!(msg.contains("postgres://u:****@db.example.com/x"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
