//! The HTTP API (RUNTIME.md §5a): the router, the bearer-token guard, the
//! JSON error shape, health, readiness and metrics. Handlers live in
//! `api_events.rs` (events, postbacks) and `api_admin.rs` (contacts, flows,
//! outbox).
//!
//! Every error is `{"error": {"code", "message"}}` with a 4xx status for bad
//! input; bodies are read as bytes and parsed here, so a malformed body, an
//! oversized one or a bad path never reaches axum's plain-text rejections.
//! A panic in a handler would be a bug: it is caught and answered 500 with
//! the same JSON shape, never a dropped connection. The JSON error mapping
//! sits outside the timeout, so every answer a tower layer makes (408, 413,
//! 404, 405, 415) has that shape; outermost is the access log
//! (`api_edge.rs`). On `/v1/*`, the origin guard and the CORS layer run
//! before the token check (a preflight is answered without one) and the
//! JSON content-type check after it (`api_edge.rs`). What hyper answers by
//! itself, before routing (a malformed head), gets the same shape in
//! `serve/parse_errors.rs`.

use super::Shared;
use super::apply::ApplyError;
use super::{api_admin, api_deploy, api_edge, api_events};
use crate::intake::same_secret;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The `Retry-After` of every 503 answer, in seconds.
pub const RETRY_AFTER_SECS: &str = "2";

/// An API error: status, stable code, message; a 503 carries `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn bad_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// An apply failure as an answer.
    pub fn from_apply(e: &ApplyError, prefix: &str) -> ApiError {
        let msg = format!("{prefix}{e}");
        match e {
            ApplyError::Invalid(_) | ApplyError::Aborted => ApiError::invalid(msg),
            ApplyError::NotFound(_) => ApiError::not_found("unknown_contact", msg),
            ApplyError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            ApplyError::Quarantined { .. } => {
                ApiError::new(StatusCode::CONFLICT, "quarantined", msg)
            }
            ApplyError::Payload { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
            }
            ApplyError::Store(_) | ApplyError::ShuttingDown | ApplyError::CommitLost => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §15.5.2: a 401 names the scheme it wants
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"nudge\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to try again (the database is away,
            // or the daemon is stopping); nothing of the request was kept
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        res
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON answer with a status.
pub fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Parse a body as a JSON value (the body limit applies before).
pub fn parse_body(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_json(
            "the request has no body; send a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_json(format!("the body is not valid JSON: {e}")))
}

/// The bytes of a body, with an oversized one answered 413.
pub fn body_bytes(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is too large",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the request body could not be read",
            )
        }
    })
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &shared.config.api_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(token, given) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API token (send `Authorization: Bearer …`)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Any error answer that is not already our JSON shape (an axum rejection:
/// a path that does not decode, a missing content type…) becomes one.
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text.to_lowercase()
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    ApiError::new(status, code, message).into_response()
}

async fn count_status(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    shared.metrics.http(res.status().as_u16());
    res
}

async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers reads and takes writes (see
/// `Store::ready`); 503 with the reason otherwise.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.store.ready(shared.clock.now()).await {
        Ok(()) => json(StatusCode::OK, serde_json::json!({"status": "ready"})),
        Err(e @ crate::store::StoreError::Unwritable(_)) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string())
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database is not reachable",
            )
            .into_response()
        }
    }
}

/// The gauges read from the store, and its write health. When the store
/// cannot be read, its gauges are left out (never shown as 0) and
/// `nudge_store_up` is 0.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let health = shared.store.write_health();
    let totals = shared.store.totals(shared.clock.now()).await;
    let mut gauges = vec![
        (
            "nudge_store_up",
            "1 when the database answers reads",
            i64::from(totals.is_ok()),
        ),
        (
            "nudge_store_writable",
            "1 while database writes go through, 0 after one failed",
            i64::from(health.failing.is_none()),
        ),
    ];
    match &totals {
        Ok(t) => gauges.extend(store_gauges(t)),
        Err(e) => tracing::warn!(error = %e, "metrics: the database cannot be read"),
    }
    let mut text = shared.metrics.render(&gauges);
    text.push_str(&format!(
        "# HELP nudge_store_write_failures_total database writes failed (conflicts not counted)\n\
         # TYPE nudge_store_write_failures_total counter\nnudge_store_write_failures_total {}\n",
        health.failures
    ));
    text.push_str(&shared.metrics.connections.render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn store_gauges(t: &crate::store::Totals) -> Vec<(&'static str, &'static str, i64)> {
    vec![
        (
            "nudge_quarantined_contacts",
            "contacts set aside because their stored state cannot be read",
            t.quarantined_contacts,
        ),
        (
            "nudge_quarantined_postbacks",
            "held postbacks set aside because their stored parameters cannot be read",
            t.quarantined_postbacks,
        ),
        ("nudge_contacts", "contacts stored", t.contacts),
        (
            "nudge_outbox_pending",
            "outbox rows waiting for delivery",
            t.outbox_pending,
        ),
        (
            "nudge_outbox_dead",
            "outbox rows given up (dead letters)",
            t.outbox_dead,
        ),
        (
            "nudge_outbox_delivered",
            "outbox rows delivered",
            t.outbox_delivered,
        ),
        (
            "nudge_due_contacts",
            "contacts with a wake time now or past",
            t.due,
        ),
    ]
}

async fn no_route() -> Response {
    ApiError::not_found("no_route", "no such endpoint").into_response()
}

pub(super) async fn wrong_method() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
    .into_response()
}

/// The whole API.
pub fn router(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/v1/events", post(api_events::events))
        .route(
            "/v1/contacts/{id}",
            get(api_admin::get_contact).put(api_admin::put_contact),
        )
        .route(
            "/v1/contacts/{id}/flows/{flow}",
            post(api_admin::contact_flow),
        )
        .route("/v1/flows", get(api_admin::flows))
        .route("/v1/flows/{flow}/{action}", post(api_admin::flow_action))
        .route("/v1/outbox", get(api_admin::outbox_list))
        .route("/v1/outbox/{id}/retry", post(api_admin::outbox_retry))
        .route("/v1/postbacks/rejected", get(api_admin::rejected_postbacks))
        .route("/v1/deploy", post(api_deploy::deploy))
        .route_layer(middleware::from_fn(api_edge::require_json))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        // set before `layer`, so that a preflight (no route takes OPTIONS)
        // meets the layers below, and the merge keeps it
        .method_not_allowed_fallback(wrong_method)
        .layer(api_edge::cors(&shared.config.allow_origins))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            api_edge::refuse_cross_origin,
        ));
    let limit = shared.config.body_limit;
    Router::new()
        .merge(v1)
        .route(
            "/postback/{source}",
            get(api_events::postback).post(api_events::postback),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred",
            )
            .into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            shared.config.http.request_timeout,
        ))
        // outside the timeout, so that its empty 408 gets the JSON shape too
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(shared.clone(), count_status))
        .layer(middleware::from_fn(api_edge::access_log))
        .with_state(shared)
}
