//! The API's error contract: a closed set of codes (`shoal_types::api::ErrorCode`), each with
//! one HTTP status, and a JSON body `{"error": {"code", "message"}}`. Internal errors are logged
//! by the middleware-facing conversion and answered with a generic message: a 500 never leaks
//! internals.

use crate::checks::Rejected;
use crate::launch;
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
    pub fn denied(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::PermissionDenied, m)
    }
    pub fn state(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidState, m)
    }
}

// Every service error becomes a response here, and only here. Internal failures are logged
// with their cause and answered with a generic message.

impl From<Rejected> for ApiError {
    fn from(r: Rejected) -> ApiError {
        ApiError::new(r.code, r.message)
    }
}

impl From<crate::targets::Error> for ApiError {
    fn from(e: crate::targets::Error) -> ApiError {
        match e {
            crate::targets::Error::Rejected(r) => r.into(),
            crate::targets::Error::Store(e) => e.into(),
        }
    }
}

impl From<launch::Error> for ApiError {
    fn from(e: launch::Error) -> ApiError {
        match e {
            launch::Error::Rejected(r) => r.into(),
            launch::Error::NotFound(m) => ApiError::not_found(m),
            launch::Error::State(shoal_engine::Rejection::UnknownStep(id)) => {
                ApiError::not_found(format!("no step {id} in the job"))
            }
            launch::Error::State(r) => ApiError::state(r.to_string()),
            launch::Error::Store(e) => e.into(),
            launch::Error::Upload(e) => e.into(),
        }
    }
}

impl From<crate::uploads::Error> for ApiError {
    fn from(e: crate::uploads::Error) -> ApiError {
        use crate::uploads::Error as E;
        match e {
            E::TooLarge { limit } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the file is larger than the limit of {limit} bytes"),
            ),
            E::Body(m) => ApiError::invalid(format!("the upload body could not be read: {m}")),
            E::Store(e) => e.into(),
            E::Io(e) => {
                tracing::error!(error = %e, cause = ?e.kind(), "upload storage failed");
                ApiError::new(
                    ErrorCode::Internal,
                    "the server could not store the file; see the server log",
                )
            }
        }
    }
}

impl From<shoal_store::Error> for ApiError {
    fn from(e: shoal_store::Error) -> ApiError {
        match e {
            shoal_store::Error::NotFound(m) => ApiError::not_found(m),
            shoal_store::Error::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            shoal_store::Error::MissingReference(m) => ApiError::invalid(m),
            other => {
                tracing::error!(error = %other, cause = ?other, "storage error while serving a request");
                ApiError::new(
                    ErrorCode::Internal,
                    "internal storage error; see the server log",
                )
            }
        }
    }
}

/// The error a response carries, for the request's audit record (a response extension).
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let failure = Failure {
            code: self.code,
            message: self.message.clone(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(failure);
        response
    }
}

impl From<crate::auth::sso::Error> for ApiError {
    fn from(e: crate::auth::sso::Error) -> ApiError {
        use crate::auth::sso::Error as E;
        match e {
            E::NotConfigured => ApiError::not_found(e.to_string()),
            E::Unreachable(_) => {
                tracing::warn!(error = %e, "single sign-on provider unreachable");
                ApiError::new(ErrorCode::Unavailable, e.to_string())
            }
            E::Refused(_) | E::Disabled(_) => ApiError::unauthenticated(e.to_string()),
            E::NameTaken(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::SignInError> for ApiError {
    fn from(e: crate::auth::SignInError) -> ApiError {
        use crate::auth::SignInError as E;
        match e {
            E::Throttled { .. } => ApiError::new(ErrorCode::TooManyAttempts, e.to_string()),
            E::BadCredentials => ApiError::unauthenticated(e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}
