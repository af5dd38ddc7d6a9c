//! Shape rules of variables: seed 001's URLs and API keys, seed 002's
//! strong secrets, seed 003's key names, encryption at rest and required
//! variables. The one per-value check, [`validate_value`], serves both the
//! model and `rollway_secrets::check_environment`. Messages never quote a value.

use crate::entities::Variable;
use crate::rules::Violation;
use crate::rules::format::Format;
use crate::rules::strength;
use crate::status::{EnvironmentKind, Platform, VariableType};

/// Seed 001 "All URL fields must be valid URLs".
pub const URL_VALID: &str = "variable.url-valid";
/// Seed 001 "API keys must be properly formatted".
pub const KEY_FORMAT: &str = "variable.key-format";
/// Seed 002 "所有密钥必须为高强度随机值".
pub const SECRET_STRENGTH: &str = "variable.secret-strength";
/// Seed 002 "生产环境不得为空".
pub const REQUIRED_IN_PRODUCTION: &str = "variable.required-in-production";
/// Seed 003 "Key names must follow platform naming conventions".
pub const KEY_NAME: &str = "variable.key-name";
/// Seed 003 "Secret values must be encrypted at rest".
pub const ENCRYPTED_AT_REST: &str = "variable.encrypted-at-rest";
/// Seed 003 "Required variables per environment type must be present".
pub const REQUIRED_PRESENT: &str = "variable.required-present";

pub const RULES: &[&str] = &[
    URL_VALID,
    KEY_FORMAT,
    SECRET_STRENGTH,
    REQUIRED_IN_PRODUCTION,
    KEY_NAME,
    ENCRYPTED_AT_REST,
    REQUIRED_PRESENT,
];

/// The key's name against the conventions of the environment's platform:
/// upper-case letters, digits and `_`, not starting with a digit, and
/// none of the names the platform sets itself.
pub fn validate(v: &Variable, platform: Platform) -> Vec<Violation> {
    validate_key(&v.key, platform)
}

/// [`validate`] of a bare name, before any record exists: what the vault
/// applies to every key it sets or imports. Each message is a lowercase
/// phrase that follows the key (the caller shows the key its own way, so a
/// value typed with it, `KEY=value`, is never echoed).
pub fn validate_key(key: &str, platform: Platform) -> Vec<Violation> {
    let shape_ok = key.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !shape_ok {
        vec![Violation::new(
            "key",
            KEY_NAME,
            "is not a variable name: use upper-case letters, digits and _, not starting with a digit (e.g. DATABASE_URL)",
        )]
    } else if let Some(why) = reserved(platform, key) {
        vec![Violation::new("key", KEY_NAME, why)]
    } else {
        Vec::new()
    }
}

fn reserved(platform: Platform, key: &str) -> Option<String> {
    const VERCEL: &[&str] = &[
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "NOW_REGION",
        "TZ",
    ];
    match platform {
        Platform::SelfHosted if key == "PORT" => Some("is set by Rollway from [service] port; set that instead".into()),
        Platform::Railway if key.starts_with("RAILWAY_") => {
            Some("uses the RAILWAY_ prefix, which Railway reserves for its own variables".into())
        }
        Platform::Supabase if key.starts_with("SUPABASE_") => {
            Some("uses the SUPABASE_ prefix, which Supabase reserves for its own secrets".into())
        }
        Platform::Vercel if VERCEL.contains(&key) || key.starts_with("AWS_LAMBDA_") => {
            Some("is reserved by Vercel's runtime".into())
        }
        _ => None,
    }
}

/// What a value is checked against: the declaration of one variable.
#[derive(Debug, Clone, Copy)]
pub struct VariableSpec<'a> {
    pub key: &'a str,
    pub value_type: VariableType,
    /// For urls: the scheme the value must use (`postgres` also accepts `postgresql`).
    pub scheme: Option<&'a str>,
    /// rollway.toml `format`, parsed.
    pub format: Option<&'a Format>,
    /// Masked everywhere, and held to the strength bar in production.
    pub secret: bool,
    /// The operator accepted a value below the strength bar (`--allow-weak`).
    pub allow_weak: bool,
}

impl<'a> From<&'a Variable> for VariableSpec<'a> {
    /// The stored record's declaration; it keeps no `format`, so give one
    /// with `VariableSpec { format: Some(&f), ..VariableSpec::from(&v) }`.
    fn from(v: &'a Variable) -> Self {
        Self {
            key: &v.key,
            value_type: v.value_type,
            scheme: v.scheme.as_deref(),
            format: None,
            secret: v.secret,
            allow_weak: v.allow_weak,
        }
    }
}

