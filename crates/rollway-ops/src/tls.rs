//! TLS probes over tokio-rustls: the handshake, the chain checked against
//! the system's roots (plus the prober's own) at the `Clock`'s time, and the leaf's notAfter (read
//! with x509-cert). The check is recorded rather than enforced during the
//! handshake, so an untrusted or expired certificate is still read: for a
//! tls monitor the certificate is the subject, and a bad one is an `error`
//! (a failed expectation), not `unavailable`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rollway_model::Clock;
use rollway_model::time::Timestamp;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_cert::der::Decode;

use crate::result::{Detail, Seen};
use crate::{OpsError, TlsProbe, host_port};

const DAY_MS: i64 = 86_400_000;

/// The roots and the crypto every TLS probe shares.
#[derive(Debug)]
pub(crate) struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<Self, OpsError> {
        // The system's trust store, as the HTTP probes use it (reqwest's
        // platform verifier): one answer to "is this certificate trusted".
        // Certificates it cannot parse are skipped; a machine without any
        // trusts only `extra_roots`.
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        for root in extra_roots {
            roots.add(root.clone()).map_err(OpsError::TlsRoots)?;
        }
        // Named here rather than taken from a process-wide default, so no
        // other crate's choice of provider changes what a probe does.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(OpsError::TlsVerifier)?;
        Ok(Self { webpki, provider })
    }
}

impl Verifier {
    /// A client config whose handshakes `recording` watches.
    fn config(&self, recording: Arc<Recording>) -> Result<ClientConfig, rustls::Error> {
        Ok(ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(recording)
            .with_no_client_auth())
    }

    /// A client config that encrypts without judging the certificate (the
    /// handshake signatures are still checked): libpq's `sslmode=require`.
    pub(crate) fn encrypt_only(&self) -> Result<ClientConfig, rustls::Error> {
        self.config(Arc::new(Recording {
            webpki: self.webpki.clone(),
            now: None,
            verdict: Mutex::new(None),
        }))
    }
}

/// One handshake's verifier: checks the chain at `now` (none: the chain is
/// not judged), keeps the verdict and lets the handshake go on. Handshake
/// signatures are always checked (a server must hold the certificate's key).
#[derive(Debug)]
struct Recording {
    webpki: Arc<WebPkiServerVerifier>,
    now: Option<UnixTime>,
    verdict: Mutex<Option<Result<(), rustls::Error>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(now) = self.now else {
            return Ok(ServerCertVerified::assertion());
        };
        let verdict = self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

pub(crate) async fn probe(verifier: &Verifier, clock: &dyn Clock, p: &TlsProbe) -> Seen {
    let target = host_port(&p.host, p.port);
    let now = clock.now();
    let server_name = match ServerName::try_from(p.server_name.clone()) {
        Ok(n) => n,
        Err(e) => return Seen::error(format!("'{}' is not a server name: {e}", p.server_name)),
    };
    let recording = Arc::new(Recording {
        webpki: verifier.webpki.clone(),
        now: Some(UnixTime::since_unix_epoch(Duration::from_millis(
            u64::try_from(now.as_millis()).unwrap_or(0),
        ))),
        verdict: Mutex::new(None),
    });
    let config = match verifier.config(recording.clone()) {
        Ok(c) => c,
        Err(e) => return Seen::error(format!("cannot set up tls for {target}: {e}")),
    };
    let tcp = match tokio::net::TcpStream::connect((p.host.as_str(), p.port)).await {
        Ok(s) => s,
        Err(e) => return Seen::unavailable(format!("cannot connect to {target}: {e}")),
    };
    let stream = match tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) => return Seen::unavailable(format!("tls handshake with {target} failed: {e}")),
    };
    let Some(leaf) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return Seen::error(format!("{target} sent no certificate"));
    };
    let not_after = match not_after(leaf) {
        Ok(t) => t,
        Err(e) => return Seen::error(format!("the certificate of {target} cannot be read: {e}")),
    };
    let days_left = (not_after.as_millis() - now.as_millis()).div_euclid(DAY_MS);
    let verdict = recording.verdict.lock().unwrap_or_else(PoisonError::into_inner).take();
    let detail = Detail::Tls {
        not_after,
        days_left,
        verified: matches!(verdict, Some(Ok(()))),
    };
    let seen = match verdict {
        Some(Ok(())) if days_left < i64::from(p.warn_days) => Seen::error(format!(
            "the certificate of {target} expires in {days_left} days, fewer than the {} days warned at",
            p.warn_days
        )),
        Some(Ok(())) => Seen::ok(),
        Some(Err(e)) => Seen::error(format!(
            "the certificate of {target} is not valid for {}: {e}",
            p.server_name
        )),
        None => Seen::error(format!("the certificate of {target} was not checked")),
    };
    seen.with_detail(detail)
}

/// The certificate's notAfter.
fn not_after(der: &[u8]) -> Result<Timestamp, String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let since_epoch = cert.tbs_certificate.validity.not_after.to_unix_duration();
    Ok(Timestamp::from_millis(
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX),
    ))
}
