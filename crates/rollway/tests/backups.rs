//! Database backups end to end through the real binary (issue 14, first
//! slice): the machine's real PostgreSQL (a fresh database per test,
//! dropped after), real `pg_dump` / `pg_restore`, and Debian's `age` CLI
//! reading what Rollway stored. Each test runs on a SQLite store; the
//! database backed up is always PostgreSQL. Media backups (a directory on
//! each host, through the agent) go through a `local` host and a real sshd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Backend, PgDb, Project};
use serde_json::Value;

/// A project with environment `staging`, `[backups.db]` of `source`'s URL
/// (a secret), stored in `backups/`.
fn project(source: &PgDb) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        r#"project = "shop"

[environments.staging]
kind = "staging"

[backups.db]
environment = "staging"
kind = "database"
schedule = "0 3 * * *"
storage = "backups"
url_secret = "DATABASE_URL"
"#,
    );
    p.run(&["secrets", "init"]).ok();
    p.run_with_stdin(
        &["secrets", "set", "staging", "DATABASE_URL"],
        &format!("{}\n", source.url()),
    )
    .ok();
    p
}

fn object(b: &Value) -> PathBuf {
    PathBuf::from(b["location"].as_str().unwrap())
}

fn id(b: &Value) -> String {
    b["id"].as_str().unwrap().to_owned()
}

#[test]
fn round_trip_restores_schema_and_rows_exactly() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);
    let before = (source.schema(), source.shop_counts());

    let b = common::backup_db(&p, &[]);
    let path = object(&b);
    assert!(path.starts_with(p.path().join("backups")), "{}", path.display());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        b["size_bytes"].as_u64().unwrap()
    );
    // Debian's sha256sum over the stored bytes agrees with the record.
    let sum = Command::new("sha256sum").arg(&path).output().unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(sum.split_whitespace().next(), b["checksum"].as_str());
    // No partial file is left beside the object, and the object is not a clear dump.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        !common::contains(&std::fs::read(&path).unwrap(), "PGDMP"),
        "the object is encrypted"
    );

    // Listed, shown and verified by a unique prefix.
    let listed = p.run(&["--json", "backup", "list", "--env", "staging"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let prefix = &id(&b)[..13];
    let shown = p.run(&["--json", "backup", "show", prefix]).ok().json();
    assert_eq!(shown["backup"]["id"], b["id"]);
    let verified = p.run(&["--json", "backup", "verify", prefix]).ok().json();
    assert!(verified["entries"].as_u64().unwrap() >= 8, "{verified}");

    // Drop everything, restore, compare.
    source.psql("DROP VIEW big_orders; DROP TABLE orders, customers, blobs; DROP SEQUENCE invoice_numbers;");
    assert_ne!(counts_or_none(&source), Some(before.1.clone()));
    let job = p.run(&["--json", "restore", prefix]).ok().json();
    assert_eq!(job["lifecycle"]["status"], "success", "{job}");
    assert!(job["finished_at"].is_number(), "{job}");
    assert_eq!(source.schema(), before.0, "pg_dump --schema-only is identical");
    assert_eq!(
        source.shop_counts(),
        before.1,
        "row counts, sequence and non-ASCII rows are equal"
    );

    // A second restore into the now non-empty database is refused without --force.
    let again = p.run(&["restore", prefix]);
    assert_eq!(again.code, 3, "{again:?}");
    assert!(
        again.stderr.contains("is not empty") && again.stderr.contains("--force"),
        "{again:?}"
    );
    // With --force it replaces what is there.
    source.psql("INSERT INTO customers (name) VALUES ('extra')");
    p.run(&["restore", prefix, "--force"]).ok();
    assert_eq!(source.shop_counts(), before.1);

    // The restore jobs and the events of every step are recorded.
    let shown = p.run(&["--json", "backup", "show", prefix]).ok().json();
    let statuses: Vec<&str> = shown["restores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lifecycle"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "failed", "success"]);
    let events = p.run(&["--json", "events", "list"]).ok().stdout;
    for step in [
        "started",
        "completed",
        "verified",
        "created",
        "restoring into",
        "succeeded",
        "is not empty",
    ] {
        assert!(events.contains(step), "no event says '{step}'");
    }
}

/// The restore-test scratch databases left on the server.
fn scratch_databases(db: &PgDb) -> String {
    db.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'rollway_restore_test_%'")
}

#[test]
fn a_restore_test_restores_into_a_scratch_database_and_compares_with_the_archive() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);
    let b = common::backup_db(&p, &[]);
    let before = scratch_databases(&source);
    let v = p
        .run(&["--json", "backup", "verify", &id(&b), "--restore-test"])
        .ok()
        .json();
    let t = &v["restore_test"];
    // customers, orders, blobs: every row the source had.
    let rows: u64 = source
        .psql("SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM blobs)")
        .trim()
        .parse()
        .unwrap();
    assert_eq!((t["tables"].as_u64(), t["rows"].as_u64()), (Some(3), Some(rows)), "{v}");
    assert!(t["schema_lines"].as_u64().unwrap() > 20, "{v}");
    assert_eq!(
        scratch_databases(&source),
        before,
        "the scratch database is dropped again"
    );
    let events = p.run(&["--json", "events", "list"]).ok().stdout;
    assert!(events.contains("restored into a scratch database"), "{events}");
}

