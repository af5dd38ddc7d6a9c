//! Database backups taken on the host (`[backups.NAME] run_on = "host"`,
//! issue 14) end to end through the real binary: an environment deployed
//! to a real sshd on loopback, so its host holds the release's env file
//! with `DATABASE_URL`; the host's agent dumps the machine's real
//! PostgreSQL (a fresh database per test, dropped after) with the real
//! `pg_dump`, encrypts it there and streams it back; a restore streams the
//! decrypted archive to `pg_restore` on the host. The URL carries a
//! password (trust auth accepts any) that must never show outside the
//! host's env file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::PgDb;
use common::deploy::{Config, Staging};

/// The password in the database URL: it may sit in the host's env file and
/// nowhere else.
const PASSWORD: &str = "hunter2-Pg-Canary-5150";

/// `staging` deployed on the sshd's host (or a `local` one), with
/// `[backups.db]` (run_on = "host", `DATABASE_URL` = `db` with
/// [`PASSWORD`]) and `[backups.bad]` (run_on = "host", `BAD_URL` = a
/// database that does not exist).
fn deployed(ssh: Option<&sshd::Sshd>, db: &PgDb) -> Staging {
    let stage = Staging::new();
    let port = common::free_port();
    let root = stage.path().join("srv");
    let mut config = Config::local("hostdb", port, &root);
    if let Some(ssh) = ssh {
        config.ssh_config = Some(ssh.client_config.clone());
        config.hosts = vec![Config::ssh_host(&ssh.host_name(), &root, port)];
    }
    config.sections = "[backups.db]\nenvironment = \"staging\"\nkind = \"database\"\nrun_on = \"host\"\nstorage = \"backups\"\nurl_secret = \"DATABASE_URL\"\n\n\
[backups.bad]\nenvironment = \"staging\"\nkind = \"database\"\nrun_on = \"host\"\nstorage = \"backups\"\nurl_secret = \"BAD_URL\"\n\n"
        .to_owned();
    stage.configure(&config);
    stage.mode("v1");
    let p = &stage.project;
    p.run(&["secrets", "init"]).ok();
    let url = |name: &str| format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/{name}");
    p.run_with_stdin(
        &["secrets", "set", "staging", "DATABASE_URL"],
        &format!("{}\n", url(&db.name)),
    )
    .ok();
    p.run_with_stdin(
        &["secrets", "set", "staging", "BAD_URL"],
        &format!("{}\n", url(&format!("{}_missing", db.name))),
    )
    .ok();
    stage.run(&["deploy", "staging"]).ok();
    stage
}

