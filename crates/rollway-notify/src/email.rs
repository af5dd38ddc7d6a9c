//! E-mail deliveries over SMTP (lettre, rustls): a plain-text message whose
//! subject is the notification's line and whose Message-ID is derived from
//! the idempotency key, so a retried delivery is the same message.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rollway_model::mask::Masker;

use crate::render::text;
use crate::{Failure, Notification, Sent};

/// What opens each certificate of a `ca_file`.
const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (a relay on the same machine or a test server).
    Plain,
    /// A plain connection upgraded with STARTTLS, which must succeed.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone, PartialEq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM certificates of CAs trusted besides the system's (`ca_file`).
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// Mail to `to` from `from` through `server`.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub server: SmtpServer,
    pub from: String,
    pub to: Vec<String>,
}

/// The message body: the line, then each field on its own line.
fn body(n: &Notification) -> String {
    let mut lines = vec![text(n), String::new()];
    let mut field = |name: &str, value: String| lines.push(format!("{name:<12}{value}"));
    field("alert", n.alert_id.clone());
    field("status", n.status.clone());
    field("environment", n.environment.clone());
    field("rule", n.rule.clone());
    field("subject", n.subject.clone());
    field(
        "metric",
        match n.value {
            Some(v) => format!("{} = {v} (threshold {})", n.metric, n.threshold),
            None => format!("{} (threshold {})", n.metric, n.threshold),
        },
    );
    if let Some(op) = &n.operator {
        field("operator", op.clone());
    }
    if let Some(note) = &n.note {
        field("note", note.clone());
    }
    field("at", n.at.to_rfc3339());
    lines.join("\n") + "\n"
}

pub(crate) async fn send(masker: &Masker, timeout: Duration, e: &Email, n: &Notification) -> Result<Sent, Failure> {
    let mailbox = |addr: &str, role: &str| {
        addr.parse::<Mailbox>().map_err(|err| {
            Failure::fatal(format!(
                "e-mail {role} address '{addr}' is not an address: {err}; fix it in rollway.toml"
            ))
        })
    };
    let mut builder = Message::builder()
        .from(mailbox(&e.from, "from")?)
        .subject(masker.mask(&text(n)))
        .message_id(Some(format!("<{}@rollway>", n.idempotency_key)));
    if e.to.is_empty() {
        return Err(Failure::fatal(
            "the e-mail channel has no recipient; add `to` in rollway.toml",
        ));
    }
    for to in &e.to {
        builder = builder.to(mailbox(to, "to")?);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(masker.mask(&body(n)))
        .map_err(|err| Failure::fatal(format!("cannot build the e-mail: {err}")))?;

    let s = &e.server;
    let server = format!("{}:{}", s.host, s.port);
    let tls_failed = |err: lettre::transport::smtp::Error| {
        Failure::fatal(format!("cannot set up tls for smtp server {server}: {err}"))
    };
    let transport = match (s.security, &s.ca_pem) {
        (Security::Plain, _) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        (Security::StartTls, None) => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(tls_failed)?
        }
        (Security::Tls, None) => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(tls_failed)?,
        // The system's roots and the CAs of `ca_file`, through the same rustls.
        (security, Some(pem)) => {
            let none = |why: String| {
                Failure::fatal(format!(
                    "the ca_file of smtp server {server} holds no PEM certificate ({why}): give a file of \
                     -----BEGIN CERTIFICATE----- blocks"
                ))
            };
            // Text without a certificate block parses as no certificate at all.
            if !pem.windows(PEM_BEGIN.len()).any(|w| w == PEM_BEGIN) {
                return Err(none("no certificate block".to_owned()));
            }
            let ca = Certificate::from_pem(pem).map_err(|err| none(err.to_string()))?;
            let params = TlsParameters::builder(s.host.clone())
                .add_root_certificate(ca)
                .build_rustls()
                .map_err(tls_failed)?;
            let tls = if security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            };
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).tls(tls)
        }
    };
    let mut transport = transport.port(s.port).timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&s.username, &s.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = transport.build();
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => Err(Failure::retry(format!(
            "smtp server {server} did not finish within {}",
            rollway_model::time::format_duration(timeout)
        ))),
        Ok(Ok(response)) => Ok(Sent {
            answer: format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            ),
        }),
        Ok(Err(err)) => {
            let message = masker.mask(&format!("smtp server {server} refused the e-mail: {err}"));
            if err.is_permanent() {
                Err(Failure::fatal(message))
            } else {
                // Transient replies (4xx), no connection, a timeout, TLS.
                Err(Failure::retry(message))
            }
        }
    }
}