/// A clear value of `spec`'s variable in an environment of `kind`, checked
/// before it is stored and by `rollway secrets check`:
/// - nothing is empty in production (an empty value is checked no further);
/// - a `url` value parses as a URL with a host, of the declared scheme;
/// - a value with a `format` matches it;
/// - in production a secret clears the bar of [`strength`] unless
///   `allow_weak`; for a url the bar applies to its password, if it has one.
///
/// Each violation's field is `variables.KEY` and its message a lowercase
/// phrase that follows the key ("DATABASE_URL has the wrong scheme; …").
/// No message quotes the value, a url's password, or the scheme a url was
/// found to have (a mangled value's "scheme" may be part of a secret).
pub fn validate_value(spec: &VariableSpec<'_>, value: &str, kind: EnvironmentKind) -> Vec<Violation> {
    let field = format!("variables.{}", spec.key);
    let mut out = Vec::new();
    let production = kind == EnvironmentKind::Production;
    if value.is_empty() {
        if production {
            out.push(Violation::new(
                field,
                REQUIRED_IN_PRODUCTION,
                "is empty; nothing may be empty in production (seed 002) — set it with `rollway secrets set`",
            ));
        }
        return out;
    }
    // What the strength bar measures: the value, or a url's password.
    let mut subject = Some(value.to_owned());
    if spec.value_type == VariableType::Url {
        match check_url(value, spec.scheme) {
            Ok(password) => subject = password,
            Err(why) => {
                out.push(Violation::new(field.clone(), URL_VALID, why));
                subject = None;
            }
        }
    }
    if let Some(format) = spec.format
        && !format.matches(value)
    {
        out.push(Violation::new(
            field.clone(),
            KEY_FORMAT,
            format!("does not match its format: expected {}", format.describe()),
        ));
    }
    if let Some(subject) = subject.filter(|_| production && spec.secret && !spec.allow_weak) {
        let verdict = strength::assess(&subject);
        if !verdict.ok {
            let what = if spec.value_type == VariableType::Url {
                "has a weak password"
            } else {
                "is a weak secret"
            };
            out.push(Violation::new(
                field,
                SECRET_STRENGTH,
                format!(
                    "{what}: it {}; generate one with `rollway secrets generate` or accept it with --allow-weak",
                    verdict.reasons.join(", it ")
                ),
            ));
        }
    }
    out
}

/// Checks a url value; on success returns its percent-decoded password, if
/// it has a non-empty one. Parsing follows the WHATWG URL standard (the
/// `url` crate), which also cleans up what a browser would; values with
/// whitespace or control characters are refused on top, since a pasted
/// newline or space is a mistake in an environment variable.
fn check_url(value: &str, scheme: Option<&str>) -> Result<Option<String>, String> {
    let url = url::Url::parse(value).map_err(|e| {
        format!(
            "is not a valid url ({}); write it as scheme://host/…",
            e.to_string().to_lowercase()
        )
    })?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "is not a valid url: it contains spaces or control characters; percent-encode them (a space is %20)".into(),
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("is not a valid url: it has no host; write it as scheme://host/…".into());
    }
    if let Some(want) = scheme {
        let want = want.to_ascii_lowercase();
        let accepted: &[&str] = match want.as_str() {
            "postgres" | "postgresql" => &["postgres", "postgresql"],
            other => &[other],
        };
        if !accepted.contains(&url.scheme()) {
            // The scheme found is not quoted: a mangled value's "scheme" may be part of a secret.
            let expected: Vec<String> = accepted.iter().map(|s| format!("{s}://…")).collect();
            return Err(format!("has the wrong scheme; expected {}", expected.join(" or ")));
        }
    }
    Ok(url.password().map(percent_decode).filter(|p| !p.is_empty()))
}

/// The percent-decoded password of a url value, if it parses as a url and
/// has one: it shows up alone in logs, so the masking filter needs it too.
pub fn url_password(value: &str) -> Option<String> {
    url::Url::parse(value)
        .ok()
        .and_then(|u| u.password().map(percent_decode))
        .filter(|p| !p.is_empty())
}

