//! The API address while the daemon waits for its database at start
//! ([`not_ready_until`]): `/healthz` answers 200 (the process is alive and
//! working on it), every other path 503 `not_ready` with the usual JSON
//! error body and `Retry-After`, so that a load balancer or a client sees a
//! clear "not yet" rather than a refused connection. The daemon's own
//! server takes the address over once the database is open.

use super::api::{ApiError, json};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;

/// Answers on `listen` as above while `work` runs; gives its output. Fails
/// only if the address cannot be bound.
pub async fn not_ready_until<F: Future>(listen: SocketAddr, work: F) -> Result<F::Output, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .fallback(not_ready);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the waiting API stopped");
        }
    });
    let out = work.await;
    server.abort();
    // a cancelled task is the expected end; the listener is closed with it
    let _ = server.await;
    Ok(out)
}

async fn healthz() -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({"status": "ok", "database": "waiting"}),
    )
}

async fn not_ready() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the daemon is waiting for its database",
    )
    .into_response()
}
