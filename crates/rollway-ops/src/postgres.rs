//! PostgreSQL probes: `SELECT 1` over a real connection, in TLS (rustls)
//! when the URL's `sslmode` asks for it. As with libpq, `sslmode=require`
//! encrypts without judging the server's certificate (a database behind a
//! private CA is still probed), and `prefer` (the default) falls back to a
//! plain connection when the server offers no TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::result::Seen;
use crate::tls::Verifier;
use crate::{PostgresProbe, chain};

/// Ends the connection task when the probe ends, a timeout included.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn probe(verifier: &Verifier, p: &PostgresProbe) -> Seen {
    let config = match verifier.encrypt_only() {
        Ok(c) => Arc::new(c),
        Err(e) => return Seen::error(format!("cannot set up tls for postgres: {e}")),
    };
    // Never the URL in messages: it holds the password.
    let (client, connection) = match tokio_postgres::connect(&p.url, Rustls(config)).await {
        Ok(c) => c,
        Err(e) => return classify("connecting", &e),
    };
    let _connection = AbortOnDrop(tokio::spawn(async move {
        // Its error, if any, is the query's error too.
        let _ = connection.await;
    }));
    match client.simple_query("SELECT 1").await {
        Ok(_) => Seen::ok(),
        Err(e) => classify("SELECT 1", &e),
    }
}

/// An answer from the server (a refused login, a missing database) is an
/// `error`; no answer (refused, reset, closed) is `unavailable`.
fn classify(step: &str, e: &tokio_postgres::Error) -> Seen {
    if let Some(db) = e.as_db_error() {
        return Seen::error(format!(
            "postgres refused {step}: {} ({})",
            db.message(),
            db.code().code()
        ));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return Seen::unavailable(format!("postgres gave no answer to {step}: {}", chain(e)));
        }
        source = s.source();
    }
    if e.is_closed() {
        return Seen::unavailable(format!("postgres closed the connection during {step}"));
    }
    Seen::error(format!("postgres {step} failed: {}", chain(e)))
}

/// tokio-postgres' TLS hooks over tokio-rustls.
struct Rustls(Arc<rustls::ClientConfig>);

struct Handshake {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

/// A TLS session to the server. No channel binding: SCRAM logins work
/// without it unless the URL says `channel_binding=require`.
struct Session<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Session<S>;
    type TlsConnect = Handshake;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, Self::Error> {
        Ok(Handshake {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Session<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Session<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { connector.connect(self.name, stream).await.map(Session) })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Session<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Session<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Session<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
