//! Scopes, API and enrollment tokens, and `whoami`.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Path};
use crate::app::App;
use crate::auth::{Caller, TokenSpec, Via};
use crate::clock::now_ms;
use axum::Extension;
use axum::extract::State;
use shoal_store::{TokenKind, TokenRecord};
use shoal_types::DEFAULT_SCOPE;
use shoal_types::access::Permission;
use shoal_types::api::{
    CreateScopeRequest, CreateTokenRequest, CreateTokenResponse, ErrorCode, Scope, ScopeAccess,
    Token, WhoAmI,
};

#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    responses((status = 200, description = "The account of the request and what it may do", body = WhoAmI)))]
pub async fn whoami(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<WhoAmI>, ApiError> {
    Ok(axum::Json(who_am_i(&app, &caller).await?))
}

/// The caller as `whoami` shows it.
pub async fn who_am_i(app: &App, caller: &Caller) -> Result<WhoAmI, ApiError> {
    let access = &caller.access;
    let user = app.store.get_user(caller.user_id).await?;
    let readable = access.readable_scopes();
    let scopes = app
        .store
        .list_scopes()
        .await?
        .into_iter()
        .filter(|s| readable.as_ref().is_none_or(|r| r.contains(&s.id)))
        .map(|s| {
            let grant = access.grants.get(&s.id);
            ScopeAccess {
                scope_id: s.id,
                scope_name: s.name,
                role: grant.map(|g| g.role),
                host_selector: grant.map(|g| g.host_selector.clone()).unwrap_or_default(),
                permissions: Permission::ALL
                    .into_iter()
                    .filter(|p| *p != Permission::Platform && access.allows(Some(s.id), *p))
                    .collect(),
            }
        })
        .collect();
    Ok(WhoAmI {
        user_id: caller.user_id,
        name: caller.name.clone(),
        display_name: user.map(|u| u.display_name).unwrap_or_default(),
        kind: caller.kind,
        is_admin: access.allows(None, Permission::Platform),
        via: match caller.via {
            Via::Token => "token",
            Via::Session => "session",
            Via::Internal => "internal",
        }
        .to_string(),
        token_id: caller.token_id,
        read_only: access.read_only,
        only_scope_id: access.only_scope,
        scopes,
    })
}

#[utoipa::path(get, path = "/api/v1/scopes", tag = "scopes",
    responses((status = 200, description = "The scopes the caller may read", body = Vec<Scope>)))]
pub async fn list_scopes(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<Scope>>, ApiError> {
    let readable = caller.access.readable_scopes();
    let scopes = app
        .store
        .list_scopes()
        .await?
        .into_iter()
        .filter(|s| readable.as_ref().is_none_or(|r| r.contains(&s.id)))
        .collect::<Vec<_>>();
    Ok(axum::Json(scopes.into_api()))
}

#[utoipa::path(post, path = "/api/v1/scopes", tag = "scopes", request_body = CreateScopeRequest,
    responses((status = 200, description = "The new scope", body = Scope)))]
pub async fn create_scope(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CreateScopeRequest>,
) -> Result<axum::Json<Scope>, ApiError> {
    caller.require(None, Permission::Platform)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::invalid("scope name must be 1-128 characters"));
    }
    match app.store.create_scope(name, now_ms()).await {
        Ok(scope) => {
            caller.note.scope(scope.id);
            caller.note.resource(format!("scope:{}", scope.id));
            Ok(axum::Json(scope.into_api()))
        }
        Err(shoal_store::Error::Conflict(_)) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a scope named {name:?} already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Whether the caller may see (and revoke) a token: its own, every token for a platform admin,
/// and the enrollment tokens of scopes it administers.
fn may_manage(caller: &Caller, t: &TokenRecord) -> bool {
    if t.user_id == Some(caller.user_id) && !caller.access.read_only {
        return true;
    }
    match t.kind {
        TokenKind::Enroll => caller
            .access
            .allows(Some(t.scope_id), Permission::Administer),
        TokenKind::Api => caller.access.allows(None, Permission::Platform),
    }
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "The caller's own tokens, the enrollment tokens of scopes it administers, or every token for a platform admin (never a secret)", body = Vec<Token>)))]
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<Token>>, ApiError> {
    let tokens: Vec<TokenRecord> = app
        .store
        .list_tokens()
        .await?
        .into_iter()
        .filter(|t| t.user_id == Some(caller.user_id) || may_manage(&caller, t))
        .collect();
    Ok(axum::Json(tokens.into_api()))
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
    let spec = match kind {
        TokenKind::Enroll => {
            if req.user_id.is_some() || req.read_only || req.only_scope_id.is_some() {
                return Err(ApiError::invalid(
                    "user_id, read_only and only_scope_id apply to API tokens only",
                ));
            }
            let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
            caller.require(Some(scope_id), Permission::Administer)?;
            crate::targets::check_scope(&app, scope_id).await?;
            TokenSpec {
                name: name.to_string(),
                kind,
                scope_id,
                user_id: None,
                read_only: false,
                only_scope_id: None,
                expires_at,
            }
        }
        TokenKind::Api => {
            // An API token's `scope_id` is only recorded (its reach is its account's roles,
            // narrowed by `only_scope_id`); it must still name a scope.
            let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
            crate::targets::check_scope(&app, scope_id).await?;
            let user_id = req.user_id.unwrap_or(caller.user_id);
            if user_id != caller.user_id {
                caller.require(None, Permission::Platform)?;
            } else if caller.access.read_only {
                return Err(ApiError::denied("a read-only token cannot create tokens"));
            }
            let owner = app
                .store
                .get_user(user_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no account {user_id}")))?;
            if let Some(s) = req.only_scope_id {
                crate::targets::check_scope(&app, s).await?;
            }
            // A token of one's own never does more than the request that creates it.
            let only_scope_id = req.only_scope_id.or(caller
                .access
                .only_scope
                .filter(|_| user_id == caller.user_id));
            caller.note.resource(format!("user:{}", owner.name));
            TokenSpec {
                name: name.to_string(),
                kind,
                scope_id,
                user_id: Some(owner.id),
                read_only: req.read_only,
                only_scope_id,
                expires_at,
            }
        }
    };
    let (token, record) = crate::auth::issue_token(&app, spec, &caller.name).await?;
    caller.note.resource(format!("token:{}", record.id));
    Ok(axum::Json(CreateTokenResponse {
        id: record.id,
        name: record.name,
        kind: kind.as_str().to_string(),
        token,
        expires_at,
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    let token = app
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    if token.kind == TokenKind::Enroll {
        caller.note.scope(token.scope_id);
    }
    if !may_manage(&caller, &token) {
        return Err(ApiError::denied(format!(
            "{} may not revoke token {id}: it is not theirs and they do not administer it",
            caller.name
        )));
    }
    if app.store.revoke_token(id, now_ms()).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no token {id}")))
    }
}
