//! The watching half's probes (OPERATIONS.md "Monitors", "Samples"): one
//! [`Prober`] turns a [`ProbeSpec`] — http(s), tcp, tls, dns or postgres —
//! into a [`ProbeResult`], a sample-shaped value with the outcome
//! `ok | error | unavailable` exactly as OPERATIONS.md defines it:
//!
//! - `unavailable`: no response at all — refused, reset, timeout, TLS or
//!   DNS failure;
//! - `error`: a response, but with status 5xx or a failed expectation;
//! - `ok` otherwise.
//!
//! Every probe is bounded by its timeout as a whole (connect, handshake,
//! request, body), and an HTTP body is read to at most [`BODY_KEEP`] bytes.
//! Probes never fail as Rust errors: whatever happens is the sample.
//! Times come from the model's `Clock` (the certificate check included), so
//! tests can pin them.
//!
//! Around the probes: [`MonitorSpec`] (a monitor as plain values, made from
//! `rollway.toml` by [`monitor_spec`]), the [`Scheduler`] that runs many of
//! them with bounded concurrency and hands results to a [`SampleSink`], and
//! [`MonitorState`], a monitor's up / down / pending / maintenance /
//! paused from its samples, and [`PushSilence`], the slots a silent push
//! monitor missed.
//!
//! [`backup`] holds the backups' IO: `pg_dump` / `pg_restore` streamed
//! through age encryption and SHA-256 into a local storage directory or an
//! S3-compatible bucket (`object_store`).

pub mod backup;
mod dns;
mod from_config;
mod http;
mod lag;
mod monitor;
mod postgres;
mod result;
mod scheduler;
mod silence;
mod state;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rollway_model::Clock;
use rustls::pki_types::CertificateDer;

pub use dns::DnsRecord;
pub use from_config::{FromConfigError, monitor_spec};
pub use http::{BODY_KEEP, cache_status};
pub use lag::{LAG_BOUNDS_MS, LagSummary};
pub use monitor::{MonitorSpec, Schedule};
pub use reqwest::Method;
pub use result::{Detail, ProbeResult};
pub use scheduler::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_SINK_CAPACITY, MonitorStats, Probe, SINK_BATCH, Sample, SampleSink, Scheduler,
    SchedulerError, SchedulerOptions, SchedulerStats, SinkError, slot_phase,
};
pub use silence::{NO_CHECK_IN, PushSilence, SILENCE_BACKFILL, last_check_in, silence_sample, silent_since};
pub use state::{MonitorState, MonitorStatus};

/// What one probe asks; the caller maps a monitor's config onto it.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    Http(HttpProbe),
    /// A TCP connect to `host:port`.
    Tcp {
        host: String,
        port: u16,
    },
    Tls(TlsProbe),
    Dns(DnsProbe),
    Postgres(PostgresProbe),
}

/// An HTTP(S) request and what its answer must show.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    /// Statuses that count as ok; empty: any status but 5xx.
    pub expect_status: Vec<u16>,
    /// Text the kept body must contain.
    pub body_contains: Option<String>,
    /// A JSON pointer into the body that must exist…
    pub json_pointer: Option<String>,
    /// …and, when given, equal this.
    pub equals: Option<serde_json::Value>,
    /// Redirects followed; once they run out the redirect is the answer.
    pub max_redirects: u32,
}

impl HttpProbe {
    /// A GET of `url` with no expectations and 5 redirects.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: Method::GET,
            headers: Vec::new(),
            expect_status: Vec::new(),
            body_contains: None,
            json_pointer: None,
            equals: None,
            max_redirects: 5,
        }
    }
}

/// A TLS handshake with `host:port`: the chain is checked against the
/// prober's roots for `server_name`, and the leaf's expiry against `warn_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProbe {
    pub host: String,
    pub port: u16,
    pub server_name: String,
    pub warn_days: u32,
}

/// A DNS question for `name`'s `record` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsProbe {
    pub name: String,
    pub record: DnsRecord,
    /// Answers that must all be present (names compared without case and
    /// trailing dot); empty: any answer of that type.
    pub expect: Vec<String>,
    /// The resolver asked; `None`: the system's (`/etc/resolv.conf`).
    pub resolver: Option<SocketAddr>,
}

/// `SELECT 1` over a connection to `url`. The URL holds a password, so
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresProbe {
    pub url: String,
}

impl std::fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProbe").field("url", &"…").finish()
    }
}

/// Why a [`Prober`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot build the http client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot use the tls roots: {0}")]
    TlsRoots(#[source] rustls::Error),
    #[error("cannot build the tls verifier: {0}")]
    TlsVerifier(#[source] rustls::client::VerifierBuilderError),
}

/// What every probe of one prober shares.
#[derive(Debug, Clone, Default)]
pub struct ProberOptions {
    /// Trusted in addition to the system's roots, e.g. a private CA; DER.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// Runs probes. Cheap to share: one HTTP client and one TLS verifier for
/// every probe (HTTP connections are not pooled, so each probe measures a
/// fresh connect, handshake and answer).
#[derive(Debug, Clone)]
pub struct Prober {
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    tls: Arc<tls::Verifier>,
}

impl Prober {
    pub fn new(clock: Arc<dyn Clock>, options: ProberOptions) -> Result<Self, OpsError> {
        Ok(Self {
            http: http::client(&options.extra_roots)?,
            tls: Arc::new(tls::Verifier::new(&options.extra_roots)?),
            clock,
        })
    }

    /// Probes once, within `timeout`; the result's `at` is when it started.
    pub async fn probe(&self, spec: &ProbeSpec, timeout: Duration) -> ProbeResult {
        let at = self.clock.now();
        let started = tokio::time::Instant::now();
        let run = async {
            match spec {
                ProbeSpec::Http(p) => http::probe(&self.http, p).await,
                ProbeSpec::Tcp { host, port } => tcp(host, *port).await,
                ProbeSpec::Tls(p) => tls::probe(&self.tls, self.clock.as_ref(), p).await,
                ProbeSpec::Dns(p) => dns::probe(p, timeout).await,
                ProbeSpec::Postgres(p) => postgres::probe(&self.tls, p).await,
            }
        };
        let seen = match tokio::time::timeout(timeout, run).await {
            Ok(seen) => seen,
            Err(_) => result::timed_out(spec, timeout),
        };
        seen.finish(at, started.elapsed())
    }
}

impl ProbeSpec {
    /// What the probe reaches, for messages: a URL, `host:port` or a name.
    /// A PostgreSQL URL is never shown (it holds the password).
    pub fn target(&self) -> String {
        match self {
            Self::Http(p) => p.url.clone(),
            Self::Tcp { host, port } => host_port(host, *port),
            Self::Tls(p) => host_port(&p.host, p.port),
            Self::Dns(p) => format!("{} {} lookup", p.name, p.record),
            Self::Postgres(_) => "postgres".to_owned(),
        }
    }
}

/// `host:port`, IPv6 hosts in brackets.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn tcp(host: &str, port: u16) -> result::Seen {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(_) => result::Seen::ok(),
        Err(e) => result::Seen::unavailable(format!("cannot connect to {}: {e}", host_port(host, port))),
    }
}

/// The error and its causes, ": "-joined: reqwest and tokio-postgres keep
/// the useful part ("Connection refused") in the source chain.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
