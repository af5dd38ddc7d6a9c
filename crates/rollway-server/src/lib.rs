//! `rollway serve`: the long-running process (OPERATIONS.md "`rollway
//! serve`"). The app layer's watcher (`rollway_app::serve`) probes the
//! monitors, records samples, rolls up and prunes; this crate owns the
//! tokio runtime, the listening socket and the signals around it, and
//! serves
//!
//! - `/healthz`: the process answers (200 `ok`);
//! - `/readyz`: the store answers and the scheduler runs (200), else 503,
//!   both with a JSON body saying which;
//! - `/metrics`: OpenMetrics text (prometheus-client).
//!
//! SIGTERM or Ctrl-C: the listener stops taking connections, the
//! scheduler starts nothing new, the probes in flight end (each bounded by
//! its timeout) and their samples are written, the serve lock is released,
//! and [`serve`] returns (exit 0).

mod metrics;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use rollway_app::serve::SchedulerStats;
use rollway_app::{Code, Error, Project};
use serde::Serialize;

/// Where the server's problems (a failed sample write, rollup or
/// retention run: each is retried) and notes (a detached window watched,
/// its verdict) go: the caller's one output path.
pub trait Log: Send + Sync + 'static {
    fn problem(&self, line: &str);
    /// What happened to a detached stability window serve watches, or
    /// that something which failed works again.
    fn note(&self, line: &str);
}

/// What `serve` says once it listens.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The address it listens on (the port the system chose for `:0`).
    pub listen: SocketAddr,
    /// `http://ADDR`.
    pub url: String,
    /// Configured monitors, push ones included.
    pub monitors: usize,
    /// Of those, the ones probed here.
    pub probed: usize,
    pub store: String,
}

/// What a stopped server leaves: the scheduler's final counts.
#[derive(Debug, Clone)]
pub struct Served {
    pub stats: SchedulerStats,
}

/// Runs `rollway serve` for `project` on `listen` until SIGTERM or Ctrl-C:
/// prepares the watcher (a second serve on a SQLite store: exit 3), binds
/// (an address that cannot be bound: exit 1, naming it), calls `started`,
/// serves, then stops gracefully.
pub fn serve(
    project: &Project,
    listen: SocketAddr,
    started: impl FnOnce(&Started),
    log: Arc<dyn Log>,
) -> Result<Served, Error> {
    let prepared = rollway_app::serve::prepare(project)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rollway-serve")
        .build()
        .map_err(|e| Error::failed(format_args!("cannot start the server's runtime: {e}")))?;
    // Bind first, in its own block_on: when it fails, `prepared` (and the
    // store in it) is dropped here, outside the runtime, where a
    // PostgreSQL client may close.
    let (listener, address, shutdown) = runtime.block_on(async {
        // Signals first: a SIGTERM that arrives while binding still stops
        // the server gracefully rather than killing it.
        let shutdown = shutdown_signal()?;
        let cannot = |e| Error::new(Code::Failed, e).context(format!("cannot listen on {listen}"));
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(cannot)?;
        let address = listener.local_addr().map_err(cannot)?;
        Ok::<_, Error>((listener, address, shutdown))
    })?;
    runtime.block_on(async move {
        let info = Started {
            listen: address,
            url: format!("http://{address}"),
            monitors: prepared.monitors().len(),
            probed: prepared.monitors().iter().filter(|m| m.probed).count(),
            store: prepared.store(),
        };
        let (mut registry, recorder) = metrics::registry(log);
        let watcher = prepared.start(recorder)?;
        registry.register_collector(Box::new(metrics::SchedulerCollector(watcher.clone())));
        let app = routes::router(watcher.clone(), Arc::new(registry));
        started(&info);
        // From the signal on, /readyz answers 503 (a load balancer stops
        // sending) while the listener drains.
        let stopping = watcher.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.begin_stop();
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::new(Code::Failed, e).context(format!("serving on {address} failed")));
        // Stop the watcher whether or not the listener ended well: the
        // samples in flight are written either way.
        let stopped = watcher.stop().await;
        served?;
        Ok(Served { stats: stopped.stats })
    })
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C).
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let register = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Error::failed(format_args!("cannot watch for {name}: {e}")))
    };
    let mut term = register(SignalKind::terminate(), "SIGTERM")?;
    let mut int = register(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
