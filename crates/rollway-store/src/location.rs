//! Where the store lives: a SQLite file (the default, in the state directory)
//! or a PostgreSQL URL, and how to name it in messages without its password.

use std::fmt;
use std::path::{Path, PathBuf};

/// The file name of the default SQLite store inside the state directory.
pub const DEFAULT_SQLITE_FILE: &str = "rollway.db";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreLocation {
    /// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite://PATH` or a
    /// plain path is a SQLite file; nothing (or an empty string) is
    /// `STATE_DIR/rollway.db`.
    pub fn resolve(arg: Option<&str>, state_dir: &Path) -> StoreLocation {
        match arg.map(str::trim).filter(|s| !s.is_empty()) {
            None => StoreLocation::Sqlite(state_dir.join(DEFAULT_SQLITE_FILE)),
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                StoreLocation::Postgres(s.to_owned())
            }
            Some(s) => StoreLocation::Sqlite(PathBuf::from(s.strip_prefix("sqlite://").unwrap_or(s))),
        }
    }

    /// Like [`StoreLocation::resolve`], but refuses what would quietly become
    /// the wrong store: a URL scheme other than `sqlite://`, `postgres://`
    /// and `postgresql://`, and a PostgreSQL URL that names no database
    /// (it would land in the server's `postgres` system database).
    pub fn parse(arg: Option<&str>, state_dir: &Path) -> Result<StoreLocation, LocationError> {
        if let Some(s) = arg.map(str::trim).filter(|s| !s.is_empty()) {
            if let Some((scheme, _)) = s.split_once("://")
                && !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                && !["sqlite", "postgres", "postgresql"].contains(&scheme.to_ascii_lowercase().as_str())
            {
                return Err(LocationError::UnknownScheme {
                    scheme: scheme.to_owned(),
                    shown: mask_password(s),
                });
            }
            if (s.starts_with("postgres://") || s.starts_with("postgresql://")) && postgres_database(s).is_none() {
                return Err(LocationError::NoDatabase {
                    shown: mask_password(s),
                });
            }
        }
        Ok(Self::resolve(arg, state_dir))
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self {
            StoreLocation::Sqlite(_) => "sqlite",
            StoreLocation::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "{}", p.display()),
            StoreLocation::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

/// Why a `--store` argument was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "unknown store scheme '{scheme}' in {shown}: Rollway stores in SQLite (a file path or sqlite://PATH) or PostgreSQL (postgres://user@host:port/db or postgresql://…)"
    )]
    UnknownScheme { scheme: String, shown: String },
    #[error(
        "{shown} names no database: add one after the host, e.g. postgres://user@host:5432/rollway (create it first with `createdb rollway`)"
    )]
    NoDatabase { shown: String },
}

/// The database a PostgreSQL URL names: its path, else a `dbname=` parameter.
fn postgres_database(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let before_fragment = before_query.split('#').next().unwrap_or_default();
    let path = before_fragment.split_once('/').map_or("", |(_, p)| p);
    let from_query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("dbname"))
        .map(|(_, v)| v);
    [path.trim_matches('/'), from_query.unwrap_or_default()]
        .into_iter()
        .find(|d| !d.is_empty())
        .map(str::to_owned)
}

/// Replaces the password of a URL's user info and any `password=` query
/// parameter with `****`.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return mask_query(url);
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let masked_authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:****{}", &userinfo[..colon], &authority[at..]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    mask_query(&format!(
        "{}{}{}",
        &url[..scheme_end],
        masked_authority,
        &rest[authority_end..]
    ))
}

fn mask_query(s: &str) -> String {
    let Some(q) = s.find('?') else {
        return s.to_owned();
    };
    let params: Vec<String> = s[q + 1..]
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{}?{}", &s[..q], params.join("&"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn resolves_arguments() {
        let state = Path::new("/p/.rollway");
        let check = |arg: Option<&str>, expected: StoreLocation| {
            assert_eq!(StoreLocation::resolve(arg, state), expected, "{arg:?}");
        };
        let sqlite = |p: &str| StoreLocation::Sqlite(PathBuf::from(p));
        let pg = |u: &str| StoreLocation::Postgres(u.to_owned());
        check(None, sqlite("/p/.rollway/rollway.db"));
        check(Some(""), sqlite("/p/.rollway/rollway.db"));
        check(Some("sqlite:///var/lib/r.db"), sqlite("/var/lib/r.db"));
        check(Some("sqlite://state/r.db"), sqlite("state/r.db"));
        check(Some("other.db"), sqlite("other.db"));
        check(Some("postgres://u@h/db"), pg("postgres://u@h/db"));
        check(Some("postgresql://u@h/db"), pg("postgresql://u@h/db"));
    }

    #[test]
    fn parse_refuses_what_would_become_the_wrong_store() {
        let state = Path::new("/p/.rollway");
        let check =
            |arg: &str, expected: Result<StoreLocation, &str>| match (StoreLocation::parse(Some(arg), state), expected)
            {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{arg}"),
                (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{arg}: {e}"),
                (got, want) => panic!("{arg}: got {got:?}, want {want:?}"),
            };
        let pg = |u: &str| StoreLocation::Postgres(u.to_owned());
        check("mysql://u@h/db", Err("unknown store scheme 'mysql'"));
        check("http://example.com/x.db", Err("unknown store scheme 'http'"));
        check("HTTPS://x", Err("sqlite://PATH"));
        check(
            "postgres://u:pw@h:5432/",
            Err("postgres://u:****@h:5432/ names no database"),
        );
        check("postgres://u@h:5432", Err("names no database"));
        check("postgresql://u@h?sslmode=disable", Err("names no database"));
        check("postgres://u@h:5432/rollway", Ok(pg("postgres://u@h:5432/rollway")));
        check("postgres://u@h?dbname=r", Ok(pg("postgres://u@h?dbname=r")));
        check("sqlite://x.db", Ok(StoreLocation::Sqlite(PathBuf::from("x.db"))));
        check("dir/x.db", Ok(StoreLocation::Sqlite(PathBuf::from("dir/x.db"))));
    }

    #[test]
    fn display_never_shows_a_password() {
        let check = |loc: StoreLocation, expected: &str| {
            assert_eq!(loc.to_string(), expected);
        };
        let pg = |u: &str| StoreLocation::Postgres(u.to_owned());
        check(pg("postgres://u:s3cret@h:5432/db"), "postgres://u:****@h:5432/db");
        check(pg("postgres://u:p@ss@h/db"), "postgres://u:****@h/db");
        check(pg("postgres://u@h/db"), "postgres://u@h/db");
        check(
            pg("postgres://h/db?user=u&password=s3cret&x=1"),
            "postgres://h/db?user=u&password=****&x=1",
        );
        check(pg("postgresql://u:s@h"), "postgresql://u:****@h");
        check(StoreLocation::Sqlite(PathBuf::from("/a/b.db")), "/a/b.db");
    }
}
