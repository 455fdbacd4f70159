//! Authentication of API requests, and the audit record of every state-changing one.
//!
//! A request proves who it is with `Authorization: Bearer <token>` (API clients, the CLI) or
//! with the console's session cookie. A cookie-authenticated request that changes state must
//! also carry the session's CSRF token in `x-csrf-token`: a page on another site can make the
//! browser send the cookie, but cannot read the CSRF cookie to copy it into a header.

use super::ApiError;
use crate::app::App;
use crate::audit;
use crate::auth::{self, Caller, Via};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use shoal_store::NewAuditEvent;
use shoal_types::LaunchMode;
use shoal_types::api::ErrorCode;
use std::net::SocketAddr;

/// The console's session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "shoal_session";
/// The session's CSRF token, readable by the console's scripts.
pub const CSRF_COOKIE: &str = "shoal_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `/api/v1/jobs/{id}/events` (or the console's `/api/web/v1/...`)
pub(crate) fn is_event_stream(path: &str) -> bool {
    path.strip_prefix("/api/v1/jobs/")
        .or_else(|| path.strip_prefix("/api/web/v1/jobs/"))
        .and_then(|rest| rest.strip_suffix("/events"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The routes that need no credentials: signing in.
pub(crate) fn is_public(path: &str) -> bool {
    let route = path
        .strip_prefix("/api/v1")
        .or_else(|| path.strip_prefix("/api/web/v1"));
    matches!(
        route,
        Some(
            "/auth/config"
                | "/auth/login"
                | "/auth/token"
                | "/auth/oidc/start"
                | "/auth/oidc/callback"
        )
    )
}

/// The client's address as the connection gives it, `""` when unknown.
pub fn client_address(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Middleware: every request under `/api` and `/metrics` needs a usable API token or console
/// session; the caller it stands for goes into the request's extensions.
pub async fn require_caller(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if is_public(req.uri().path()) {
        return Ok(next.run(req).await);
    }
    let address = client_address(&req);
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
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
    let bearer = header
        .strip_prefix("Bearer ")
        .map(|s| s.trim().to_string())
        .or(query_token);
    let caller = if let Some(secret) = bearer {
        auth::token_caller(&app, &secret, &address)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("invalid, expired or revoked token"))?
    } else if let Some(session) = cookie(req.headers(), SESSION_COOKIE) {
        let caller = auth::session_caller(&app, &session, &address)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the session has ended; sign in again"))?;
        if changes_state(req.method()) {
            let sent = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !auth::same_secret(sent, &auth::csrf_token(&session)) {
                return Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    format!("missing or wrong {CSRF_HEADER} header for a session request"),
                ));
            }
        }
        caller
    } else {
        return Err(ApiError::unauthenticated(
            "missing bearer token or session; sign in first",
        ));
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware (inside [`require_caller`], on the matched route): writes the audit record of a
/// state-changing request once its handler has answered.
pub async fn audit_request(State(app): State<App>, req: Request, next: Next) -> Response {
    if !changes_state(req.method()) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let path = req.uri().path().to_string();
    let caller = req.extensions().get::<Caller>().cloned();
    let origin = req.extensions().get::<LaunchMode>().copied();
    let response = next.run(req).await;
    let Some(caller) = caller else {
        return response;
    };
    let status = response.status();
    let noted = caller.note.get();
    let outcome = match status.as_u16() {
        200..=399 => "ok",
        403 => "denied",
        429 => "throttled",
        _ => "failed",
    };
    let detail = response
        .extensions()
        .get::<super::error::Failure>()
        .map(|f| format!("{}: {}", f.code, f.message))
        .unwrap_or_default();
    let event = NewAuditEvent {
        actor: caller.name.clone(),
        actor_kind: caller.kind.as_str().to_string(),
        user_id: Some(caller.user_id),
        token_id: caller.token_id,
        address: caller.address.clone(),
        origin: origin_name(origin, caller.via).to_string(),
        scope_id: noted.scope_id,
        action: super::actions::action(&method, &route),
        resource: noted
            .resource
            .unwrap_or_else(|| super::actions::resource(&route, &path)),
        outcome: outcome.to_string(),
        detail,
        ..Default::default()
    };
    audit::record(&app, event).await;
    response
}

/// A session is always the console's, whichever route it took.
fn origin_name(origin: Option<LaunchMode>, via: Via) -> &'static str {
    match via {
        Via::Session => LaunchMode::Web.as_str(),
        _ => origin.unwrap_or(LaunchMode::Api).as_str(),
    }
}
