//! The one API error type: every failure of every handler becomes
//! `{"error":{"code":"snake_case","message":"…"}}` here, and nowhere else.
//!
//! Client mistakes are 4xx and are not logged as errors. Internal failures
//! are logged once, with their cause, and the client sees only a safe
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`snake_case`).
    pub code: &'static str,
    /// What went wrong, for a human. Never holds a secret.
    pub message: String,
}

impl ApiError {
    /// Any error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: well-formed but refused by validation.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404 `not_found`. Also what a token sees for another account's
    /// resources, so it cannot learn that they exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 `internal`: logs the cause once, shows a safe message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in the management API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        }
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

/// Maps a store error: the caller's faults to 4xx with the store's precise
/// message, the database's to 503 or 500 (logged once, safe message).
pub fn from_store(e: store::StoreError) -> ApiError {
    use store::StoreError as E;
    match e {
        E::NotFound { kind } => ApiError::not_found(kind),
        E::Conflict { kind, name } => ApiError::conflict(
            if kind == "hostname" {
                "hostname_taken"
            } else {
                "already_exists"
            },
            format!("{kind} {name:?} already exists"),
        ),
        E::LimitReached(m) => ApiError::conflict("limit_reached", m),
        E::InUse { kind, users } => ApiError::conflict(
            "in_use",
            format!(
                "{kind} is in use by {}; remove the association first or pass ?cascade=true",
                users.join(", ")
            ),
        ),
        E::Invalid(m) => ApiError::invalid("invalid", m),
        E::Unavailable(m) => {
            tracing::error!(error = %m, "store unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable; try again",
            )
        }
        other => ApiError::internal(other),
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        from_store(e)
    }
}
