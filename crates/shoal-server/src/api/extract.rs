//! Extractors that answer malformed requests with the error contract instead of axum's plain
//! text rejections: broken JSON is MALFORMED_JSON, a wrong field is INVALID_ARGUMENT, a bad
//! query or path is INVALID_ARGUMENT, an oversized body is PAYLOAD_TOO_LARGE. Also [`Launch`],
//! how a job-starting request was made.

use super::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shoal_types::LaunchMode;
use shoal_types::api::ErrorCode;

pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::invalid(
                "the body must be JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body could not be read: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::invalid(e.body_text()))
    }
}

pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::invalid(e.body_text()))
    }
}

/// How a job-starting request was made: the console marks its requests
/// (`x-shoal-client: console`) so that history can tell web launches from API launches.
pub struct Launch(pub LaunchMode);

impl<S: Send + Sync> FromRequestParts<S> for Launch {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client = parts.headers.get("x-shoal-client");
        Ok(Launch(match client.and_then(|v| v.to_str().ok()) {
            Some("console") => LaunchMode::Web,
            _ => LaunchMode::Api,
        }))
    }
}
