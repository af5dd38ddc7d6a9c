//! `[monitors.NAME]` → [`MonitorSpec`]: the one place this crate reads
//! `rollway_config`. The scheduler and the probes take plain values.
//!
//! A PostgreSQL monitor names a secret (`url_secret`), whose value lives in
//! the vault the application layer opens; the caller passes a resolver, so
//! this crate never sees the vault.

use std::error::Error;

use rollway_config::{DnsRecordType, HttpMethod, MonitorCheck, MonitorConfig, split_address};
use rollway_model::names::shown;

use crate::monitor::default_timeout;
use crate::{DnsProbe, DnsRecord, HttpProbe, Method, MonitorSpec, PostgresProbe, ProbeSpec, Schedule, TlsProbe};

/// Why a monitor of the config cannot be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum FromConfigError {
    #[error("monitor '{monitor}': address '{address}' cannot be probed: {why}")]
    Address {
        monitor: String,
        address: String,
        why: String,
    },
    #[error("monitor '{monitor}': cannot read the secret '{secret}' of environment '{environment}'")]
    Secret {
        monitor: String,
        environment: String,
        secret: String,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

/// The monitor `name` of the config as a [`MonitorSpec`]; `None` for a push
/// monitor (nothing to probe: its samples arrive from outside).
///
/// `resolve(environment, secret)` gives a secret's value; it is called only
/// for a PostgreSQL monitor's `url_secret`.
pub fn monitor_spec<E>(
    name: &str,
    config: &MonitorConfig,
    resolve: impl FnOnce(&str, &str) -> Result<String, E>,
) -> Result<Option<MonitorSpec>, FromConfigError>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    let address = |address: &str| {
        split_address(address)
            .map(|(host, port)| (host.to_owned(), port))
            .map_err(|why| FromConfigError::Address {
                monitor: shown(name),
                address: shown(address),
                why,
            })
    };
    let probe = match &config.check {
        MonitorCheck::Push(_) => return Ok(None),
        MonitorCheck::Http(c) => ProbeSpec::Http(HttpProbe {
            url: c.url.clone(),
            method: method(c.method),
            headers: c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            expect_status: c.expect_status.clone(),
            body_contains: c.body_contains.clone(),
            json_pointer: c.json_pointer.clone(),
            equals: c.equals.clone(),
            max_redirects: c.max_redirects,
        }),
        MonitorCheck::Tcp(c) => {
            let (host, port) = address(&c.address)?;
            ProbeSpec::Tcp { host, port }
        }
        MonitorCheck::Tls(c) => {
            let (host, port) = address(&c.address)?;
            ProbeSpec::Tls(TlsProbe {
                server_name: c.server_name.clone().unwrap_or_else(|| host.clone()),
                host,
                port,
                warn_days: c.warn_days,
            })
        }
        MonitorCheck::Dns(c) => ProbeSpec::Dns(DnsProbe {
            name: c.name.clone(),
            record: record(c.record),
            expect: c.expect_answer.clone(),
            resolver: c.resolver,
        }),
        MonitorCheck::Postgres(c) => {
            let url = resolve(&config.environment, &c.url_secret).map_err(|e| FromConfigError::Secret {
                monitor: shown(name),
                environment: shown(&config.environment),
                secret: shown(&c.url_secret),
                source: e.into(),
            })?;
            ProbeSpec::Postgres(PostgresProbe { url })
        }
    };
    Ok(Some(MonitorSpec {
        name: name.to_owned(),
        probe,
        schedule: Schedule {
            interval: config.interval,
            // The reader always fills it for probing kinds; a hand-made
            // config may not.
            timeout: config.timeout.unwrap_or_else(|| default_timeout(config.interval)),
            retries: config.retries,
            location: config.location.clone(),
        },
        latency_budget: config.latency_budget,
    }))
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
    }
}

