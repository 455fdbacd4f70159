//! Extractors that answer malformed requests with the error contract instead of axum's plain
//! text rejections: broken JSON is MALFORMED_JSON, a wrong field is INVALID_ARGUMENT, a bad
//! query or path is INVALID_ARGUMENT, an oversized body is PAYLOAD_TOO_LARGE. Also [`Origin`],
//! where a request came from (by its route).

use super::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shoal_types::LaunchMode;
use shoal_types::api::ErrorCode;

pub struct Json<T>(pub T);

/// Text in a request must not contain NUL (U+0000): PostgreSQL cannot store it, and no name,
/// filter or script needs it. Checked here, at the edge, so both backends answer alike.
const NUL_MESSAGE: &str = "text in the request must not contain the NUL character (U+0000)";

/// Whether a JSON document has a string with an escaped NUL (`\u0000`; a raw NUL byte is not
/// valid JSON). Backslashes only occur inside strings, as escapes, so each is skipped with the
/// character it escapes.
fn json_has_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Whether a URI component (percent-encoded) decodes to text with a NUL.
fn uri_has_nul(part: &str) -> bool {
    part.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
        || part.contains('\0')
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::invalid(
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        // Read with the body limit in force (DefaultBodyLimit applies to `Bytes`).
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body could not be read: {}", e.body_text()),
                )
            })?;
        if json_has_nul(&bytes) {
            return Err(ApiError::invalid(NUL_MESSAGE));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid(e.body_text())),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// `application/json`, or a `+json` type, like axum's own `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(uri_has_nul) {
            return Err(ApiError::invalid(NUL_MESSAGE));
        }
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
        if uri_has_nul(parts.uri.path()) {
            return Err(ApiError::invalid(NUL_MESSAGE));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::invalid(e.body_text()))
    }
}

/// Where a request came from, by the route it took: `/api/v1` is the API (and the CLI),
/// `/api/web/v1` the console (see [`super::router`]). A client cannot claim another origin.
pub struct Origin(pub LaunchMode);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin(
            parts
                .extensions
                .get::<LaunchMode>()
                .copied()
                .unwrap_or(LaunchMode::Api),
        ))
    }
}

/// The client's address (IP), `""` when the connection did not give one.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_json_strings_only_as_an_escape() {
        assert!(json_has_nul(br#"{"name":"a\u0000b"}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#)); // an escaped backslash, then NUL
        assert!(!json_has_nul(br#"{"script":"echo \\u0000"}"#)); // the text `\u0000`
        assert!(!json_has_nul(br#"{"name":"plain"}"#));
    }

    #[test]
    fn finds_nul_in_uri_parts() {
        assert!(uri_has_nul("name=a%00b"));
        assert!(!uri_has_nul("name=a%20b&q=100"));
    }
}