/// A database `pg_restore --list` reads but that does not restore: a check
/// constraint calls a function naming its table without a schema, and a
/// restore runs with an empty search_path (a classic of PostgreSQL restores).
#[test]
fn a_backup_that_lists_but_does_not_restore_fails_the_restore_test() {
    let Some(source) = PgDb::create() else { return };
    source.psql(
        "CREATE TABLE limits (n int);
         INSERT INTO limits VALUES (10);
         CREATE FUNCTION under_limit(v int) RETURNS boolean LANGUAGE sql AS 'SELECT v < (SELECT max(n) FROM limits)';
         CREATE TABLE items (v int CHECK (under_limit(v)));
         INSERT INTO items VALUES (1), (2);",
    );
    let p = project(&source);
    let b = common::backup_db(&p, &[]);
    let before = scratch_databases(&source);
    p.run(&["backup", "verify", &id(&b)]).ok();
    let r = p.run(&["backup", "verify", &id(&b), "--restore-test"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "backup {} (db) does not verify: it does not restore: pg_restore failed",
            id(&b)
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("limits"),
        "pg_restore's own words say why: {}",
        r.stderr
    );
    assert_eq!(
        scratch_databases(&source),
        before,
        "the scratch database is dropped again"
    );
}

fn counts_or_none(db: &PgDb) -> Option<String> {
    let out = Command::new("psql")
        .args([&db.url(), "-qtAc", "SELECT count(*) FROM customers"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Flips one byte in the middle of a file.
fn flip(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_fails_verify_and_restore_leaves_the_target_untouched() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);
    let b = common::backup_db(&p, &[]);
    flip(&object(&b));

    let v = p.run(&["backup", "verify", &id(&b)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stderr.contains(&id(&b)), "names the backup: {v:?}");
    assert!(v.stderr.contains("SHA-256"), "says the checksum differs: {v:?}");
    assert!(v.stderr.contains("modified"), "{v:?}");

    // Restore into an empty target: refused, and the target stays empty.
    let Some(target) = PgDb::create() else { return };
    let r = p.run(&["restore", &id(&b), "--to", &target.url()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("does not verify") && r.stderr.contains("not touched"),
        "{r:?}"
    );
    assert_eq!(
        target.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'").trim(),
        "0"
    );
    let shown = p.run(&["--json", "backup", "show", &id(&b)]).ok().json();
    assert_eq!(shown["restores"][0]["lifecycle"]["status"], "failed");
    assert!(shown["restores"][0]["finished_at"].is_number());
}

#[test]
fn a_truncated_object_and_one_for_another_identity_fail_verify_clearly() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);

    // Truncated: half of it is gone.
    let b = common::backup_db(&p, &[]);
    let path = object(&b);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let v = p.run(&["backup", "verify", &id(&b)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stderr.contains(&id(&b)), "{v:?}");
    assert!(v.stderr.contains("truncated"), "says it is cut short: {v:?}");

    // Encrypted to another identity: Debian's age made the object from a real dump.
    let b = common::backup_db(&p, &[]);
    let path = object(&b);
    let other = p.path().join("other.key");
    let keygen = Command::new("age-keygen").arg("-o").arg(&other).output().unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let recipient = String::from_utf8_lossy(
        &Command::new("age-keygen")
            .arg("-y")
            .arg(&other)
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let dump = p.path().join("plain.dump");
    let pg = Command::new("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&dump)
        .args(["--dbname", &source.url()])
        .status()
        .unwrap();
    assert!(pg.success());
    let enc = Command::new("age")
        .args(["-e", "-r", &recipient, "-o"])
        .arg(&path)
        .arg(&dump)
        .status()
        .unwrap();
    assert!(enc.success());
    let v = p.run(&["backup", "verify", &id(&b)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stderr.contains(&id(&b)), "{v:?}");
    assert!(v.stderr.contains("none of your identities can open it"), "{v:?}");

    // Seed 002 "filePath 必须可访问": an object that is gone fails too.
    std::fs::remove_file(&path).unwrap();
    let v = p.run(&["backup", "verify", &id(&b)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stderr.contains(&id(&b)) && v.stderr.contains("is missing"), "{v:?}");
}

#[test]
fn debians_age_decrypts_the_object_into_an_archive_pg_restore_lists() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);
    let b = common::backup_db(&p, &["--manual"]);
    assert_eq!(b["class"], "manual");
    let clear = p.path().join("clear.dump");
    let dec = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(p.identity())
        .arg("-o")
        .arg(&clear)
        .arg(object(&b))
        .output()
        .unwrap();
    assert!(dec.status.success(), "{}", String::from_utf8_lossy(&dec.stderr));
    let list = Command::new("pg_restore").arg("--list").arg(&clear).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let toc = String::from_utf8_lossy(&list.stdout);
    for name in [
        "TABLE public customers",
        "SEQUENCE public invoice_numbers",
        "INDEX public orders_customer",
    ] {
        assert!(toc.contains(name), "{name} is in the archive:\n{toc}");
    }
}

#[test]
fn prune_dry_run_shows_the_class_that_keeps_each_survivor() {
    let Some(source) = PgDb::create() else { return };
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project(&source);
    // Taken at faked times (`--at`, judged `--now`; a UTC environment): two
    // on one day (only the newer is that day's), one 2.5 months back (its
    // ISO week within 6 months, its month within 2 years), one 13 months
    // back (its month only), one 3 years back (kept by nothing), a manual
    // one 2 years back (past its year) and a manual one last week.
    let cases: &[(&str, bool)] = &[
        ("2026-06-30T10:00:00Z", false),
        ("2026-06-30T22:00:00Z", false),
        ("2026-04-15T03:00:00Z", false),
        ("2025-05-20T03:00:00Z", false),
        ("2023-06-01T03:00:00Z", false),
        ("2024-06-01T03:00:00Z", true),
        ("2026-06-24T03:00:00Z", true),
    ];
    let ids: Vec<String> = cases
        .iter()
        .map(|(at, manual)| {
            let mut args = vec!["--at", at];
            if *manual {
                args.push("--manual");
            }
            id(&common::backup_db(&p, &args))
        })
        .collect();
    let now = "2026-07-01T12:00:00Z";
    let dry = p
        .run(&["--json", "backup", "prune", "--dry-run", "--now", now])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    let kept: std::collections::BTreeMap<String, Vec<String>> = dry["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["backup"]["id"].as_str().unwrap().to_owned(),
                k["classes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let expect = |i: usize| kept.get(&ids[i]).cloned().unwrap_or_default();
    assert_eq!(expect(0), Vec::<String>::new(), "an older one of the same day expires");
    assert_eq!(
        expect(1),
        ["daily", "weekly", "monthly"],
        "the newest of its day, ISO week and month, kept once"
    );
    assert_eq!(expect(2), ["weekly", "monthly"], "beyond 30 days: its week and month");
    assert_eq!(expect(3), ["monthly"], "within two years: its month");
    assert_eq!(expect(4), Vec::<String>::new(), "three years back: nothing keeps it");
    assert_eq!(expect(5), Vec::<String>::new(), "a manual backup past its year");
    assert_eq!(expect(6), ["manual"]);
    let expired: Vec<&str> = dry["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(expired.len(), 3, "{expired:?}");
    // People see the classes too.
    let table = p.run(&["backup", "prune", "--dry-run", "--now", now]).ok().stdout;
    assert!(table.contains("kept by daily, weekly, monthly"), "{table}");
    assert!(table.contains("would expire"), "{table}");
    // The whole answer people read, ids redacted (the times are the faked ones).
    let uuid = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    insta::assert_snapshot!("prune_dry_run_table", uuid.replace_all(&table, "[id]"));
    // The dry run changed nothing; the real prune deletes the objects and marks the records.
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["lifecycle"]["status"] == "completed")
    );
    let pruned = p.run(&["--json", "backup", "prune", "--now", now]).ok().json();
    for b in pruned["expired"].as_array().unwrap() {
        assert_eq!(b["lifecycle"]["status"], "expired");
        assert!(!object(b).exists(), "{} deleted", object(b).display());
    }
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    let expired_now = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["lifecycle"]["status"] == "expired")
        .count();
    assert_eq!(expired_now, 3);
}

/// A `pg_dump` stand-in first on PATH (named as such: it fakes a dump that
/// dies, which a real pg_dump does only when killed).
fn fake_pg_dump(p: &Project, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = p.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let f = bin.join("pg_dump");
    std::fs::write(&f, script).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// The names in the storage directory.
fn stored_names(p: &Project) -> Vec<String> {
    match std::fs::read_dir(p.path().join("backups")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_killed_pg_dump_leaves_a_failed_record_and_no_object() {
    let Some(source) = PgDb::create() else { return };
    let p = project(&source);
    let path = fake_pg_dump(&p, "#!/bin/sh\nprintf 'PGDMP half a dump'\nkill -9 $$\n");
    let r = p.run_full(&["backup", "create", "db"], "", &[("PATH", &path)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("pg_dump failed") && r.stderr.contains("nothing was stored"),
        "{r:?}"
    );
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(listed[0]["lifecycle"]["status"], "failed", "{listed}");
    assert!(listed[0]["failure"].as_str().unwrap().contains("pg_dump"), "{listed}");
    assert!(listed[0]["finished_at"].is_number());
    assert_eq!(stored_names(&p), Vec::<String>::new(), "no object, no partial file");
}

#[test]
fn a_killed_backup_is_marked_failed_once_its_lease_expired_and_leaves_no_object() {
    let Some(source) = PgDb::create() else { return };
    let p = project(&source);
    let pidfile = p.path().join("pg_dump.pid");
    let path = fake_pg_dump(
        &p,
        &format!(
            "#!/bin/sh\necho $$ > {}\nprintf 'PGDMP'\nexec sleep 30\n",
            pidfile.display()
        ),
    );
    let mut child = p
        .command(&["backup", "create", "db"])
        .env("PATH", &path)
        .env("ROLLWAY_LEASE", "1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the dump never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // While it runs and renews its lease, the record is in progress.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(listed[0]["lifecycle"]["status"], "in_progress", "{listed}");
    // SIGKILL rollway (and the stand-in it left behind).
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(listed[0]["lifecycle"]["status"], "failed", "{listed}");
    assert!(
        listed[0]["failure"].as_str().unwrap().contains("lease expired"),
        "{listed}"
    );
    // The hidden partial file the killed process left is gone with it.
    assert_eq!(stored_names(&p), Vec::<String>::new());
    assert!(!std::path::Path::new(listed[0]["location"].as_str().unwrap()).exists());
}

#[test]
fn a_storage_that_refuses_writes_fails_the_backup_clearly() {
    let Some(source) = PgDb::create() else { return };
    let p = project(&source);
    // The storage path is a regular file: no directory can be made there.
    p.write("backups", "not a directory");
    let r = p.run(&["backup", "create", "db"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot create the storage directory") && r.stderr.contains("backups"),
        "names the storage path: {r:?}"
    );
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(listed[0]["lifecycle"]["status"], "failed", "{listed}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("backups")).unwrap(),
        "not a directory"
    );
}

/// Issue 14's deployment acceptance: `[deploy] pre_migration_backup` takes
/// a backup before a deployment's migration (a `before_switch` hook) runs;
/// v2's migration wrecks the data yet the app stays healthy, so the
/// deployment succeeds; `rollway rollback --restore-db --yes` returns the
/// release and the database to their state before v2.
#[test]
fn a_rollback_with_restore_db_returns_the_database_to_before_the_migration() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let port = common::free_port();
    let p = project(&source);
    let toml = std::fs::read_to_string(p.path().join("rollway.toml")).unwrap().replace(
        "[environments.staging]\nkind = \"staging\"\n",
        &format!(
            r#"[build]
command = "rm -rf dist && mkdir dist && cp app/* dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
path = "/"
interval = "100ms"
timeout = "1s"
retries = 50
stability_window = "0s"

[deploy]
before_switch = ["sh migrate.sh"]
pre_migration_backup = "db"

[environments.staging]
kind = "staging"
hosts = ["local"]
root = "srv"
"#
        ),
    );
    p.write("rollway.toml", &toml);
    std::fs::create_dir_all(p.path().join("app")).unwrap();
    p.write("app/server.py", common::OK_APP);
    p.write("app/migrate.sh", "true\n");
    p.run(&["deploy", "staging"]).ok();
    let before = (source.schema(), source.shop_counts());

    // v2's migration drops a column and most orders; the app stays healthy.
    p.write(
        "app/migrate.sh",
        "psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc 'ALTER TABLE customers DROP COLUMN city; DELETE FROM orders WHERE id > 10'\n",
    );
    let v2 = p.run(&["--json", "deploy", "staging"]).ok().json();
    let v2_id = v2["deployment"]["id"]
        .as_str()
        .or(v2["id"].as_str())
        .unwrap()
        .to_owned();
    assert_ne!(source.schema(), before.0, "the migration ran");

    // History shows the backup each deployment took before its migration.
    let history = p.run(&["--json", "history", "staging"]).ok().json();
    let taken: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["backups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    (
                        b["deployment_id"].as_str().unwrap().to_owned(),
                        b["lifecycle"]["status"].as_str().unwrap().to_owned(),
                    )
                })
        })
        .collect();
    assert_eq!(taken.len(), 2, "{history:#}");
    assert!(taken.contains(&(v2_id.clone(), "completed".to_owned())), "{taken:?}");

    // Without a terminal and without --yes nothing is changed.
    let refused = p.run(&[
        "rollback",
        "staging",
        "--reason",
        "migration broke orders",
        "--restore-db",
    ]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("not confirmed: nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_ne!(source.schema(), before.0);

    let r = p.run(&[
        "rollback",
        "staging",
        "--reason",
        "migration broke orders",
        "--restore-db",
        "--yes",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        (source.schema(), source.shop_counts()),
        before,
        "the database equals its state before v2's migration"
    );
    let events = p.run(&["--json", "events", "list"]).ok().stdout;
    assert!(events.contains("restore-step"), "the restore is recorded step by step");
    p.run(&["stop", "staging"]).ok();
}

/// `serve` takes scheduled backups: with a schedule of every minute and a
/// round every second, the current minute's occurrence is taken at once
/// (a scheduled backup, class daily), and each occurrence once however
/// many rounds pass.
#[test]
fn serve_takes_each_scheduled_backup_once() {
    let Some(source) = PgDb::create() else { return };
    source.fill_shop();
    let p = project(&source);
    let toml = std::fs::read_to_string(p.path().join("rollway.toml"))
        .unwrap()
        .replace("schedule = \"0 3 * * *\"", "schedule = \"* * * * *\"");
    p.write("rollway.toml", &toml);
    let mut serve = common::serve::Serve::start_with(
        &p,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("ROLLWAY_BACKUP_EVERY", "1s")],
    );
    let list = || p.run(&["--json", "backup", "list"]).ok().json();
    let first = common::serve::wait_for("a scheduled backup", || {
        let l = list();
        l.as_array()
            .unwrap()
            .iter()
            .find(|b| b["lifecycle"]["status"] == "completed")
            .cloned()
    });
    assert_eq!(
        (first["name"].as_str(), first["class"].as_str()),
        (Some("db"), Some("daily")),
        "{first}"
    );
    // Several more rounds: one backup per occurrence (minute), never two.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (status, stderr) = serve.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("scheduled backup db ("), "{stderr}");
    let minutes: Vec<i64> = list()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["created_at"].as_i64().unwrap() / 60_000)
        .collect();
    let mut distinct = minutes.clone();
    distinct.dedup();
    assert_eq!(minutes, distinct, "one backup per occurrence");
    assert!(!minutes.is_empty());
}

/// A schedule whose latest run failed or was missed is visible in `backup
/// list` and opens the built-in `backup-missed` alert naming the backup.
#[test]
fn missed_and_failed_scheduled_backups_are_listed_and_alerted() {
    let Some(source) = PgDb::create() else { return };
    // Missed: the latest occurrence was two hours ago and nothing ran.
    let p = project(&source);
    let two_hours_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let t = two_hours_ago.to_zoned(jiff::tz::TimeZone::UTC);
    let toml = std::fs::read_to_string(p.path().join("rollway.toml")).unwrap().replace(
        "schedule = \"0 3 * * *\"",
        &format!("schedule = \"{} {} * * *\"", t.minute(), t.hour()),
    );
    p.write("rollway.toml", &toml);
    let listed = p.run(&["backup", "list"]).ok().stdout;
    assert!(
        listed.contains(&format!(
            "schedule of db ({} {} * * *): the run of ",
            t.minute(),
            t.hour()
        )) && listed.trim_end().ends_with(" missed"),
        "{listed}"
    );

    // Failed: every minute, against a database that does not exist.
    let p = project(&source);
    let toml = std::fs::read_to_string(p.path().join("rollway.toml"))
        .unwrap()
        .replace("schedule = \"0 3 * * *\"", "schedule = \"* * * * *\"");
    p.write("rollway.toml", &toml);
    let gone = format!("{}_gone", source.url());
    p.run_with_stdin(&["secrets", "set", "staging", "DATABASE_URL"], &format!("{gone}\n"))
        .ok();
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let _serve = common::serve::Serve::start_with(
        &p,
        &["serve", "--listen", &listen],
        &[("ROLLWAY_BACKUP_EVERY", "1s"), ("ROLLWAY_ALERT_EVERY", "1s")],
    );
    let alert = common::serve::wait_for("the backup-missed alert", || {
        let all = p.run(&["--json", "alerts", "list"]).ok().json();
        all.as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == "backup-missed")
            .cloned()
    });
    assert_eq!(alert["subject"], "db", "{alert}");
    assert_eq!(alert["environment"], "staging", "{alert}");
    let listed = p.run(&["backup", "list"]).ok().stdout;
    assert!(listed.contains("schedule of db (* * * * *): the run of "), "{listed}");
    assert!(listed.contains("failed"), "{listed}");
    // /metrics says the same, one outcome at 1.
    let outcomes = common::serve::wait_for("the backup outcome in /metrics", || {
        let (_, text) = common::serve::get(port, "/metrics")?;
        let m = common::serve::parse_metrics(&text);
        let of = |o: &str| {
            common::serve::value(
                &m,
                "rollway_backup_last_run",
                &[("backup", "db"), ("environment", "staging"), ("outcome", o)],
            )
        };
        let all: Vec<Option<f64>> = ["pending", "running", "completed", "failed", "missed"].map(of).to_vec();
        (all[3] == Some(1.0)).then_some(all)
    });
    assert_eq!(outcomes, [Some(0.0), Some(0.0), Some(0.0), Some(1.0), Some(0.0)]);
}

// ---- media backups ----

/// A project whose `staging` has one host — `local`, or behind `ssh` —
/// with its root under the project, and `[backups.media]` of `shared/uploads`.
fn media_project(ssh: Option<&sshd::Sshd>) -> (Project, PathBuf) {
    let p = Project::new(Backend::Sqlite);
    let root = p.path().join("srv");
    let mut config = common::deploy::Config::local("media", common::free_port(), &root);
    if let Some(s) = ssh {
        config.ssh_config = Some(s.client_config.clone());
        config.hosts = vec![common::deploy::Config::ssh_host(&s.host_name(), &root, config.port)];
    }
    config.sections = "[backups.media]\nenvironment = \"staging\"\nkind = \"media\"\nstorage = \"backups\"\npath = \"shared/uploads\"\n\n".to_owned();
    p.write("rollway.toml", &config.toml());
    p.run(&["secrets", "init"]).ok();
    (p, root.join("shared/uploads"))
}

/// Nested directories, a 0755 script, a 0600 file, an empty file, a
/// symlink inside the tree and non-ASCII names; its entries.
fn media_tree(dir: &Path) -> u64 {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    std::fs::create_dir_all(dir.join("2026/12/thumbs")).unwrap();
    std::fs::write(
        dir.join("2026/12/photo.jpg"),
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(dir.join("2026/12/thumbs/small.jpg"), b"thumb").unwrap();
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    mode(&dir.join("run.sh"), 0o755);
    std::fs::write(dir.join("private.key"), "secret").unwrap();
    mode(&dir.join("private.key"), 0o600);
    std::fs::write(dir.join("empty"), "").unwrap();
    std::fs::write(dir.join("Zoë Ångström — 李小龙.txt"), "ünïcödé").unwrap();
    symlink("2026/12/photo.jpg", dir.join("latest.jpg")).unwrap();
    // 2026, 12, thumbs, photo, small, run.sh, private.key, empty, the non-ASCII file, the link.
    10
}

/// Backs the tree up, verifies it, restores it into a new directory and
/// compares; refuses the non-empty original without --force and replaces
/// it with; then a flipped byte fails verify and leaves a restore target
/// untouched.
fn media_round_trip(ssh: Option<&sshd::Sshd>) {
    let (p, uploads) = media_project(ssh);
    // No directory yet: a failed record naming the host, nothing stored.
    let missing = p.run(&["backup", "create", "media"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("shared/uploads"), "{}", missing.stderr);
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(listed[0]["lifecycle"]["status"], "failed", "{listed}");
    assert!(
        listed[0]["failure"]
            .as_str()
            .unwrap()
            .contains("cannot read the directory"),
        "{listed}"
    );
    assert_eq!(stored_names(&p), Vec::<String>::new());
    let entries = media_tree(&uploads);
    let original = common::tree(&uploads);

    let created = p.run(&["--json", "backup", "create", "media"]).ok().json();
    let all = created.as_array().unwrap();
    assert_eq!(all.len(), 1, "one backup per host: {created:#}");
    let b = &all[0];
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    assert_eq!(b["kind"], "media", "{b}");
    assert_eq!(b["path"], "shared/uploads", "{b}");
    let host = b["host"].as_str().unwrap().to_owned();
    if ssh.is_none() {
        assert_eq!(host, "local");
    }
    let id = id(b);
    let path = object(b);
    assert!(path.starts_with(p.path().join("backups")), "{}", path.display());
    common::assert_stored_as_recorded(&path, b);
    // Encrypted: the clear file contents are nowhere in the object.
    let stored = std::fs::read(&path).unwrap();
    assert!(
        !stored.windows(6).any(|w| w == b"secret"),
        "the object is not encrypted"
    );

    let shown = p.run(&["backup", "show", &id]).ok();
    assert!(
        shown.stdout.contains(&format!("{host}:shared/uploads")),
        "{}",
        shown.stdout
    );
    let v = p.run(&["--json", "backup", "verify", &id]).ok().json();
    assert_eq!(v["entries"].as_u64(), Some(entries), "{v}");

    // Into a new directory (absolute): the same tree.
    let copy = p.path().join("restored/uploads");
    let r = p
        .run(&["--json", "restore", &id, "--to", copy.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(
        r["lifecycle"]["status"].as_str().or(r["status"].as_str()),
        Some("success"),
        "{r}"
    );
    assert_eq!(common::tree(&copy), original);

    // Its own directory is not empty: refused without --force, replaced with.
    std::fs::write(uploads.join("added later"), "x").unwrap();
    let refused = p.run(&["restore", &id]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    assert!(
        uploads.join("added later").exists(),
        "a refused restore changes nothing"
    );
    p.run(&["restore", &id, "--force", "--host", &host]).ok();
    assert_eq!(common::tree(&uploads), original);

    // A flipped byte: verify names the damage, a restore refuses and
    // leaves its target as it was.
    flip(&path);
    let bad = p.run(&["backup", "verify", &id]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("does not verify"), "{}", bad.stderr);
    let target = p.path().join("never");
    let refused = p.run(&["restore", &id, "--to", target.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("the target was not touched"),
        "{}",
        refused.stderr
    );
    assert!(!target.exists());
}

#[test]
fn a_media_directory_round_trips_through_a_local_host() {
    media_round_trip(None);
}

#[test]
fn a_media_directory_round_trips_through_an_ssh_host() {
    let ssh = sshd::Sshd::start();
    media_round_trip(Some(&ssh));
}

/// `len` bytes no compressor can shrink (xorshift from `seed`).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The highest resident set (VmRSS, KiB) seen so far of each process that
/// is Rollway's deployer in `project` (its working directory) or an agent
/// under `root` (its binary's path), sampled every 20 ms until stopped.
struct RssWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl RssWatch {
    fn start(project: &Path, root: &Path) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (project, root, flag) = (project.to_owned(), root.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut deployer, mut agent) = (0u64, 0u64);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    let dir = e.path();
                    let Ok(exe) = std::fs::read_link(dir.join("exe")) else {
                        continue;
                    };
                    let named = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if !named.starts_with("rollway") {
                        continue;
                    }
                    let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
                        continue;
                    };
                    let rss = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    if exe.starts_with(&root) {
                        agent = agent.max(rss);
                    } else if std::fs::read_link(dir.join("cwd")).is_ok_and(|c| c == project) {
                        deployer = deployer.max(rss);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (deployer, agent)
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// The peaks, KiB: (deployer, agent).
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Issue 14: a 1 GiB file (a 1 MiB pseudo-random block written 1,024
/// times, so zstd keeps the object small and the test spends its time on
/// streaming, not on disk) backs up and restores through an SSH host with
/// neither the deployer nor the agent holding more than a bounded buffer:
/// both peaks are measured from /proc while they run.
#[test]
fn a_one_gib_file_round_trips_through_an_ssh_host_in_bounded_memory() {
    use std::io::Write;
    const MIB: usize = 1 << 20;
    let ssh = sshd::Sshd::start();
    let (p, uploads) = media_project(Some(&ssh));
    std::fs::create_dir_all(&uploads).unwrap();
    let block = noise(MIB, 0x2545_f491_4f6c_dd1d);
    let mut big = std::io::BufWriter::new(std::fs::File::create(uploads.join("big.bin")).unwrap());
    for _ in 0..1024 {
        big.write_all(&block).unwrap();
    }
    big.into_inner().unwrap().sync_all().unwrap();
    let root = p.path().join("srv");

    let watch = RssWatch::start(p.path(), &root);
    let created = p.run(&["--json", "backup", "create", "media"]).ok().json();
    let (deployer, agent) = watch.finish();
    let b = &created[0];
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    let object_size = b["size_bytes"].as_u64().unwrap();
    assert!(
        object_size < 64 * MIB as u64,
        "compressed and encrypted: {object_size} bytes"
    );

    let copy = p.path().join("restored");
    let watch = RssWatch::start(p.path(), &root);
    p.run(&["restore", &id(b), "--to", copy.to_str().unwrap()]).ok();
    let (restore_deployer, restore_agent) = watch.finish();

    let restored = std::fs::File::open(copy.join("big.bin")).unwrap();
    assert_eq!(restored.metadata().unwrap().len(), 1024 * MIB as u64);
    let mut reader = std::io::BufReader::with_capacity(MIB, restored);
    let mut chunk = vec![0u8; MIB];
    for i in 0..1024 {
        std::io::Read::read_exact(&mut reader, &mut chunk).unwrap();
        assert!(chunk == block, "MiB {i} of the restored file differs");
    }
    // Each process was seen (a peak of 0 would mean the watch missed it),
    // and none held more than a bounded buffer of the 1 GiB.
    let peaks = [
        ("backup, deployer", deployer),
        ("backup, agent", agent),
        ("restore, deployer", restore_deployer),
        ("restore, agent", restore_agent),
    ];
    eprintln!("peak RSS (KiB): {peaks:?}");
    for (what, kib) in peaks {
        assert!(kib > 0, "{what}: no process seen");
        assert!(kib < 100 * 1024, "{what}: peak RSS {kib} KiB (limit 100 MiB)");
    }
}

/// A config backup holds rollway.toml and the env file a deploy writes
/// (secrets included, so only inside the encrypted object); it restores
/// into a new directory only, the env file 0600, and a flipped byte fails
/// verify and leaves the target untouched.
#[test]
fn a_config_backup_restores_rollway_toml_and_the_env_file_into_a_new_directory() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new(Backend::Sqlite);
    let toml = r#"project = "shop"

[environments.staging]
kind = "staging"
vars = { LOG_LEVEL = "debug" }

[backups.settings]
environment = "staging"
kind = "config"
storage = "backups"
"#;
    p.write("rollway.toml", toml);
    p.run(&["secrets", "init"]).ok();
    let token = "tok-3f9a1c-never-in-clear";
    p.run_with_stdin(&["secrets", "set", "staging", "API_TOKEN"], &format!("{token}\n"))
        .ok();

    let created = p.run(&["--json", "backup", "create", "settings"]).ok();
    let b = &created.json()[0];
    assert_eq!(b["kind"], "config", "{b}");
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    let stored = std::fs::read(object(b)).unwrap();
    assert!(
        !stored.windows(token.len()).any(|w| w == token.as_bytes()),
        "the object is not encrypted"
    );
    let id = id(b);
    let v = p.run(&["--json", "backup", "verify", &id]).ok().json();
    assert_eq!(v["entries"], 2, "{v}");

    // No --to: refused as a usage error, naming what to do.
    let refused = p.run(&["restore", &id]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--to DIR"), "{}", refused.stderr);

    let into = p.path().join("restored");
    p.run(&["restore", &id, "--to", into.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(into.join("rollway.toml")).unwrap(), toml);
    let env_file = into.join("staging.env");
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let mut lines: Vec<&str> = env_text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [format!("API_TOKEN=\"{token}\"").as_str(), "LOG_LEVEL=\"debug\""],
        "{env_text}"
    );
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The token was in the restored file and nowhere in what was said.
    let said = format!(
        "{}{}{}",
        created.stdout,
        created.stderr,
        p.run(&["--json", "events", "list"]).ok().stdout
    );
    assert!(said.contains("backup settings"), "the events were read: {said}");
    assert!(!said.contains(token), "{said}");

    // A second restore into the same directory: refused without --force.
    let again = p.run(&["restore", &id, "--to", into.to_str().unwrap()]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    flip(&object(b));
    let bad = p.run(&["backup", "verify", &id]);
    assert_eq!(bad.code, 1, "{bad:?}");
    let never = p.path().join("never");
    let refused = p.run(&["restore", &id, "--to", never.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(!never.exists());
}

/// Media backups of two hosts are two histories: pruning keeps each
/// host's newest of the day, never one host's at the other's expense.
#[test]
fn prune_keeps_each_hosts_own_newest_media_backup() {
    let ssh = sshd::Sshd::start();
    let (p, uploads) = media_project(None);
    let remote_root = p.path().join("srv-remote");
    let mut config = common::deploy::Config::local("media", common::free_port(), &p.path().join("srv"));
    config.ssh_config = Some(ssh.client_config.clone());
    config.hosts = vec![
        "\"local\"".to_owned(),
        common::deploy::Config::ssh_host(&ssh.host_name(), &remote_root, config.port),
    ];
    config.sections = "[backups.media]\nenvironment = \"staging\"\nkind = \"media\"\nstorage = \"backups\"\npath = \"shared/uploads\"\n\n".to_owned();
    p.write("rollway.toml", &config.toml());
    for dir in [uploads.clone(), remote_root.join("shared/uploads")] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
    }
    // Twice on one day, each time one record per host.
    let mut taken: Vec<(String, String)> = Vec::new();
    for at in ["2026-06-30T10:00:00Z", "2026-06-30T22:00:00Z"] {
        let created = p.run(&["--json", "backup", "create", "media", "--at", at]).ok().json();
        for b in created.as_array().unwrap() {
            taken.push((b["host"].as_str().unwrap().to_owned(), id(b)));
        }
    }
    let hosts: std::collections::BTreeSet<&str> = taken.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts.len(), 2, "{taken:?}");
    let pruned = p
        .run(&["--json", "backup", "prune", "--now", "2026-07-01T12:00:00Z"])
        .ok()
        .json();
    let kept: std::collections::BTreeSet<String> = pruned["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["backup"]["id"].as_str().unwrap().to_owned())
        .collect();
    let expired: std::collections::BTreeSet<String> = pruned["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    // The later round (taken[2..]) is each host's newest of its day.
    let ids = |r: std::ops::Range<usize>| taken[r].iter().map(|(_, i)| i.clone()).collect();
    assert_eq!(kept, ids(2..4), "{pruned:#}");
    assert_eq!(expired, ids(0..2), "{pruned:#}");
}

/// On a terminal (a pty made by util-linux's `script`) `backup create`
/// and `restore` draw the bytes moved and their rate as they stream; with
/// stderr a pipe nothing is drawn (the other tests' runs).
#[test]
fn a_terminal_sees_the_bytes_and_their_rate_as_a_backup_streams() {
    let (p, uploads) = media_project(None);
    std::fs::create_dir_all(&uploads).unwrap();
    // 16 MB that zstd cannot shrink: the bar has bytes to count.
    let noise = noise(16_000_000, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(uploads.join("noise.bin"), noise).unwrap();
    let on_a_terminal = |args: &[&str]| -> String {
        let cmd = p.command(args);
        let line = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_str().unwrap()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).current_dir(p.path());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        let out = script.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let moving =
        regex::Regex::new(r"(backup media|restore [0-9a-f]+) [1-9][0-9]*\.[0-9] MB, [0-9]+\.[0-9] MB/s").unwrap();
    let created = on_a_terminal(&["backup", "create", "media"]);
    assert!(
        moving
            .find_iter(&created)
            .any(|m| m.as_str().starts_with("backup media")),
        "{created}"
    );
    let id = p.run(&["--json", "backup", "list"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let into = p.path().join("restored");
    let restored = on_a_terminal(&["restore", &id[..8], "--to", into.to_str().unwrap()]);
    assert!(
        moving.find_iter(&restored).any(|m| m.as_str().starts_with("restore")),
        "{restored}"
    );
    // Not on a terminal: no bar, not even an empty one.
    let piped = p.run(&["backup", "create", "media"]).ok();
    assert!(!piped.stderr.contains("MB/s"), "{}", piped.stderr);
}
