//! The handlers, one module per resource. Each checks the caller's scope
//! and account first, validates the input completely, and only then calls
//! the store (which records the change in the audit log).

pub mod accounts;
pub mod cas;
pub mod events;
pub mod hostnames;
pub mod managed_ca;
pub mod origin_pulls;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument as _;

/// `?account_id=` alone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountQ {
    /// The account (operator tokens; an account token may repeat its own).
    pub account_id: Option<i64>,
}

/// `?account_id=&after_id=&limit=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQ {
    /// The account.
    pub account_id: Option<i64>,
    /// Rows with ids above this.
    pub after_id: Option<i64>,
    /// Most rows (at most 1,000).
    pub limit: Option<u32>,
}

impl PageQ {
    fn page(&self) -> store::Page {
        store::Page {
            after_id: self.after_id,
            limit: self.limit,
        }
    }
}

/// `{"items":[…]}`.
pub fn items<T: serde::Serialize>(v: Vec<T>) -> axum::Json<Value> {
    axum::Json(json!({ "items": v }))
}

/// The current time.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Serializes to a JSON object (for adding fields to a store type).
pub fn object<T: serde::Serialize>(v: &T) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::to_value(v).map_err(ApiError::internal)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal("not a JSON object")),
    }
}

/// `GET /api/v1/openapi.json` (no token needed).
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

/// `GET /api/v1/whoami`: the calling token.
pub async fn whoami(caller: Caller) -> axum::Json<Value> {
    let t = &caller.token;
    axum::Json(json!({
        "token_id": t.id,
        "name": t.name,
        "account_id": t.account_id,
        "scopes": t.scopes,
        "prefix": t.prefix,
    }))
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed for this endpoint",
    )
}

/// One span per request (method, route, status), and the outcome logged
/// once at debug level.
pub async fn trace(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "api_request",
        method = %req.method(),
        route = %route,
        token = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    async move {
        let resp = next.run(req).await;
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::debug!("api request done");
        resp
    }
    .instrument(span)
    .await
}

/// Shorthand for handlers.
pub type S = State<AppState>;