/// `%XX` escapes decoded; anything else, a stray `%` included, kept as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| hex(bytes[i + 1]).zip(hex(bytes[i + 2])))
            .flatten();
        if let Some((h, l)) = escaped {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What is stored for a secret is age ciphertext, binary or armored.
pub fn validate_ciphertext(field: &str, stored: &[u8]) -> Vec<Violation> {
    const BINARY: &[u8] = b"age-encryption.org/v1\n";
    const ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
    let start = stored
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(stored.len());
    let body = &stored[start..];
    if stored.starts_with(BINARY) || body.starts_with(ARMOR) {
        Vec::new()
    } else {
        vec![Violation::new(
            field,
            ENCRYPTED_AT_REST,
            format!(
                "the stored value of {field} is not age ciphertext; secrets are stored encrypted — re-set them with `rollway secrets set`"
            ),
        )]
    }
}

/// Every key of `required` (the keys required for this environment's kind)
/// is among `variables` of `environment`.
pub fn validate_required(environment: &str, required: &[String], variables: &[Variable]) -> Vec<Violation> {
    required
        .iter()
        .filter(|key| !variables.iter().any(|v| v.environment == environment && &v.key == *key))
        .map(|key| {
            Violation::new(
                format!("variables.{key}"),
                REQUIRED_PRESENT,
                format!(
                    "variable {key} is required in {environment} but not set — run `rollway secrets set {environment} {key}`"
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use EnvironmentKind::{Production, Staging};

    const STRONG: &str = "kX9#mQ2$vL7@nR4!wZ";

    fn spec<'a>(key: &'a str, value_type: VariableType, secret: bool) -> VariableSpec<'a> {
        VariableSpec {
            key,
            value_type,
            scheme: None,
            format: None,
            secret,
            allow_weak: false,
        }
    }

    fn url<'a>(key: &'a str, scheme: Option<&'a str>) -> VariableSpec<'a> {
        VariableSpec {
            scheme,
            ..spec(key, VariableType::Url, true)
        }
    }

    /// The violations of `value` are exactly `expected` (rule, message
    /// fragment), in order; each names the variable's field, is lowercase
    /// and quotes neither the value nor a url's password.
    fn check(spec: &VariableSpec<'_>, value: &str, kind: EnvironmentKind, expected: &[(&str, &str)]) {
        let got = validate_value(spec, value, kind);
        let rules: Vec<&str> = got.iter().map(|v| v.rule).collect();
        let want: Vec<&str> = expected.iter().map(|(r, _)| *r).collect();
        assert_eq!(rules, want, "{value:?}: {got:#?}");
        for (v, (_, fragment)) in got.iter().zip(expected) {
            assert_eq!(v.field, format!("variables.{}", spec.key));
            assert!(v.message.contains(fragment), "{:?} lacks {fragment:?}", v.message);
            assert!(v.message.starts_with(char::is_lowercase), "{:?}", v.message);
            for part in [Some(value.to_owned()), url_password(value)].into_iter().flatten() {
                assert!(
                    part.len() < 4 || !v.message.contains(&part),
                    "{:?} quotes the value or its password",
                    v.message
                );
            }
        }
    }

    #[test]
    fn empty_values() {
        let secret = spec("JWT_SECRET", VariableType::String, true);
        let plain = spec("LOG_LEVEL", VariableType::String, false);
        let empty = [(REQUIRED_IN_PRODUCTION, "nothing may be empty in production")];
        check(&secret, "", Production, &empty);
        check(&plain, "", Production, &empty);
        check(&secret, "", Staging, &[]);
        // allow_weak never excuses an empty value, nor does a format apply to one.
        let hex = Format::parse("hex:4").unwrap();
        let lenient = VariableSpec {
            allow_weak: true,
            format: Some(&hex),
            ..secret
        };
        check(&lenient, "", Production, &empty);
    }

    #[test]
    fn urls_and_schemes() {
        let pg = url("DATABASE_URL", Some("postgres"));
        let ok = |v: &str| check(&pg, v, Staging, &[]);
        let bad = |v: &str, fragment: &str| check(&pg, v, Staging, &[(URL_VALID, fragment)]);
        ok("postgres://app:pw@db.internal:5432/app");
        ok("postgresql://db/app?sslmode=require");
        ok("POSTGRES://db/app");
        ok("postgres://[::1]:5432/app");
        ok("postgres://app:p%20w@db/app");
        bad(
            "mysql://db/app",
            "wrong scheme; expected postgres://… or postgresql://…",
        );
        let found = validate_value(&pg, "mysql://db/app", Staging);
        assert!(
            !found[0].message.contains("mysql"),
            "the scheme found may be part of a secret"
        );
        bad("not a url", "is not a valid url (relative url without a base)");
        bad("postgres://db:99999/app", "is not a valid url (invalid port number)");
        bad("postgres://bad host/app", "is not a valid url");
        bad("postgres://db/app\n", "spaces or control characters");
        bad("postgres://db/a pp", "spaces or control characters");
        bad("postgres:///app", "has no host");
        bad("postgres:app", "has no host");
        bad("db.internal:5432", "has no host");
        let any = url("BACKEND_URL", None);
        check(&any, "https://api.example.com:8443/v1?x=1#top", Staging, &[]);
        check(&any, "http://[::1]:3000/health", Staging, &[]);
        check(&any, "redis://:p%40ss@cache.internal:6379/0", Staging, &[]);
        check(&any, "api.example.com", Staging, &[(URL_VALID, "not a valid url")]);
        check(&any, "http://[::1/", Staging, &[(URL_VALID, "not a valid url")]);
        let https = url("FRONTEND_URL", Some("https"));
        check(
            &https,
            "http://example.com",
            Staging,
            &[(URL_VALID, "expected https://…")],
        );
    }

    #[test]
    fn formats() {
        let cohere = Format::parse("^[A-Za-z0-9]{40}$").unwrap();
        let key = VariableSpec {
            format: Some(&cohere),
            ..spec("COHERE_API_KEY", VariableType::Key, false)
        };
        check(&key, "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7k", Production, &[]);
        check(
            &key,
            "too-short-and-has-dashes",
            Production,
            &[(
                KEY_FORMAT,
                "does not match its format: expected the pattern ^[A-Za-z0-9]{40}$",
            )],
        );
        // A format applies to any type, a url's included, next to the url rules.
        let local = Format::parse("^https://[a-z.]+\\.internal/").unwrap();
        let internal = VariableSpec {
            format: Some(&local),
            ..url("API_URL", Some("https"))
        };
        check(&internal, "https://api.internal/v1", Staging, &[]);
        check(
            &internal,
            "http://api.example.com/v1",
            Staging,
            &[(URL_VALID, "wrong scheme"), (KEY_FORMAT, "does not match its format")],
        );
        let uuid = Format::parse("uuid").unwrap();
        let id = VariableSpec {
            format: Some(&uuid),
            ..spec("ID", VariableType::String, false)
        };
        check(
            &id,
            "0190a5b2_7c3d_7e4f_8a9b_0c1d2e3f4a5b",
            Staging,
            &[(KEY_FORMAT, "expected a uuid")],
        );
    }

    #[test]
    fn strength_in_production() {
        let secret = spec("JWT_SECRET", VariableType::String, true);
        let weak = [(
            SECRET_STRENGTH,
            "is a weak secret: it is shorter than 16 characters, it is a well-known weak",
        )];
        check(&secret, "changeme", Production, &weak);
        check(&secret, "changeme", Staging, &[]);
        check(&secret, STRONG, Production, &[]);
        check(&spec("LOG_LEVEL", VariableType::String, false), "info", Production, &[]);
        let allowed = VariableSpec {
            allow_weak: true,
            ..secret
        };
        check(&allowed, "changeme", Production, &[]);
        // For a url, the bar applies to its password, decoded.
        let pg = url("DATABASE_URL", Some("postgres"));
        check(
            &pg,
            "postgres://app:postgres@db/app",
            Production,
            &[(SECRET_STRENGTH, "has a weak password")],
        );
        check(&pg, "postgres://app:kX9%23mQ2%24vL7%40nR4%21@db/app", Production, &[]);
        check(&pg, "postgres://db/app", Production, &[]);
        // A broken url has no password to measure.
        check(
            &pg,
            "mysql://app:changeme@db/app",
            Production,
            &[(URL_VALID, "wrong scheme")],
        );
    }

    #[test]
    fn url_passwords() {
        for (value, want) in [
            ("postgres://app:s3cr%40tpass@db/app", Some("s3cr@tpass")),
            ("redis://:p%40ss@cache:6379/0", Some("p@ss")),
            ("postgres://app@db/app", None),
            ("postgres://app:@db/app", None),
            ("not a url", None),
        ] {
            assert_eq!(url_password(value).as_deref(), want, "{value}");
        }
    }

    #[test]
    fn percent_decoding() {
        for (input, want) in [
            ("a%40b", "a@b"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("x%21", "x!"),
            ("%41", "A"),
            ("%E2%9C%93", "✓"),
        ] {
            assert_eq!(percent_decode(input), want, "{input}");
        }
    }
}
