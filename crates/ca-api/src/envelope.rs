//! CFSSL's response envelope and the API's one error type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pki::PkiError;
use serde::Serialize;

/// CFSSL error categories (code = category + reason), so clients that switch
/// on codes keep working.
pub mod codes {
    /// Certificate parse/verify problems.
    pub const CERTIFICATE: u32 = 1000;
    /// Private key problems.
    pub const PRIVATE_KEY: u32 = 2000;
    /// Signing policy refusals.
    pub const POLICY: u32 = 5000;
    /// Authentication and request-format problems.
    pub const API_CLIENT: u32 = 7000;
    /// OCSP problems.
    pub const OCSP: u32 = 8000;
    /// CSR problems.
    pub const CSR: u32 = 9000;
    /// Certificate store problems.
    pub const CERT_STORE: u32 = 11000;
}

#[derive(Serialize)]
struct Message {
    code: u32,
    message: String,
}

#[derive(Serialize)]
struct Envelope<T: Serialize> {
    success: bool,
    result: Option<T>,
    errors: Vec<Message>,
    messages: Vec<Message>,
}

/// A successful CFSSL response.
pub fn ok<T: Serialize>(result: T) -> Response {
    axum::Json(Envelope {
        success: true,
        result: Some(result),
        errors: vec![],
        messages: vec![],
    })
    .into_response()
}

/// Every failure of the API: an HTTP status, a CFSSL code and a safe message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// CFSSL error code.
    pub code: u32,
    /// Message for the client (never secrets, never internals).
    pub message: String,
}

impl ApiError {
    /// 400 with a CFSSL code.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// 503: the CA key is sealed and cannot sign until enough key shares
    /// have been submitted. Not an internal error: retry after unsealing.
    pub fn sealed() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: codes::PRIVATE_KEY + 3,
            message: "the CA key is sealed: submit key shares (portcullis ca unseal) to unseal it"
                .into(),
        }
    }

    /// 500; the detail is logged once here and not shown to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: 0,
            message: "internal error".into(),
        }
    }
}

impl From<PkiError> for ApiError {
    fn from(e: PkiError) -> Self {
        use codes::*;
        if matches!(e, PkiError::Sealed) {
            return ApiError::sealed();
        }
        let code = match &e {
            PkiError::BadCsrJson(_) | PkiError::BadCsr(_) => CSR + 3,
            PkiError::CsrSignature => CSR + 4,
            PkiError::BadKeyRequest(_) | PkiError::BadKey(_) | PkiError::KeyMismatch => {
                PRIVATE_KEY + 2
            }
            PkiError::BadConfig(_) => POLICY + 2,
            PkiError::UnknownProfile(_) => POLICY + 4,
            PkiError::NameNotAllowed(_) => POLICY + 5,
            PkiError::CaNotAllowed | PkiError::PathLen(_) | PkiError::BadRequest(_) => POLICY + 3,
            PkiError::BadCertificate(_) => CERTIFICATE + 3,
            PkiError::NotFound => CERT_STORE + 4,
            PkiError::Custody(_) => PRIVATE_KEY + 4,
            _ => 0,
        };
        if e.is_client_error() {
            tracing::info!(error = %e, "request refused");
            ApiError::bad_request(code, e.to_string())
        } else {
            ApiError::internal(e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope::<()> {
            success: false,
            result: None,
            errors: vec![Message {
                code: self.code,
                message: self.message,
            }],
            messages: vec![],
        };
        (self.status, axum::Json(body)).into_response()
    }
}
