//! `[backups.NAME]` (OPERATIONS.md "Backups and restores"): what is backed
//! up (a PostgreSQL database whose URL is a secret of the environment),
//! where it runs, when (a cron schedule, checked here with the model's
//! `croner` reader) and where the encrypted object is stored. Database
//! backups are taken on the deployer, or with `run_on = "host"` on the
//! environment's first host through its agent (the URL read from the
//! release's env file there, the dump encrypted there); media backups (a
//! directory on each host of the environment, `path`) always go through
//! the host agent; config backups (rollway.toml and the environment's env
//! file) on the deployer; all into a local directory or an S3-compatible
//! bucket (`storage = "s3://BUCKET/PREFIX"`, with `s3_endpoint` for a
//! server other than AWS, `s3_region`, `s3_allow_http` to allow a
//! plain-http endpoint, and the credentials as two variables of the
//! environment's vault named by `s3_access_key_secret` and
//! `s3_secret_key_secret` — never the credentials themselves in
//! rollway.toml).

use rollway_model::maintenance::parse_cron;
use rollway_model::status::BackupKind;
use schemars::JsonSchema;
use serde::Serialize;

use crate::monitor::word_enum;
use crate::parse::{check_ident, check_name};
use crate::reader::{At, Table, closest};
use crate::schema;

word_enum! {
    /// Which machine runs the dump.
    RunOn ("run_on") {
        /// The machine `rollway` runs on.
        Deployer = "deployer",
        /// The host, through its agent: for a database, the environment's
        /// first host (one dump, not one per host); media is always taken
        /// on each host.
        Host = "host",
    }
}

/// `[backups.NAME]`: one backup definition.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct BackupConfig {
    /// The environment whose data this is; one of [environments].
    pub environment: String,
    /// database (PostgreSQL through pg_dump -Fc), media (the directory `path` on each host) or config (rollway.toml and the environment's env file as deployed).
    #[schemars(schema_with = "schema::backup_kind")]
    pub kind: BackupKind,
    /// deployer (default) or host: a database dumped on the environment's first host through its agent, with the URL of that host's current release and encrypted there before it is streamed back.
    #[serde(default = "default_run_on")]
    #[schemars(schema_with = "schema::run_on")]
    pub run_on: RunOn,
    /// When `rollway serve` takes it: a cron expression of five fields, e.g. "0 3 * * *".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Where backups are stored: a local directory (relative to rollway.toml or absolute), or an S3-compatible bucket as "s3://BUCKET/PREFIX".
    pub storage: String,
    /// For s3:// storage: the endpoint of an S3-compatible server, e.g. "https://s3.example.net" (default: AWS's for the region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// For s3:// storage: the bucket's region (default "us-east-1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// For s3:// storage: allow an http:// s3_endpoint (backups are encrypted, the credentials' signatures are not secret, but the traffic is readable); default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub s3_allow_http: bool,
    /// For s3:// storage: the variable of the environment holding the access key id, e.g. "S3_ACCESS_KEY_ID".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_secret: Option<String>,
    /// For s3:// storage: the variable of the environment holding the secret access key, e.g. "S3_SECRET_ACCESS_KEY".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_secret_key_secret: Option<String>,
    /// For kind database: the variable of the environment holding the PostgreSQL URL, e.g. "DATABASE_URL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<String>,
    /// For kind media: the directory on each host, absolute or relative to the environment's root, e.g. "shared/uploads".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn default_run_on() -> RunOn {
    RunOn::Deployer
}

