//! The API's edge middleware (docs/operations.md, "The HTTP API"): the
//! access log with its request id, and the browser guards of `/v1/*`.
//!
//! * [`access_log`] (outermost): gives every request an id — the caller's
//!   `X-Request-Id` when it is short and plain, a fresh one otherwise —,
//!   returns it as `x-request-id`, runs the request inside a `request` span
//!   carrying it, and logs one `info` line under the target
//!   [`ACCESS_TARGET`]: method, route *template* (`/postback/{source}`,
//!   never the raw path: its query may hold a postback token), status,
//!   latency in ms.
//! * [`refuse_cross_origin`]: a `/v1/*` request that a browser marks as
//!   cross-site (an `Origin` header, or `Sec-Fetch-Site: cross-site` or
//!   `same-site`) is refused 403 `forbidden_origin` unless its origin is
//!   allowed (`--allow-origin`), CORS preflights included. Non-browser
//!   clients send neither header. An `OPTIONS` that is not a preflight
//!   (`Origin` and `Access-Control-Request-Method`) is answered 405 as
//!   before: no route takes `OPTIONS`.
//! * [`cors`], inside it: a preflight from an allowed origin is answered
//!   here, before the token check (browsers send no credentials with it)
//!   and never reaching a handler: `Access-Control-Allow-Origin` (that
//!   origin), `Vary: origin`, the methods and request headers `/v1/*`
//!   takes, `Access-Control-Max-Age` ([`CORS_MAX_AGE`]). Every other answer
//!   to an allowed origin carries `Access-Control-Allow-Origin` and
//!   `Access-Control-Expose-Headers: x-request-id`. No credentials mode:
//!   the API token goes in `Authorization`, not a cookie.
//! * [`require_json`]: a `/v1/*` request with a body must say
//!   `Content-Type: application/json` (parameters such as `charset` allowed),
//!   else 415 `unsupported_media_type`: a browser form or `text/plain` POST,
//!   which needs no CORS preflight, never reaches a handler.

use super::Shared;
use super::api::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument as _;

/// The log target of the access lines (`NUDGE_LOG=nudge::access=off` mutes them).
pub const ACCESS_TARGET: &str = "nudge::access";

/// The request id header, read and returned.
pub const REQUEST_ID: &str = "x-request-id";

/// The caller's id when it is 1–64 characters of `[A-Za-z0-9._-]`, else a
/// fresh one (16 hex digits).
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    match given {
        Some(v) => v.to_string(),
        None => format!("{:016x}", rand::rng().random::<u64>()),
    }
}

/// The route template, or `(no route)` for a path no route matches.
fn route(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string())
}

/// One access line per request, and its `x-request-id`. Added with
/// `Router::layer`, it runs after routing, so the route template is known.
pub async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers());
    let (method, route) = (req.method().clone(), route(&req));
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    tracing::info!(
        target: ACCESS_TARGET,
        request_id = %id,
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    res
}

/// Whether `origin` is one of `allowed` (exact, case-insensitive, a
/// trailing `/` ignored; `*` allows any).
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    allowed.iter().any(|a| {
        let a = a.trim().trim_end_matches('/');
        a == "*" || a.eq_ignore_ascii_case(origin)
    })
}

/// How long a browser may cache a preflight's answer.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS answers of `/v1/*` for the `allowed` origins.
pub fn cors(allowed: &[String]) -> CorsLayer {
    let allowed = allowed.to_vec();
    let request_id = HeaderName::from_static(REQUEST_ID);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origin_allowed(&allowed, o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            request_id.clone(),
        ])
        .expose_headers([request_id])
        .max_age(CORS_MAX_AGE)
}

/// Whether a request is a CORS preflight.
fn is_preflight(req: &Request) -> bool {
    let h = req.headers();
    req.method() == Method::OPTIONS
        && h.contains_key(header::ORIGIN)
        && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// 403 for a cross-site browser request to `/v1/*` from an origin not
/// allowed; 405 for an `OPTIONS` that is not a preflight.
pub async fn refuse_cross_origin(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::OPTIONS && !is_preflight(&req) {
        return super::api::wrong_method().await;
    }
    let headers = req.headers();
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or(""));
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let allowed = &shared.config.allow_origins;
    let refused = match origin {
        Some(o) => !origin_allowed(allowed, o),
        None => matches!(fetch_site, "cross-site" | "same-site") && !origin_allowed(allowed, "*"),
    };
    if refused {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "cross-origin requests to /v1 are refused; allow the origin with `--allow-origin`",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a `Content-Type` value is JSON (`application/json`, any parameters).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the request carries a body (a length above zero, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match length {
        Some(n) => n != "0",
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// 415 for a `/v1/*` body that is not declared JSON.
pub async fn require_json(req: Request, next: Next) -> Response {
    let headers = req.headers();
    if has_body(headers) {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or(""));
        if !ct.is_some_and(is_json) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with `Content-Type: application/json`",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }

    #[test]
    fn origins_match_exactly() {
        let allowed = vec!["https://admin.example.com/".to_string()];
        assert!(origin_allowed(&allowed, "https://ADMIN.example.com"));
        assert!(!origin_allowed(&allowed, "https://admin.example.com.evil"));
        assert!(!origin_allowed(&allowed, "null"));
        assert!(!origin_allowed(&[], "https://admin.example.com"));
        assert!(origin_allowed(&["*".to_string()], "https://x.example"));
    }

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(request_id(&h), "abc-123_x.y");
        h.insert(REQUEST_ID, HeaderValue::from_static("a b\"c"));
        let fresh = request_id(&h);
        assert_eq!(fresh.len(), 16, "{fresh}");
        assert_ne!(request_id(&HeaderMap::new()), fresh);
    }
}
