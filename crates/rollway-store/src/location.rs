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
