//! The API's bearer-token check.

use super::ApiError;
use crate::app::App;
use crate::auth::{Caller, hash_secret};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use shoal_store::{TokenKind, TokenRecord};

/// `/api/v1/jobs/{id}/events` (or the console's `/api/web/v1/...`)
pub(crate) fn is_event_stream(path: &str) -> bool {
    path.strip_prefix("/api/v1/jobs/")
        .or_else(|| path.strip_prefix("/api/web/v1/jobs/"))
        .and_then(|rest| rest.strip_suffix("/events"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Middleware: every request under `/api` and `/metrics` needs `Authorization: Bearer <token>`
/// naming a usable API token.
pub async fn require_token(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // EventSource in browsers cannot set headers, so the event stream (and only it) also takes
    // the token in the query. Everywhere else a query token would only end up in logs.
    let query_token = is_event_stream(req.uri().path())
        .then(|| req.uri().query())
        .flatten()
        .and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("access_token="))
                .map(str::to_string)
        });
    let secret = match header.strip_prefix("Bearer ") {
        Some(s) => s.trim().to_string(),
        None => query_token.ok_or_else(|| ApiError::unauthenticated("missing bearer token"))?,
    };
    let record = app
        .store
        .find_token(&hash_secret(&secret))
        .await
        .map_err(ApiError::from)?;
    let now = crate::clock::now_ms();
    let record: TokenRecord = match record {
        Some(r) if r.kind == TokenKind::Api && r.is_usable(now) => r,
        _ => {
            return Err(ApiError::unauthenticated(
                "invalid, expired or revoked token",
            ));
        }
    };
    req.extensions_mut().insert(Caller {
        token_id: record.id,
        name: record.name,
    });
    Ok(next.run(req).await)
}
