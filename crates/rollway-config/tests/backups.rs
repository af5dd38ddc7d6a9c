//! `[backups.NAME]`: each case is a config text and the exact diagnostic
//! lines it must give (none for a valid config), plus the values a valid
//! one reads to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rollway_config::{BackupConfig, Config, RunOn, parse};
use rollway_model::status::BackupKind;

fn check(toml: &str, expected: &str) -> Option<Config> {
    let (config, got) = match parse(toml, "rollway.toml") {
        Ok(c) => (Some(c), String::new()),
        Err(d) => (None, d.to_string()),
    };
    let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines, expected, "\n--- config ---\n{toml}\n--- got ---\n{got}\n");
    config
}

/// Lines 1-4; a case's `[backups.db]` header is line 5.
const BASE: &str = "project = \"p\"\n[environments.production]\nkind = \"staging\"\nroot = \".rollway/p\"\n";

/// `[backups.db]` of production's database, stored in `backups`: what
/// each case changes is all it writes.
fn db() -> BackupConfig {
    BackupConfig {
        environment: "production".into(),
        kind: BackupKind::Database,
        run_on: RunOn::Deployer,
        schedule: None,
        storage: "backups".into(),
        s3_endpoint: None,
        s3_region: None,
        s3_allow_http: false,
        s3_access_key_secret: None,
        s3_secret_key_secret: None,
        url_secret: Some("DATABASE_URL".into()),
        path: None,
    }
}

#[test]
fn backup_keys_read_to_their_values_or_defaults() {
    let cases: &[(&str, BackupConfig)] = &[
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nstorage = \"backups\"\nurl_secret = \"DATABASE_URL\"\n",
            db(),
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"DATABASE\"\nrun_on = \"deployer\"\nschedule = \"0 3 * * *\"\nstorage = \"/var/backups/p\"\nurl_secret = \"PG_URL\"\n",
            BackupConfig {
                schedule: Some("0 3 * * *".into()),
                storage: "/var/backups/p".into(),
                url_secret: Some("PG_URL".into()),
                ..db()
            },
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nrun_on = \"host\"\nstorage = \"backups\"\nurl_secret = \"DATABASE_URL\"\n",
            BackupConfig {
                run_on: RunOn::Host,
                ..db()
            },
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"media\"\nstorage = \"backups\"\npath = \"shared/uploads\"\n",
            BackupConfig {
                kind: BackupKind::Media,
                url_secret: None,
                path: Some("shared/uploads".into()),
                ..db()
            },
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"config\"\nstorage = \"backups\"\nschedule = \"0 4 * * 0\"\n",
            BackupConfig {
                kind: BackupKind::Config,
                schedule: Some("0 4 * * 0".into()),
                url_secret: None,
                ..db()
            },
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nstorage = \"s3://shop-backups/db/daily/\"\nurl_secret = \"DATABASE_URL\"\n\
             s3_endpoint = \"http://127.0.0.1:9000\"\ns3_allow_http = true\ns3_region = \"eu-central-1\"\n\
             s3_access_key_secret = \"S3_KEY\"\ns3_secret_key_secret = \"S3_SECRET\"\n",
            BackupConfig {
                storage: "s3://shop-backups/db/daily/".into(),
                s3_endpoint: Some("http://127.0.0.1:9000".into()),
                s3_region: Some("eu-central-1".into()),
                s3_allow_http: true,
                s3_access_key_secret: Some("S3_KEY".into()),
                s3_secret_key_secret: Some("S3_SECRET".into()),
                ..db()
            },
        ),
    ];
    for (text, expected) in cases {
        let config = check(&format!("{BASE}{text}"), "").unwrap();
        assert_eq!(config.backups.get("db"), Some(expected), "{text}");
    }
    assert!(check(BASE, "").unwrap().backups.is_empty());
}

