//! `POST /v1/deploy[?migrate=true]`: compile the project again from disk
//! and deploy it (`deploy.rs`). The body is optional; when given it is a
//! JSON object whose only setting is `migrate` (a boolean, as the query).
//! Answers `200 {"version", "changed", "flows", "migrated", "unmapped"}`;
//! a compile error `422` with every diagnostic (file, line, column, code)
//! and the running version kept; a bundle that cannot run here `422`; a
//! daemon started without a project `409`.

use super::Shared;
use super::api::{ApiError, ApiResult, body_bytes, json, parse_body};
use super::deploy::{self, DeployError, ReloadError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};
use std::sync::Arc;

/// The handler.
pub async fn deploy(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let migrate = migrate_of(query.as_deref(), &body_bytes(body)?)?;
    let migrate = migrate.unwrap_or(shared.config.migrate);
    match deploy::redeploy(&shared, "api", migrate).await {
        Ok(report) => Ok(json(StatusCode::OK, json!(report))),
        Err(DeployError::Reload(ReloadError::Diagnostics(ds))) => {
            let errors = ds.iter().filter(|d| d.severity == "error").count();
            let body = json!({"error": {
                "code": "compile_error",
                "message": format!("the project has {errors} error(s); the running version stays"),
                "diagnostics": ds,
            }});
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response())
        }
        Err(e @ (DeployError::Reload(ReloadError::Unreadable(_)) | DeployError::Invalid(_))) => {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "deploy_refused",
                format!("{e}; the running version stays"),
            ))
        }
        Err(e @ DeployError::NoProject) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_project",
            e.to_string(),
        )),
        Err(e @ DeployError::Store(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )),
    }
}

/// `migrate` from the query or the body (the query wins); `None`: the
/// daemon's `--migrate`.
fn migrate_of(query: Option<&str>, body: &[u8]) -> Result<Option<bool>, ApiError> {
    let mut from_body = None;
    if !body.is_empty() {
        let v = parse_body(body)?;
        let Json::Object(o) = v else {
            return Err(ApiError::invalid("the body must be a JSON object"));
        };
        for (k, v) in o {
            match (k.as_str(), v) {
                ("migrate", Json::Bool(b)) => from_body = Some(b),
                ("migrate", _) => return Err(ApiError::invalid("`migrate` must be a boolean")),
                (other, _) => {
                    return Err(ApiError::invalid(format!(
                        "unknown setting `{other}` (only `migrate` is taken)"
                    )));
                }
            }
        }
    }
    let Some(pair) = query.unwrap_or("").split('&').find(|p| !p.is_empty()) else {
        return Ok(from_body);
    };
    match pair.split_once('=').unwrap_or((pair, "")) {
        ("migrate", "true" | "1" | "") => Ok(Some(true)),
        ("migrate", "false" | "0") => Ok(Some(false)),
        ("migrate", other) => Err(ApiError::invalid(format!(
            "`migrate` must be `true` or `false`, not `{other}`"
        ))),
        (other, _) => Err(ApiError::invalid(format!("unknown parameter `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::migrate_of;

    #[test]
    fn migrate_comes_from_the_query_or_the_body() {
        assert_eq!(migrate_of(None, b"").ok(), Some(None));
        assert_eq!(migrate_of(Some("migrate=true"), b"").ok(), Some(Some(true)));
        assert_eq!(
            migrate_of(None, br#"{"migrate": true}"#).ok(),
            Some(Some(true))
        );
        assert_eq!(
            migrate_of(Some("migrate=false"), br#"{"migrate": true}"#).ok(),
            Some(Some(false))
        );
        assert!(migrate_of(Some("migrate=maybe"), b"").is_err());
        assert!(migrate_of(Some("x=1"), b"").is_err());
        assert!(migrate_of(None, br#"{"migrate": 1}"#).is_err());
        assert!(migrate_of(None, b"[1]").is_err());
    }
}
