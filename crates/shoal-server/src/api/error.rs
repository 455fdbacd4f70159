//! The API's error contract: a closed set of codes (`shoal_types::api::ErrorCode`), each with
//! one HTTP status, and a JSON body `{"error": {"code", "message"}}`. Internal errors are logged
//! by the middleware-facing conversion and answered with a generic message: a 500 never leaks
//! internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_types::api::{ErrorBody, ErrorCode, ErrorDetail};

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn unauthenticated(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthenticated, m)
    }
    pub fn invalid(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, m)
    }
    pub fn state(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidState, m)
    }
}

impl From<shoal_store::Error> for ApiError {
    fn from(e: shoal_store::Error) -> ApiError {
        match e {
            shoal_store::Error::NotFound(m) => ApiError::not_found(m),
            shoal_store::Error::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            shoal_store::Error::MissingReference(m) => ApiError::invalid(m),
            other => {
                tracing::error!(error = %other, "storage error while serving a request");
                ApiError::new(
                    ErrorCode::Internal,
                    "internal storage error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}