#[test]
fn bad_backup_keys_are_located() {
    let ok = "environment = \"production\"\nkind = \"database\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "[backups.db]\nkind = \"database\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:5:1: missing key 'environment' in [backups.db] — add environment = \"NAME\": whose data this backs up",
        ),
        (
            "[backups.db]\nenvironment = \"prodution\"\nkind = \"database\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:6:15: backup 'db' is of environment 'prodution', which is not an environment — did you mean 'production'?",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"tape\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:7:8: unknown backup kind 'tape' for backups.db.kind — use one of: database, media, config",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"config\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:9:14: backups.db.url_secret is for kind database, and this backup is of kind config — remove url_secret: a config backup holds rollway.toml and the environment's env file",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"config\"\nstorage = \"b\"\nrun_on = \"host\"\n",
            "rollway.toml:9:10: backups.db.run_on \"host\" cannot take a config backup — remove run_on: a config backup is made where rollway.toml and the vault are, on the deployer",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"config\"\nstorage = \"b\"\npath = \"up\"\n",
            "rollway.toml:9:8: backups.db.path is for kind media, and this backup is of kind config — remove path",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"media\"\nstorage = \"b\"\n",
            "rollway.toml:5:1: missing key 'path' in [backups.db] — add path = \"DIRECTORY\": the directory on each host, absolute or relative to the environment's root",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"media\"\nstorage = \"b\"\npath = \" \"\n",
            "rollway.toml:9:8: backups.db.path is empty — name the directory on each host, e.g. path = \"shared/uploads\"",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"media\"\nstorage = \"b\"\npath = \"up\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:10:14: backups.db.url_secret is for kind database, and this backup is of kind media — remove url_secret: a media backup reads the directory named by path",
        ),
        (
            &format!("[backups.db]\n{ok}path = \"up\"\n"),
            "rollway.toml:10:8: backups.db.path is for kind media, and this backup is of kind database — remove path",
        ),
        (
            &format!("[backups.db]\n{ok}run_on = \"ship\"\n"),
            "rollway.toml:10:10: unknown run_on 'ship' for backups.db.run_on — use one of: deployer, host",
        ),
        (
            &format!("[backups.db]\n{ok}schedule = \"every night\"\n"),
            "rollway.toml:10:12: backups.db.schedule: 'every night' is not a cron expression of five fields (minute hour day month weekday): Invalid pattern: Pattern must have 5 fields when seconds are disallowed. — write five fields, e.g. \"0 3 * * *\" for every day at 03:00",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nurl_secret = \"DATABASE_URL\"\n",
            "rollway.toml:5:1: missing key 'storage' in [backups.db] — add storage = \"DIRECTORY\": where backups are kept",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nstorage = \"b\"\n",
            "rollway.toml:5:1: missing key 'url_secret' in [backups.db] — add url_secret = \"DATABASE_URL\": the secret holding the database's URL",
        ),
        (
            "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nstorage = \"b\"\nurl_secret = \"database-url\"\n",
            "rollway.toml:9:14: url_secret 'database-url' is not a valid environment variable name — use letters, digits and '_', not starting with a digit",
        ),
        (
            &format!("[backups.db]\n{ok}keep = 3\n"),
            "rollway.toml:10:1: unknown key 'keep' in [backups.db] — remove it; the keys allowed here are environment, kind, run_on, schedule, storage, s3_endpoint, s3_region, s3_allow_http, s3_access_key_secret, s3_secret_key_secret, url_secret, path",
        ),
    ];
    for (text, expected) in cases {
        assert!(check(&format!("{BASE}{text}"), expected).is_none(), "{text}");
    }
}