/// Drops the database and creates it again, empty.
fn drop_and_recreate(db: &PgDb) {
    for sql in [
        format!("DROP DATABASE {} WITH (FORCE)", db.name),
        format!("CREATE DATABASE {}", db.name),
    ] {
        let out = Command::new("psql")
            .args([&db.admin_url, "-v", "ON_ERROR_STOP=1", "-qtAc", &sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The names in the storage directory.
fn stored_names(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join("backups")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every file under `dir` whose bytes hold `needle`, leaving out `except`.
fn files_holding(dir: &Path, needle: &str, except: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if path.starts_with(except) {
                continue;
            } else if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && common::contains(&std::fs::read(&path).unwrap_or_default(), needle) {
                out.push(path);
            }
        }
    }
    out
}

/// Issue 14's acceptance: a round trip on the machine's real PostgreSQL
/// through an SSH host.
#[test]
fn a_database_round_trips_through_an_ssh_host() {
    // Declared first, dropped last: the fixture stops the service through it.
    let ssh = sshd::Sshd::start();
    let Some(db) = PgDb::create() else { return };
    let stage = deployed(Some(&ssh), &db);
    let mut outputs = Vec::new();
    db.fill_shop();
    let before = (db.schema(), db.shop_counts());

    let created = stage.run(&["--json", "backup", "create", "db"]).ok();
    outputs.push(format!("{}{}", created.stdout, created.stderr));
    let b = created.json();
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    assert_eq!(b["host"], ssh.host_name().as_str(), "one dump, on the first host: {b}");
    assert_eq!(b["database_name"], db.name.as_str(), "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    let path = PathBuf::from(b["location"].as_str().unwrap());
    assert!(path.starts_with(stage.path().join("backups")), "{}", path.display());
    assert_eq!(stored_names(stage.path()).len(), 1, "one object, no partial file");
    // The record's size and SHA-256 are of the stored bytes (Debian's sha256sum).
    common::assert_stored_as_recorded(&path, &b);
    // Encrypted on the host: no clear archive header, no row text.
    let stored = std::fs::read(&path).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"), "an age file");
    assert!(!common::contains(&stored, "PGDMP") && !common::contains(&stored, "Über"));

    let shown = stage.run(&["backup", "show", &id]).ok();
    assert!(
        shown.stdout.contains(&format!("{} on {}", db.name, ssh.host_name())),
        "{}",
        shown.stdout
    );
    let verified = stage.run(&["--json", "backup", "verify", &id]).ok();
    outputs.push(verified.stdout.clone());
    assert!(
        verified.json()["entries"].as_u64().unwrap() >= 10,
        "{}",
        verified.stdout
    );

    // The database gone and made again empty: restored on the host.
    drop_and_recreate(&db);
    assert_eq!(
        db.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "0"
    );
    let restored = stage.run(&["--json", "restore", &id]).ok();
    outputs.push(format!("{}{}", restored.stdout, restored.stderr));
    let job = restored.json();
    assert_eq!(job["lifecycle"]["status"], "success", "{job}");
    assert_eq!(
        job["target"],
        format!("{}:DATABASE_URL", ssh.host_name()).as_str(),
        "{job}"
    );
    assert_eq!(db.schema(), before.0, "pg_dump --schema-only is identical");
    assert_eq!(
        db.shop_counts(),
        before.1,
        "row counts, the sequence and non-ASCII rows are equal"
    );

    // Not empty now: refused without --force (exit 3, nothing changed), replaced with it.
    db.psql("INSERT INTO customers (name) VALUES ('added later')");
    let refused = stage.run(&["restore", &id]);
    outputs.push(format!("{}{}", refused.stdout, refused.stderr));
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused.stderr.contains("is not empty") && refused.stderr.contains("--force"),
        "{refused:?}"
    );
    assert!(
        db.shop_counts().contains("added later"),
        "a refused restore changes nothing"
    );
    let forced = stage.run(&["restore", &id, "--force"]).ok();
    outputs.push(format!("{}{}", forced.stdout, forced.stderr));
    assert_eq!(db.shop_counts(), before.1);

    // The password is in no record, event or output, and in no file but
    // the host's env files.
    let events = stage.run(&["--json", "events", "list"]).ok().stdout;
    for step in [
        "on ",
        "started",
        "completed",
        "verified",
        "restoring into",
        "succeeded",
        "is not empty",
    ] {
        assert!(events.contains(step), "no event says '{step}'");
    }
    outputs.push(events);
    outputs.push(stage.run(&["--json", "backup", "list"]).ok().stdout);
    outputs.push(stage.run(&["--json", "backup", "show", &id]).ok().stdout);
    for text in &outputs {
        assert!(!text.contains(PASSWORD), "the password in {text}");
    }
    let envs = stage.path().join("srv/envs");
    assert!(
        !files_holding(&envs, PASSWORD, Path::new("/nonexistent")).is_empty(),
        "the env file on the host holds the URL"
    );
    assert_eq!(files_holding(stage.path(), PASSWORD, &envs), Vec::<PathBuf>::new());
}

/// pg_dump failing on the host (its database does not exist) leaves a
/// failed record naming the host, and no object or partial file.
#[test]
fn a_dump_that_fails_on_the_host_leaves_a_failed_record_naming_it_and_no_object() {
    let ssh = sshd::Sshd::start();
    let Some(db) = PgDb::create() else { return };
    let stage = deployed(Some(&ssh), &db);
    let r = stage.run(&["backup", "create", "bad"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&ssh.host_name()) && r.stderr.contains("pg_dump") && r.stderr.contains("nothing was stored"),
        "{r:?}"
    );
    assert!(!r.stderr.contains(PASSWORD) && !r.stdout.contains(PASSWORD), "{r:?}");
    let listed = stage.run(&["--json", "backup", "list"]).ok().json();
    let b = &listed[0];
    assert_eq!(b["lifecycle"]["status"], "failed", "{listed}");
    assert_eq!(b["host"], ssh.host_name().as_str(), "{b}");
    let failure = b["failure"].as_str().unwrap();
    assert!(
        failure.contains(&ssh.host_name()) && failure.contains("does not exist"),
        "{failure}"
    );
    assert!(!failure.contains(PASSWORD), "{failure}");
    assert!(b["finished_at"].is_number(), "{b}");
    assert_eq!(
        stored_names(stage.path()),
        Vec::<String>::new(),
        "no object, no partial file"
    );
}

/// A `pg_dump` killed half-way on a `local` host (a stand-in first on the
/// PATH the agent inherits: it writes the start of a dump, then kills
/// itself, which a real pg_dump does only when killed): the agent has
/// already streamed part of the encrypted dump, then reports the failure;
/// a failed record naming the host, and no object or partial file.
#[test]
fn a_pg_dump_killed_on_a_local_host_leaves_a_failed_record_and_no_object() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(db) = PgDb::create() else { return };
    db.fill_shop();
    let stage = deployed(None, &db);
    let bin = stage.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("pg_dump");
    // More than one data frame of output before it dies.
    std::fs::write(&fake, "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' P\nkill -9 $$\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let r = stage.project.run_full(
        &["backup", "create", "db"],
        "",
        &[("ROLLWAY_LEASE", common::deploy::LEASE), ("PATH", &path)],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("local") && r.stderr.contains("pg_dump failed") && r.stderr.contains("nothing was stored"),
        "{r:?}"
    );
    let listed = stage.run(&["--json", "backup", "list"]).ok().json();
    let b = &listed[0];
    assert_eq!(b["lifecycle"]["status"], "failed", "{listed}");
    assert_eq!(b["host"], "local", "{b}");
    assert!(b["failure"].as_str().unwrap().contains("pg_dump failed"), "{b}");
    assert_eq!(
        stored_names(stage.path()),
        Vec::<String>::new(),
        "no object, no partial file"
    );
    // The real pg_dump on the same host: the backup is taken.
    let ok = stage.run(&["--json", "backup", "create", "db"]).ok().json();
    assert_eq!(ok["lifecycle"]["status"], "completed", "{ok}");
    assert_eq!(ok["host"], "local", "{ok}");
    assert_eq!(stored_names(stage.path()).len(), 1);
}
