//! Scopes, API and enrollment tokens, and `whoami`.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Path};
use crate::app::App;
use crate::auth::{Caller, hash_secret, new_secret};
use crate::clock::now_ms;
use axum::Extension;
use axum::extract::State;
use shoal_store::{NewToken, TokenKind, TokenRecord};
use shoal_types::DEFAULT_SCOPE;
use shoal_types::api::{
    CreateScopeRequest, CreateTokenRequest, CreateTokenResponse, ErrorCode, Scope, Token, WhoAmI,
};

#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    responses((status = 200, description = "The token of the request", body = WhoAmI)))]
pub async fn whoami(Extension(caller): Extension<Caller>) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI {
        token_id: caller.token_id,
        name: caller.name,
    })
}

#[utoipa::path(get, path = "/api/v1/scopes", tag = "scopes",
    responses((status = 200, description = "Every scope", body = Vec<Scope>)))]
pub async fn list_scopes(State(app): State<App>) -> Result<axum::Json<Vec<Scope>>, ApiError> {
    Ok(axum::Json(app.store.list_scopes().await?.into_api()))
}

#[utoipa::path(post, path = "/api/v1/scopes", tag = "scopes", request_body = CreateScopeRequest,
    responses((status = 200, description = "The new scope", body = Scope)))]
pub async fn create_scope(
    State(app): State<App>,
    Json(req): Json<CreateScopeRequest>,
) -> Result<axum::Json<Scope>, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::invalid("scope name must be 1-128 characters"));
    }
    match app.store.create_scope(name, now_ms()).await {
        Ok(scope) => Ok(axum::Json(scope.into_api())),
        Err(shoal_store::Error::Conflict(_)) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a scope named {name:?} already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Fails with UNKNOWN_SCOPE unless `scope_id` names a scope.
pub async fn check_scope(app: &App, scope_id: i64) -> Result<(), ApiError> {
    if app
        .store
        .list_scopes()
        .await?
        .iter()
        .any(|s| s.id == scope_id)
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnknownScope,
        format!("no scope {scope_id}"),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "Every token (never a secret)", body = Vec<Token>)))]
pub async fn list(State(app): State<App>) -> Result<axum::Json<Vec<Token>>, ApiError> {
    Ok(axum::Json(app.store.list_tokens().await?.into_api()))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 200, description = "The new token with its secret, shown once", body = CreateTokenResponse)))]
pub async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CreateTokenRequest>,
) -> Result<axum::Json<CreateTokenResponse>, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::invalid("token name must be 1-128 characters"));
    }
    let kind = match req.kind.as_deref() {
        None => TokenKind::Api,
        Some(k) => TokenKind::parse(k).ok_or_else(|| {
            ApiError::invalid(format!("unknown token kind {k:?}; use api or enroll"))
        })?,
    };
    let now = now_ms();
    let expires_at = match req.ttl_secs {
        Some(0) => return Err(ApiError::invalid("ttl_secs must be positive")),
        Some(s) => Some(
            now.saturating_add(
                i64::try_from(s)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1000),
            ),
        ),
        None => None,
    };
    let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
    check_scope(&app, scope_id).await?;
    let (token, record) = issue(&app, name, kind, scope_id, &caller.name, expires_at).await?;
    Ok(axum::Json(CreateTokenResponse {
        id: record.id,
        name: record.name,
        kind: kind.as_str().to_string(),
        token,
        expires_at,
    }))
}

/// Creates a token and returns its secret (shown once) and record.
pub async fn issue(
    app: &App,
    name: &str,
    kind: TokenKind,
    scope_id: i64,
    created_by: &str,
    expires_at: Option<i64>,
) -> Result<(String, TokenRecord), ApiError> {
    let prefix = match kind {
        TokenKind::Api => "shoal",
        TokenKind::Enroll => "enroll",
    };
    let secret = new_secret(prefix);
    let record = app
        .store
        .create_token(NewToken {
            name: name.to_string(),
            kind,
            secret_hash: hash_secret(&secret),
            scope_id,
            created_by: created_by.to_string(),
            created_at: now_ms(),
            expires_at,
        })
        .await?;
    Ok((secret, record))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    if app.store.revoke_token(id, now_ms()).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no token {id}")))
    }
}
