//! Backups in an S3-compatible bucket end to end (issue 14), through the
//! real binary, the machine's real PostgreSQL (a fresh database per test)
//! and a real S3 HTTP server: moto's (`moto[server]` from PyPI). No S3
//! service is reachable from these machines and no other S3 server is
//! installable here (no minio); moto implements S3's REST API — multipart
//! uploads, SigV4 signatures checked against IAM users' keys — over
//! HTTP on loopback. scripts/test installs it into `target/test-venv` and
//! exports `ROLLWAY_TEST_MOTO` (the path of its `moto_server`); the test
//! fails when that is unset. The test reads and rewrites the bucket behind
//! rollway's back with boto3 from the same venv (`support/s3.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, PgDb, Project};
use serde_json::Value;

const BUCKET: &str = "shop-backups";
const HELPER: &str = include_str!("support/s3.py");

/// A moto S3 server on a free loopback port, with a bucket and an IAM
/// user whose keys are the only ones it accepts; stopped on drop.
struct Moto {
    child: Child,
    port: u16,
    python: PathBuf,
    key: String,
    secret: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        let server = std::env::var_os("ROLLWAY_TEST_MOTO").map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "ROLLWAY_TEST_MOTO is not set: run scripts/test (it installs moto[server] into target/test-venv and exports it), \
                 or set it to the path of a moto_server"
            )
        });
        assert!(server.exists(), "ROLLWAY_TEST_MOTO={} does not exist", server.display());
        let python = server.with_file_name("python");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let port = common::free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("moto.err")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on {port}: {}",
                std::fs::read_to_string(dir.path().join("moto.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut m = Moto {
            child,
            port,
            python,
            key: String::new(),
            secret: String::new(),
            log,
            _dir: dir,
        };
        let keys = m.helper(&["setup", &m.endpoint(), BUCKET]);
        let (k, s) = keys.trim().split_once(' ').unwrap();
        (m.key, m.secret) = (k.to_owned(), s.to_owned());
        m
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn helper(&self, args: &[&str]) -> String {
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(HELPER)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "s3.py {args:?}: {}\nmoto's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn with_keys(&self, command: &str, rest: &[&str]) -> String {
        let mut args = vec![command, &self.endpoint(), &self.key, &self.secret, BUCKET]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        self.helper(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The bucket's objects (key, size) and its incomplete multipart uploads' keys.
    fn list(&self) -> (Vec<(String, u64)>, Vec<String>) {
        let mut objects = Vec::new();
        let mut uploads = Vec::new();
        for line in self.with_keys("list", &[]).lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts[0] {
                "object" => objects.push((parts[1].to_owned(), parts[2].parse().unwrap())),
                _ => uploads.push(parts[1].to_owned()),
            }
        }
        (objects, uploads)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project whose `[backups.db]` of `source` is stored in the bucket
/// under `shop/db`, its credentials two secrets of the environment.
fn project(source: &PgDb, moto: &Moto, key: &str, secret: &str) -> Project {
    let p = Project::new(Backend::Sqlite);
    p.write(
        "rollway.toml",
        &format!(
            r#"project = "shop"

[environments.staging]
kind = "staging"

[backups.db]
environment = "staging"
kind = "database"
storage = "s3://{BUCKET}/shop/db"
s3_endpoint = "{}"
s3_allow_http = true
s3_access_key_secret = "S3_ACCESS_KEY_ID"
s3_secret_key_secret = "S3_SECRET_ACCESS_KEY"
url_secret = "DATABASE_URL"
"#,
            moto.endpoint()
        ),
    );
    p.run(&["secrets", "init"]).ok();
    for (k, v) in [
        ("DATABASE_URL", source.url()),
        ("S3_ACCESS_KEY_ID", key.to_owned()),
        ("S3_SECRET_ACCESS_KEY", secret.to_owned()),
    ] {
        p.run_with_stdin(&["secrets", "set", "staging", k], &format!("{v}\n"))
            .ok();
    }
    p
}

fn id(b: &Value) -> String {
    b["id"].as_str().unwrap().to_owned()
}

/// The object's key in the bucket, from the recorded `s3://BUCKET/KEY`.
fn key(b: &Value) -> String {
    let location = b["location"].as_str().unwrap();
    location
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .unwrap_or_else(|| panic!("{location} is not in s3://{BUCKET}/"))
        .to_owned()
}

fn public_relations(db: &PgDb) -> String {
    db.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'")
        .trim()
        .to_owned()
}

/// Neither credential appears in anything rollway printed or recorded.
fn assert_no_credentials(credentials: [&str; 2], p: &Project, texts: &[&str]) {
    let events = p.run(&["--json", "events", "list"]).ok().stdout;
    let listed = p.run(&["--json", "backup", "list"]).ok().stdout;
    let store = std::fs::read(p.sqlite_path()).unwrap();
    for secret in credentials {
        for form in common::secret_forms(secret) {
            for t in texts.iter().chain([&events.as_str(), &listed.as_str()]) {
                assert!(!t.contains(&form), "a credential is shown: {t}");
            }
            assert!(!common::contains(&store, &form), "a credential is in the store");
        }
    }
}

#[test]
fn round_trip_through_a_bucket_restores_schema_and_rows_exactly() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    source.fill_shop();
    // 20 MiB of random bytes more (incompressible: the dump spans two upload parts).
    source.psql(
        "INSERT INTO blobs SELECT 'r' || k, (SELECT decode(string_agg(md5(random()::text || k || g), ''), 'hex')
                FROM generate_series(1, 65536) g) FROM generate_series(1, 20) k",
    );
    let p = project(&source, &moto, &moto.key, &moto.secret);
    let before = (source.schema(), source.shop_counts());

    let created = p.run(&["--json", "backup", "create", "db"]).ok();
    let b = created.json();
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    let key = key(&b);
    assert!(key.starts_with("shop/db/db-") && key.ends_with(".dump.age"), "{key}");
    // In the bucket: one object, its size and SHA-256 those recorded,
    // uploaded in two parts (its ETag counts them), encrypted.
    let (objects, uploads) = moto.list();
    let size = b["size_bytes"].as_u64().unwrap();
    assert_eq!(objects, [(key.clone(), size)]);
    assert!(uploads.is_empty(), "no upload is left open: {uploads:?}");
    assert!(size > 20 << 20, "{size}");
    let shown = moto.with_keys("show", &[&key]);
    let fields: Vec<&str> = shown.split_whitespace().collect();
    assert_eq!(fields[0], size.to_string());
    assert_eq!(
        Some(fields[1]),
        b["checksum"].as_str(),
        "the SHA-256 is of the stored bytes"
    );
    assert!(
        fields[2].ends_with("-2"),
        "a multipart upload of two parts: ETag {}",
        fields[2]
    );
    assert_eq!(fields[3], "False", "the object is not a clear dump");

    // Listed, shown and verified through the bucket.
    let prefix = &id(&b)[..13];
    let shown = p.run(&["--json", "backup", "show", prefix]).ok().json();
    assert_eq!(shown["backup"]["location"], b["location"]);
    let verified = p.run(&["--json", "backup", "verify", prefix]).ok().json();
    assert!(verified["entries"].as_u64().unwrap() >= 8, "{verified}");
    // Restored into a scratch database from the bucket, it equals the archive.
    let tested = p
        .run(&["--json", "backup", "verify", prefix, "--restore-test"])
        .ok()
        .json();
    assert_eq!(tested["restore_test"]["tables"].as_u64(), Some(3), "{tested}");

    // Drop everything, restore from the bucket, compare.
    source.psql("DROP VIEW big_orders; DROP TABLE orders, customers, blobs; DROP SEQUENCE invoice_numbers;");
    assert_eq!(public_relations(&source), "0");
    let job = p.run(&["--json", "restore", prefix]).ok().json();
    assert_eq!(job["lifecycle"]["status"], "success", "{job}");
    assert_eq!(source.schema(), before.0, "pg_dump --schema-only is identical");
    assert_eq!(
        source.shop_counts(),
        before.1,
        "row counts, bytes, sequence and non-ASCII rows are equal"
    );

    let events = p.run(&["--json", "events", "list"]).ok().stdout;
    assert!(
        events.contains(&format!("started into s3://{BUCKET}/shop/db")),
        "{events}"
    );
    assert_no_credentials([&moto.key, &moto.secret], &p, &[&created.stdout, &created.stderr]);
}

#[test]
fn a_flipped_byte_in_the_bucket_fails_verify_and_restore_leaves_the_target_untouched() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    source.psql("CREATE TABLE t (x text); INSERT INTO t SELECT 'row ' || g FROM generate_series(1, 1000) g;");
    let p = project(&source, &moto, &moto.key, &moto.secret);
    let b = common::backup_db(&p, &[]);
    p.run(&["backup", "verify", &id(&b)]).ok();
    moto.with_keys("flip", &[&key(&b)]);

    let v = p.run(&["backup", "verify", &id(&b)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stderr.contains(&id(&b)), "names the backup: {v:?}");
    assert!(
        v.stderr.contains("SHA-256") && v.stderr.contains("modified"),
        "says the checksum differs: {v:?}"
    );
    assert!(
        v.stderr.contains(b["location"].as_str().unwrap()),
        "names the object: {v:?}"
    );

    let Some(target) = PgDb::create() else { return };
    let r = p.run(&["restore", &id(&b), "--to", &target.url()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("does not verify") && r.stderr.contains("not touched"),
        "{r:?}"
    );
    assert_eq!(public_relations(&target), "0", "the target is untouched");
    let shown = p.run(&["--json", "backup", "show", &id(&b)]).ok().json();
    assert_eq!(shown["restores"][0]["lifecycle"]["status"], "failed");
}

#[test]
fn prune_deletes_an_expired_object_from_the_bucket() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project(&source, &moto, &moto.key, &moto.secret);
    // Three years back nothing keeps it; yesterday's is that day's newest.
    let old = common::backup_db(&p, &["--at", "2023-06-01T03:00:00Z"]);
    let new = common::backup_db(&p, &["--at", "2026-06-30T03:00:00Z"]);
    let keys = |objects: Vec<(String, u64)>| -> Vec<String> {
        let mut k: Vec<String> = objects.into_iter().map(|(k, _)| k).collect();
        k.sort();
        k
    };
    let mut both = vec![key(&old), key(&new)];
    both.sort();
    assert_eq!(keys(moto.list().0), both);

    let pruned = p
        .run(&["--json", "backup", "prune", "--now", "2026-07-01T12:00:00Z"])
        .ok()
        .json();
    let expired: Vec<&str> = pruned["expired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(expired, [id(&old)]);
    assert_eq!(
        keys(moto.list().0),
        [key(&new)],
        "the expired object is gone from the bucket"
    );
    let shown = p.run(&["--json", "backup", "show", &id(&old)]).ok().json();
    assert_eq!(shown["backup"]["lifecycle"]["status"], "expired");
    p.run(&["backup", "verify", &id(&new)]).ok();
}

#[test]
fn wrong_credentials_fail_clearly_naming_the_bucket_and_endpoint_and_showing_no_secret() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    // An unknown key id, then the real key id with a wrong secret.
    let wrong_secret = "wrong-Secret-Key-0123456789abcdef";
    for (key, secret, says) in [
        ("AKIAWRONGKEY00000000", wrong_secret, "InvalidAccessKeyId"),
        (moto.key.as_str(), wrong_secret, "SignatureDoesNotMatch"),
    ] {
        let p = project(&source, &moto, key, secret);
        let r = p.run(&["backup", "create", "db"]);
        assert_eq!(r.code, 1, "{r:?}");
        for needle in [
            format!("s3://{BUCKET}/shop/db/db-"),
            moto.endpoint(),
            says.to_owned(),
            "s3_access_key_secret".to_owned(),
            "nothing was stored".to_owned(),
        ] {
            assert!(r.stderr.contains(&needle), "says {needle}: {}", r.stderr);
        }
        let listed = p.run(&["--json", "backup", "list"]).ok().json();
        assert_eq!(listed[0]["lifecycle"]["status"], "failed", "{listed}");
        assert!(listed[0]["failure"].as_str().unwrap().contains(says), "{listed}");
        assert_no_credentials([key, secret], &p, &[&r.stdout, &r.stderr]);
    }
    assert_eq!(moto.list(), (Vec::new(), Vec::new()), "nothing reached the bucket");
}

/// A `pg_dump` stand-in first on PATH (named as such: it fakes a dump that
/// dies after 20 MiB, past the first upload part).
fn fake_pg_dump(p: &Project, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = p.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let f = bin.join("pg_dump");
    std::fs::write(&f, script).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn a_failed_dump_aborts_its_upload_and_a_killed_backup_leaves_no_object() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    let p = project(&source, &moto, &moto.key, &moto.secret);

    // pg_dump dies after a part was uploaded: the upload is aborted.
    let path = fake_pg_dump(&p, "#!/bin/sh\nhead -c 20000000 /dev/urandom\nkill -9 $$\n");
    let r = p.run_full(&["backup", "create", "db"], "", &[("PATH", &path)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("pg_dump failed") && r.stderr.contains("nothing was stored"),
        "{r:?}"
    );
    assert_eq!(moto.list(), (Vec::new(), Vec::new()), "no object and no open upload");

    // rollway killed mid-upload: an incomplete upload remains, never an
    // object, and the record fails once its lease expired.
    let pidfile = p.path().join("pg_dump.pid");
    let path = fake_pg_dump(
        &p,
        &format!(
            "#!/bin/sh\necho $$ > {}\nhead -c 20000000 /dev/urandom\nexec sleep 30\n",
            pidfile.display()
        ),
    );
    let mut child = p
        .command(&["backup", "create", "db"])
        .env("PATH", &path)
        .env("ROLLWAY_LEASE", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while moto.list().1.is_empty() {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Give the first part time to arrive, then SIGKILL rollway and the stand-in.
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    std::thread::sleep(Duration::from_millis(1500));
    let listed = p.run(&["--json", "backup", "list"]).ok().json();
    let killed = &listed[0];
    assert_eq!(killed["lifecycle"]["status"], "failed", "{listed}");
    assert!(
        killed["failure"].as_str().unwrap().contains("lease expired"),
        "{listed}"
    );
    let (objects, uploads) = moto.list();
    assert!(objects.is_empty(), "no object under any key: {objects:?}");
    assert_eq!(uploads, [key(killed)], "only the incomplete upload, which is no object");
}

/// `serve` takes scheduled backups on its blocking pool: the bucket's own
/// runtime starts, blocks and stops there without upsetting serve's.
#[test]
fn serve_takes_a_scheduled_backup_into_the_bucket() {
    let Some(source) = PgDb::create() else { return };
    let moto = Moto::start();
    source.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let p = project(&source, &moto, &moto.key, &moto.secret);
    let toml = std::fs::read_to_string(p.path().join("rollway.toml")).unwrap().replace(
        "url_secret = \"DATABASE_URL\"\n",
        "url_secret = \"DATABASE_URL\"\nschedule = \"* * * * *\"\n",
    );
    p.write("rollway.toml", &toml);
    let mut serve = common::serve::Serve::start_with(
        &p,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("ROLLWAY_BACKUP_EVERY", "1s")],
    );
    let b = common::serve::wait_for("a scheduled backup", || {
        let listed = p.run(&["--json", "backup", "list"]).ok().json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["lifecycle"]["status"] == "completed")
            .cloned()
    });
    let (status, stderr) = serve.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("scheduled backup db ("), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (objects, _) = moto.list();
    assert!(objects.iter().any(|(k, _)| *k == key(&b)), "{objects:?}");
    p.run(&["backup", "verify", &id(&b)]).ok();
}

/// A media backup (a directory on a `local` host, packed by its agent)
/// goes to the bucket and back the same way.
#[test]
fn a_media_directory_round_trips_through_a_bucket() {
    let moto = Moto::start();
    let p = Project::new(Backend::Sqlite);
    let root = p.path().join("srv");
    let mut config = common::deploy::Config::local("media", common::free_port(), &root);
    config.sections = format!(
        "[backups.media]\nenvironment = \"staging\"\nkind = \"media\"\npath = \"shared/uploads\"\n\
         storage = \"s3://{BUCKET}/media\"\ns3_endpoint = \"{}\"\ns3_allow_http = true\n\
         s3_access_key_secret = \"S3_ACCESS_KEY_ID\"\ns3_secret_key_secret = \"S3_SECRET_ACCESS_KEY\"\n\n",
        moto.endpoint()
    );
    p.write("rollway.toml", &config.toml());
    p.run(&["secrets", "init"]).ok();
    for (k, v) in [("S3_ACCESS_KEY_ID", &moto.key), ("S3_SECRET_ACCESS_KEY", &moto.secret)] {
        p.run_with_stdin(&["secrets", "set", "staging", k], &format!("{v}\n"))
            .ok();
    }
    let uploads = root.join("shared/uploads");
    std::fs::create_dir_all(uploads.join("2026/12")).unwrap();
    std::fs::write(
        uploads.join("2026/12/photo.jpg"),
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(uploads.join("Zoë — 李小龙.txt"), "ünïcödé").unwrap();
    std::os::unix::fs::symlink("2026/12/photo.jpg", uploads.join("latest.jpg")).unwrap();
    let original = common::tree(&uploads);

    let created = p.run(&["--json", "backup", "create", "media"]).ok().json();
    let b = &created[0];
    assert_eq!(b["lifecycle"]["status"], "completed", "{b}");
    let key = key(b);
    assert!(
        key.starts_with("media/media-") && key.ends_with(".tar.zst.age"),
        "{key}"
    );
    let shown = moto.with_keys("show", &[&key]);
    assert_eq!(Some(shown.split_whitespace().nth(1).unwrap()), b["checksum"].as_str());
    let v = p.run(&["--json", "backup", "verify", &id(b)]).ok().json();
    // 2026, 12, photo.jpg, the non-ASCII file, the link.
    assert_eq!(v["entries"].as_u64(), Some(5), "{v}");
    let copy = p.path().join("restored/uploads");
    p.run(&["restore", &id(b), "--to", copy.to_str().unwrap()]).ok();
    assert_eq!(common::tree(&copy), original);
}
