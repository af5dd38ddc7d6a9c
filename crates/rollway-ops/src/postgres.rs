//! PostgreSQL probes: `SELECT 1` over a real connection (no TLS yet: the
//! URL's `sslmode` must allow a plain connection).

use tokio::task::JoinHandle;

use crate::result::Seen;
use crate::{PostgresProbe, chain};

/// Ends the connection task when the probe ends, a timeout included.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn probe(p: &PostgresProbe) -> Seen {
    // Never the URL in messages: it holds the password.
    let (client, connection) = match tokio_postgres::connect(&p.url, tokio_postgres::NoTls).await {
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
