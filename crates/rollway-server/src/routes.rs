//! The routes: `/healthz`, `/readyz` and `/metrics`. Each failure becomes
//! one status and body here ([`Failure`]), nowhere else.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use rollway_app::serve::Watcher;

/// What every handler shares.
#[derive(Clone)]
struct Shared {
    watcher: Watcher,
    registry: Arc<Registry>,
}

pub(crate) fn router(watcher: Watcher, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Shared { watcher, registry })
}

/// Why a handler could not answer as asked.
enum Failure {
    /// The metrics could not be encoded (a bug, not the caller's fault).
    Encode(std::fmt::Error),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Encode(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the metrics: {e}\n"),
            )
                .into_response(),
        }
    }
}

/// The process runs and answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the store answers and the scheduler runs, else 503; the body
/// says which either way.
async fn readyz(State(s): State<Shared>) -> Response {
    let r = s.watcher.readiness().await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(r)).into_response()
}

async fn metrics(State(s): State<Shared>) -> Result<Response, Failure> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.registry).map_err(Failure::Encode)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