#[test]
fn s3_storage_keys_are_checked_and_located() {
    // Lines 5-9: a database backup in a bucket, its credentials named; a case's lines follow from 10.
    let head = "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nurl_secret = \"DATABASE_URL\"\n";
    let creds = "s3_access_key_secret = \"S3_KEY\"\ns3_secret_key_secret = \"S3_SECRET\"\n";
    let cases: &[(String, &str)] = &[
        (
            format!("{head}storage = \"s3://b/db\"\n{creds}"),
            "rollway.toml:9:11: backups.db.storage 's3://b/db': 'b' is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-', a letter or digit at each end) — write s3://BUCKET or s3://BUCKET/PREFIX, e.g. storage = \"s3://shop-backups/db\"",
        ),
        (
            format!("{head}storage = \"s3://Shop/db\"\n{creds}"),
            "rollway.toml:9:11: backups.db.storage 's3://Shop/db': 'Shop' is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-', a letter or digit at each end) — write s3://BUCKET or s3://BUCKET/PREFIX, e.g. storage = \"s3://shop-backups/db\"",
        ),
        (
            format!("{head}storage = \"s3://shop//db\"\n{creds}"),
            "rollway.toml:9:11: backups.db.storage 's3://shop//db': its prefix part '' is empty, '.' or '..', or has a character other than letters, digits and ! - _ . * ' ( ) — write s3://BUCKET or s3://BUCKET/PREFIX, e.g. storage = \"s3://shop-backups/db\"",
        ),
        (
            format!("{head}storage = \"s3://shop/../db\"\n{creds}"),
            "rollway.toml:9:11: backups.db.storage 's3://shop/../db': its prefix part '..' is empty, '.' or '..', or has a character other than letters, digits and ! - _ . * ' ( ) — write s3://BUCKET or s3://BUCKET/PREFIX, e.g. storage = \"s3://shop-backups/db\"",
        ),
        (
            format!("{head}storage = \"s3://shop/db\"\n"),
            "rollway.toml:5:1: missing key 's3_access_key_secret' in [backups.db] — add s3_access_key_secret = \"S3_ACCESS_KEY_ID\": the variable of the environment holding the access key id\n\
          rollway.toml:5:1: missing key 's3_secret_key_secret' in [backups.db] — add s3_secret_key_secret = \"S3_SECRET_ACCESS_KEY\": the variable of the environment holding the secret access key",
        ),
        (
            format!(
                "{head}storage = \"s3://shop/db\"\ns3_access_key_secret = \"s3-key\"\ns3_secret_key_secret = \"S3_SECRET\"\n"
            ),
            "rollway.toml:10:24: s3_access_key_secret 's3-key' is not a valid environment variable name — use letters, digits and '_', not starting with a digit",
        ),
        (
            format!("{head}storage = \"s3://shop/db\"\n{creds}s3_endpoint = \"http://127.0.0.1:9000\"\n"),
            "rollway.toml:12:15: backups.db.s3_endpoint 'http://127.0.0.1:9000' is plain http: the traffic to the bucket would be readable — use https, or add s3_allow_http = true for a server on a network you trust (e.g. a local one)",
        ),
        (
            format!("{head}storage = \"s3://shop/db\"\n{creds}s3_endpoint = \"https://key:pw@s3.example.net\"\n"),
            "rollway.toml:12:15: backups.db.s3_endpoint carries credentials in its URL — remove them from the URL: the credentials come from the variables named by s3_access_key_secret and s3_secret_key_secret",
        ),
        (
            format!("{head}storage = \"s3://shop/db\"\n{creds}s3_endpoint = \"ftp://s3.example.net\"\n"),
            "rollway.toml:12:15: backups.db.s3_endpoint 'ftp://s3.example.net' is not an http(s) URL of a host — write the server's base URL, e.g. s3_endpoint = \"https://s3.example.net\"",
        ),
        (
            format!("{head}storage = \"s3://shop/db\"\n{creds}s3_region = \"eu central\"\n"),
            "rollway.toml:12:13: backups.db.s3_region 'eu central' is not a region name — write letters, digits and '-', e.g. s3_region = \"eu-central-1\"",
        ),
        (
            format!("{head}storage = \"backups\"\ns3_region = \"eu-central-1\"\ns3_allow_http = true\n"),
            "rollway.toml:10:13: backups.db.s3_region is for s3:// storage, and this backup is stored in a local directory — remove s3_region, or set storage = \"s3://BUCKET/PREFIX\"\n\
          rollway.toml:11:17: backups.db.s3_allow_http is for s3:// storage, and this backup is stored in a local directory — remove s3_allow_http, or set storage = \"s3://BUCKET/PREFIX\"",
        ),
    ];
    for (text, expected) in cases {
        assert!(check(&format!("{BASE}{text}"), expected).is_none(), "{text}");
    }
    // A bucket alone, or with a prefix, splits as the storage will use it.
    assert_eq!(
        rollway_config::parse_s3_url("s3://shop-backups"),
        Ok(("shop-backups".into(), String::new()))
    );
    assert_eq!(
        rollway_config::parse_s3_url("s3://shop.b/a/b/"),
        Ok(("shop.b".into(), "a/b".into()))
    );
}

#[test]
fn pre_migration_backup_names_a_database_backup() {
    let db = "[backups.db]\nenvironment = \"production\"\nkind = \"database\"\nstorage = \"b\"\nurl_secret = \"DATABASE_URL\"\n";
    // Lines 5-6 are [deploy]; the backup follows.
    let config = check(&format!("{BASE}[deploy]\npre_migration_backup = \"db\"\n{db}"), "").unwrap();
    assert_eq!(config.deploy.pre_migration_backup.as_deref(), Some("db"));
    check(
        &format!("{BASE}[deploy]\npre_migration_backup = \"bd\"\n{db}"),
        "rollway.toml:6:24: deploy.pre_migration_backup 'bd' is not a [backups.NAME] — did you mean 'db'?",
    );
    check(
        &format!("{BASE}[deploy]\npre_migration_backup = \"db\"\n"),
        "rollway.toml:6:24: deploy.pre_migration_backup 'db' is not a [backups.NAME] — define [backups.db] of kind \"database\"",
    );
}