/// Reads one `[backups.NAME]`; `environments` are the environments' names.
pub(crate) fn read_backup(name: At<&str>, t: &mut Table<'_>, environments: &[&str]) -> Option<BackupConfig> {
    let cx = t.cx();
    check_name(cx, &name, "backup");
    let environment = t.str_at("environment");
    match &environment {
        None => t.require("environment", "add environment = \"NAME\": whose data this backs up"),
        Some(e) if !environments.contains(&e.v.as_str()) => cx.report(
            e.at,
            format!(
                "backup '{}' is of environment '{}', which is not an environment",
                name.v, e.v
            ),
            match closest(&e.v, environments.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("define [environments.{}], or name one of the environments", e.v),
            },
        ),
        Some(_) => {}
    }
    let kind = t.choice_at::<BackupKind>("kind");
    if kind.is_none() && !t.has("kind") {
        t.require("kind", "add kind = \"database\"");
    }
    let run_on = t.choice_at::<RunOn>("run_on");
    if let (Some(r), Some(k)) = (&run_on, &kind)
        && r.v == RunOn::Host
        && k.v == BackupKind::Config
    {
        cx.report(
            r.at,
            format!("{} \"host\" cannot take a config backup", t.name("run_on")),
            "remove run_on: a config backup is made where rollway.toml and the vault are, on the deployer",
        );
    }
    let schedule = t.str_at("schedule");
    if let Some(s) = &schedule
        && let Err(why) = parse_cron(&s.v)
    {
        cx.report(
            s.at,
            format!("{}: {why}", t.name("schedule")),
            "write five fields, e.g. \"0 3 * * *\" for every day at 03:00",
        );
    }
    let storage = t.str_at("storage");
    match &storage {
        None => t.require("storage", "add storage = \"DIRECTORY\": where backups are kept"),
        Some(s) if s.v.trim().is_empty() => cx.report(
            s.at,
            format!("{} is empty", t.name("storage")),
            "name a directory, e.g. storage = \"/var/backups/rollway\"",
        ),
        Some(s) if s.v.starts_with("s3://") => {
            if let Err(why) = parse_s3_url(&s.v) {
                cx.report(
                    s.at,
                    format!("{} '{}': {why}", t.name("storage"), s.v),
                    "write s3://BUCKET or s3://BUCKET/PREFIX, e.g. storage = \"s3://shop-backups/db\"",
                );
            }
        }
        Some(s) if s.v.contains("://") => cx.report(
            s.at,
            format!("{} '{}' is not a directory path", t.name("storage"), s.v),
            "name a local directory, e.g. storage = \"/var/backups/rollway\"",
        ),
        Some(_) => {}
    }
    let s3 = read_s3(t, storage.as_ref().map(|s| s.v.starts_with("s3://")));
    let url_secret = t.str_at("url_secret");
    match (&url_secret, kind.as_ref().map(|k| k.v)) {
        (Some(u), Some(k)) if k != BackupKind::Database => cx.report(
            u.at,
            format!(
                "{} is for kind database, and this backup is of kind {k}",
                t.name("url_secret")
            ),
            if k == BackupKind::Media {
                "remove url_secret: a media backup reads the directory named by path"
            } else {
                "remove url_secret: a config backup holds rollway.toml and the environment's env file"
            },
        ),
        (Some(u), _) => check_ident(cx, u, "url_secret"),
        (None, Some(BackupKind::Database)) => t.require(
            "url_secret",
            "add url_secret = \"DATABASE_URL\": the secret holding the database's URL",
        ),
        (None, _) => {}
    }
    let path = t.str_at("path");
    match (&path, kind.as_ref().map(|k| k.v)) {
        (None, Some(BackupKind::Media)) => t.require(
            "path",
            "add path = \"DIRECTORY\": the directory on each host, absolute or relative to the environment's root",
        ),
        (Some(p), Some(BackupKind::Media)) if p.v.trim().is_empty() => cx.report(
            p.at,
            format!("{} is empty", t.name("path")),
            "name the directory on each host, e.g. path = \"shared/uploads\"",
        ),
        (Some(p), Some(BackupKind::Media)) if p.v.contains('\0') => cx.report(
            p.at,
            format!("{} contains a NUL byte", t.name("path")),
            "name the directory on each host, e.g. path = \"shared/uploads\"",
        ),
        (Some(p), Some(k)) if k != BackupKind::Media => cx.report(
            p.at,
            format!("{} is for kind media, and this backup is of kind {k}", t.name("path")),
            "remove path",
        ),
        _ => {}
    }
    Some(BackupConfig {
        environment: environment?.v,
        kind: kind?.v,
        run_on: run_on.map_or(RunOn::Deployer, |r| r.v),
        schedule: schedule.map(|s| s.v),
        storage: storage?.v,
        s3_endpoint: s3.endpoint,
        s3_region: s3.region,
        s3_allow_http: s3.allow_http,
        s3_access_key_secret: s3.access_key_secret,
        s3_secret_key_secret: s3.secret_key_secret,
        url_secret: url_secret.map(|u| u.v),
        path: path.map(|p| p.v),
    })
}

/// The `s3_*` keys of one `[backups.NAME]`.
#[derive(Default)]
struct S3Keys {
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: bool,
    access_key_secret: Option<String>,
    secret_key_secret: Option<String>,
}