fn record(r: DnsRecordType) -> DnsRecord {
    match r {
        DnsRecordType::A => DnsRecord::A,
        DnsRecordType::Aaaa => DnsRecord::Aaaa,
        DnsRecordType::Cname => DnsRecord::Cname,
        DnsRecordType::Txt => DnsRecord::Txt,
        DnsRecordType::Mx => DnsRecord::Mx,
        DnsRecordType::Ns => DnsRecord::Ns,
        DnsRecordType::Srv => DnsRecord::Srv,
        DnsRecordType::Ptr => DnsRecord::Ptr,
        DnsRecordType::Caa => DnsRecord::Caa,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TOML: &str = r#"
project = "shop"

[environments.production]
kind = "production"
https = true
domain = "shop.example.com"
path = "/healthz"

[monitors.api]
environment = "production"
kind = "http"
url = "https://shop.example.com/api/health"
method = "HEAD"
headers = { Authorization = "Bearer x" }
expect_status = [200, 204]
body_contains = "ok"
interval = "30s"
timeout = "5s"
retries = 2
location = "eu-1"
latency_budget = "800ms"
max_redirects = 0

[monitors.port]
environment = "production"
kind = "tcp"
address = "[::1]:5432"
interval = "4s"

[monitors.cert]
environment = "production"
kind = "tls"
address = "shop.example.com:443"
warn_days = 21

[monitors.mx]
environment = "production"
kind = "dns"
name = "example.com"
record = "MX"
expect_answer = ["mail.example.com"]
resolver = "127.0.0.1:5353"

[monitors.db]
environment = "production"
kind = "postgres"
url_secret = "DATABASE_URL"

[monitors.cron]
environment = "production"
kind = "push"
"#;

    fn config() -> rollway_config::Config {
        match rollway_config::parse(TOML, "rollway.toml") {
            Ok(c) => c,
            Err(d) => panic!("the test config does not parse: {d:?}"),
        }
    }

    #[test]
    fn each_kind_becomes_its_probe_with_the_schedule_of_its_keys() {
        let config = config();
        let all = config.all_monitors();
        let spec = |name: &str| {
            monitor_spec(name, &all[name], |env: &str, secret: &str| {
                Ok::<_, std::io::Error>(format!("postgres://u:pw@db/{env}?{secret}"))
            })
            .unwrap()
        };
        let s = |interval: u64, timeout_ms: u64, retries: u32, location: Option<&str>| Schedule {
            interval: Duration::from_secs(interval),
            timeout: Duration::from_millis(timeout_ms),
            retries,
            location: location.map(str::to_owned),
        };

        let api = spec("api").unwrap();
        assert_eq!(
            api.probe,
            ProbeSpec::Http(HttpProbe {
                method: Method::HEAD,
                headers: vec![("Authorization".into(), "Bearer x".into())],
                expect_status: vec![200, 204],
                body_contains: Some("ok".into()),
                max_redirects: 0,
                ..HttpProbe::get("https://shop.example.com/api/health")
            })
        );
        assert_eq!(api.schedule, s(30, 5_000, 2, Some("eu-1")));
        assert_eq!(api.latency_budget, Some(Duration::from_millis(800)));

        // Defaults: interval 1 m, timeout min(10 s, interval / 2), 3 retries.
        let port = spec("port").unwrap();
        assert_eq!(
            port.probe,
            ProbeSpec::Tcp {
                host: "::1".into(),
                port: 5432
            }
        );
        assert_eq!(port.schedule, s(4, 2_000, 3, None));

        let cert = spec("cert").unwrap();
        assert_eq!(
            cert.probe,
            ProbeSpec::Tls(TlsProbe {
                host: "shop.example.com".into(),
                port: 443,
                server_name: "shop.example.com".into(),
                warn_days: 21
            })
        );
        assert_eq!(cert.schedule, s(60, 10_000, 3, None));

        assert_eq!(
            spec("mx").unwrap().probe,
            ProbeSpec::Dns(DnsProbe {
                name: "example.com".into(),
                record: DnsRecord::Mx,
                expect: vec!["mail.example.com".into()],
                resolver: Some("127.0.0.1:5353".parse().unwrap()),
            })
        );
        assert_eq!(
            spec("db").unwrap().probe,
            ProbeSpec::Postgres(PostgresProbe {
                url: "postgres://u:pw@db/production?DATABASE_URL".into()
            })
        );
        assert_eq!(spec("cron"), None, "push monitors have nothing to probe");

        // The domain's default monitor.
        let domain = spec("production-domain").unwrap();
        assert!(
            matches!(&domain.probe, ProbeSpec::Http(h) if h.url == "https://shop.example.com/healthz"),
            "{domain:?}"
        );
    }

    #[test]
    fn a_secret_that_cannot_be_read_names_the_monitor_and_the_secret() {
        let config = config();
        let all = config.all_monitors();
        let err = monitor_spec("db", &all["db"], |_: &str, _: &str| {
            Err(std::io::Error::other("the vault is locked"))
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "monitor 'db': cannot read the secret 'DATABASE_URL' of environment 'production'"
        );
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("the vault is locked")
        );

        // The resolver is asked only for PostgreSQL monitors.
        let asked = std::cell::Cell::new(false);
        let api = monitor_spec("api", &all["api"], |_: &str, _: &str| {
            asked.set(true);
            Err(std::io::Error::other("unused"))
        });
        assert!(api.is_ok() && !asked.get());
    }

    #[test]
    fn an_address_of_a_hand_made_config_that_does_not_split_is_an_error() {
        let config = config();
        let mut port = config.all_monitors()["port"].clone();
        port.check = MonitorCheck::Tcp(rollway_config::TcpCheck {
            address: "no-port".into(),
        });
        let err = monitor_spec("port", &port, |_: &str, _: &str| Ok::<_, std::io::Error>(String::new())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "monitor 'port': address 'no-port' cannot be probed: 'no-port' has no port"
        );
    }
}
