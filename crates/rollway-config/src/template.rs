//! The commented rollway.toml that `rollway init` writes.

/// A commented starting config with a local `staging` and an ssh `production`
/// environment; it passes `parse` as it is.
pub fn template() -> String {
    TEMPLATE.to_owned()
}

const TEMPLATE: &str = r#"# rollway.toml — what Rollway builds, where it ships it and how it proves it healthy.
# `rollway config check` reports every problem with its line and column;
# `rollway config schema` prints a JSON Schema for editors.

project = "app"

[build]
command = "npm ci && npm run build"   # optional; runs with sh -c in this file's directory
output = "dist"                       # the file or directory that becomes the artifact
kind = "app"                          # app | frontend-build | backend-container | embeddings-data
expire_after = "90d"                  # how long built artifacts are kept

[service]
start = "node server.js"              # runs in the release directory, env file loaded, PORT set
port = 3000                           # health probes go to 127.0.0.1:PORT on each host
supervisor = "rollway"                # rollway | supervisord | systemd | command
shared = []                           # directories kept across releases, e.g. ["uploads"]

[health]
path = "/"
expect_status = 200
timeout = "5s"                        # bound on each probe
interval = "1s"                       # spacing of probes
retries = 30                          # boot check attempts
window_failures = 3                   # consecutive failed probes that fail the window
stability_window = "30m"              # watched after the deploy; at least 30m in production

# [secrets]
# dir = "secrets"                     # ENV.age files, meant to be committed
# recipients = []                     # age1… or ssh-ed25519 keys; empty: your local identity

# [variables.DATABASE_URL]
# type = "url"                        # string | url | key
# scheme = "postgres"
# secret = true
# required_for = ["staging", "production"]

# [deploy]
# jobs = ["test"]                     # jobs run before shipping
# before_switch = ["npm run migrate"] # on each host, in the new release with its variables, before `current` moves
# after_switch = ["./warm-cache.sh"]  # on each host once the new service answers; a failure rolls back

# [jobs.test]
# type = "test"
# run = "npm test"

# [monitors.api]                      # probed by `rollway serve`; an environment with a domain
#                                     # also gets ENV-domain: https://DOMAIN + [health] path
# environment = "production"
# kind = "http"                       # http | tcp | tls | dns | postgres | push
# url = "https://app.example.com/healthz"
# expect_status = [200]               # left out: any status but 5xx is ok
# body_contains = "ok"
# interval = "30s"                    # at least 1s
# timeout = "5s"                      # shorter than interval
# retries = 3                         # failed probes in a row before it counts as down

[environments.staging]
kind = "staging"                      # development | test | staging | production
hosts = ["local"]                     # this machine, no ssh
root = "srv/staging"                  # outside the state directory; `rollway init` git-ignores it
stability_window = "1m"               # any [health] key may be overridden per environment

[environments.production]
kind = "production"
hosts = ["deploy@app.example.com"]    # "user@host:port", or { ssh = "…", root = "…", port = 3001 }
root = "/srv/app"
domain = "app.example.com"
https = true                          # required in production
platform = "self-hosted"              # self-hosted | railway | vercel | supabase | other
keep_releases = 5
stability_window = "30m"              # production windows are at least 30 minutes
"#;

/// The presets `rollway init --preset` knows.
pub const PRESETS: &[&str] = &["strapi", "rag-app"];

/// The template with the variables of a preset declared: `strapi` (seed 002's
/// Secret Set) or `rag-app` (seed 001's DeploymentConfiguration).
pub fn template_for(preset: Option<&str>) -> Result<String, String> {
    let extra = match preset {
        None => return Ok(template()),
        Some("strapi") => STRAPI,
        Some("rag-app") => RAG_APP,
        Some(other) => return Err(format!("unknown preset '{other}' (known: {})", PRESETS.join(", "))),
    };
    let base = template();
    // Declarations go before the environments, where the commented examples are.
    let at = base.find("[environments.staging]").unwrap_or(base.len());
    Ok(format!("{}{extra}\n{}", &base[..at], &base[at..]))
}

const STRAPI: &str = r#"# Strapi's secrets (seed 002 Secret Set): `rollway secrets generate ENV --preset strapi`
# makes all seven from the OS random source.
[variables.APP_KEYS]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.API_TOKEN_SALT]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.ADMIN_JWT_SECRET]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.TRANSFER_TOKEN_SALT]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.JWT_SECRET]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.ENCRYPTION_KEY]
type = "string"
secret = true
required_for = ["staging", "production"]

[variables.POSTGRES_PASSWORD]
type = "string"
secret = true
required_for = ["staging", "production"]
"#;

const RAG_APP: &str = r#"# A RAG app's configuration (seed 001 DeploymentConfiguration): URLs are
# checked as URLs, API keys against their format.
[variables.BACKEND_URL]
type = "url"
scheme = "https"
secret = false
required_for = ["staging", "production"]

[variables.FRONTEND_URL]
type = "url"
scheme = "https"
secret = false
required_for = ["staging", "production"]

[variables.DATABASE_URL]
type = "url"
scheme = "postgres"                   # Neon Postgres
secret = true
required_for = ["staging", "production"]

[variables.VECTOR_DATABASE_URL]
type = "url"                          # Qdrant
secret = true
required_for = ["staging", "production"]

[variables.COHERE_API_KEY]
type = "key"
format = "^[A-Za-z0-9]{40}$"
secret = true
required_for = ["staging", "production"]

[variables.VERCEL_TOKEN]
type = "key"
format = "^[A-Za-z0-9]{24}$"
secret = true
required_for = ["production"]
"#;

#[cfg(test)]
mod preset_tests {
    use super::*;

    #[test]
    fn every_preset_passes_the_checks() {
        for p in PRESETS {
            let text = template_for(Some(p)).unwrap();
            let config = crate::parse(&text, "rollway.toml").unwrap_or_else(|d| panic!("{p}:\n{d}"));
            assert!(config.variables.len() >= 6, "{p}");
        }
        assert!(template_for(Some("rails")).unwrap_err().contains("strapi, rag-app"));
    }
}