/// Reads the `s3_*` keys: required and checked for s3:// storage (`s3`
/// is whether `storage` is an s3:// URL; none when it is missing), refused
/// (at the key) for a local directory, where they would be ignored.
fn read_s3(t: &mut Table<'_>, s3: Option<bool>) -> S3Keys {
    let cx = t.cx();
    let endpoint = t.str_at("s3_endpoint");
    let region = t.str_at("s3_region");
    let allow_http = t.bool_at("s3_allow_http");
    let access = t.str_at("s3_access_key_secret");
    let secret = t.str_at("s3_secret_key_secret");
    if s3 == Some(false) {
        let given = [
            ("s3_endpoint", endpoint.as_ref().map(|e| e.at)),
            ("s3_region", region.as_ref().map(|r| r.at)),
            ("s3_allow_http", allow_http.as_ref().map(|a| a.at)),
            ("s3_access_key_secret", access.as_ref().map(|a| a.at)),
            ("s3_secret_key_secret", secret.as_ref().map(|s| s.at)),
        ];
        for (key, at) in given {
            if let Some(at) = at {
                cx.report(
                    at,
                    format!(
                        "{} is for s3:// storage, and this backup is stored in a local directory",
                        t.name(key)
                    ),
                    format!("remove {key}, or set storage = \"s3://BUCKET/PREFIX\""),
                );
            }
        }
    }
    if s3 != Some(true) {
        return S3Keys::default();
    }
    let allow = allow_http.as_ref().is_some_and(|a| a.v);
    if let Some(e) = &endpoint {
        match url::Url::parse(&e.v) {
            Err(why) => cx.report(
                e.at,
                format!("{} '{}' is not a URL: {why}", t.name("s3_endpoint"), e.v),
                "write the server's base URL, e.g. s3_endpoint = \"https://s3.example.net\"",
            ),
            Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() => cx.report(
                e.at,
                format!("{} '{}' is not an http(s) URL of a host", t.name("s3_endpoint"), e.v),
                "write the server's base URL, e.g. s3_endpoint = \"https://s3.example.net\"",
            ),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => cx.report(
                e.at,
                format!("{} carries credentials in its URL", t.name("s3_endpoint")),
                "remove them from the URL: the credentials come from the variables named by s3_access_key_secret and s3_secret_key_secret",
            ),
            Ok(u) if u.scheme() == "http" && !allow => cx.report(
                e.at,
                format!("{} '{}' is plain http: the traffic to the bucket would be readable", t.name("s3_endpoint"), e.v),
                "use https, or add s3_allow_http = true for a server on a network you trust (e.g. a local one)",
            ),
            Ok(_) => {}
        }
    }
    if let Some(r) = &region
        && (r.v.is_empty() || !r.v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        cx.report(
            r.at,
            format!("{} '{}' is not a region name", t.name("s3_region"), r.v),
            "write letters, digits and '-', e.g. s3_region = \"eu-central-1\"",
        );
    }
    match &access {
        Some(a) => check_ident(cx, a, "s3_access_key_secret"),
        None => t.require(
            "s3_access_key_secret",
            "add s3_access_key_secret = \"S3_ACCESS_KEY_ID\": the variable of the environment holding the access key id",
        ),
    }
    match &secret {
        Some(s) => check_ident(cx, s, "s3_secret_key_secret"),
        None => t.require(
            "s3_secret_key_secret",
            "add s3_secret_key_secret = \"S3_SECRET_ACCESS_KEY\": the variable of the environment holding the secret access key",
        ),
    }
    S3Keys {
        endpoint: endpoint.map(|e| e.v),
        region: region.map(|r| r.v),
        allow_http: allow,
        access_key_secret: access.map(|a| a.v),
        secret_key_secret: secret.map(|s| s.v),
    }
}

/// Splits `s3://BUCKET/PREFIX` into the bucket and the prefix (without
/// slashes at either end; empty for none), or says what is wrong: the
/// bucket must be an S3 bucket name (3–63 of `a-z 0-9 . -`, a letter or
/// digit at each end), each part of the prefix non-empty, not `.` or `..`,
/// of letters, digits and `! - _ . * ' ( )` (S3's safe characters).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| "it does not start with s3://".to_owned())?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_ok {
        return Err(format!(
            "'{bucket}' is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-', a letter or digit at each end)"
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        for part in prefix.split('/') {
            let safe = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
            if part.is_empty() || part == "." || part == ".." || !part.chars().all(safe) {
                return Err(format!(
                    "its prefix part '{part}' is empty, '.' or '..', or has a character other than letters, digits and ! - _ . * ' ( )"
                ));
            }
        }
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}
