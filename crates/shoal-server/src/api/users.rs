//! Accounts (people and service accounts), role bindings, and one's own password and sessions.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Path, Query};
use crate::app::App;
use crate::auth::{Caller, password};
use crate::clock::now_ms;
use axum::Extension;
use axum::extract::State;
use serde::Deserialize;
use shoal_store::{BindingSource, NewBinding, NewUser, UserPatch};
use shoal_types::ScopeId;
use shoal_types::access::{Permission, UserKind};
use shoal_types::api::{
    ChangePasswordRequest, CreateUserRequest, ErrorCode, PutRoleBindingRequest, RoleBinding,
    UpdateUserRequest, User,
};

fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "an account name is 1-64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

fn short(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "{what} may have at most {max} characters"
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "Every account (platform admin)", body = Vec<User>)))]
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    // Scope owners pick accounts when they bind roles, so they may list them too.
    if !caller.access.allows(None, Permission::Platform) {
        caller.require_anywhere(Permission::Administer)?;
    }
    Ok(axum::Json(app.store.list_users().await?.into_api()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 200, description = "The new account", body = User)))]
pub async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<CreateUserRequest>,
) -> Result<axum::Json<User>, ApiError> {
    caller.require(None, Permission::Platform)?;
    let name = req.name.trim();
    valid_name(name)?;
    short("display_name", &req.display_name, 128)?;
    short("email", &req.email, 254)?;
    let kind = req.kind.unwrap_or(UserKind::User);
    let password_hash = match (&req.password, kind) {
        (Some(_), UserKind::Service) => {
            return Err(ApiError::invalid(
                "service accounts have no password; create a token for them",
            ));
        }
        (Some(p), UserKind::User) => {
            password::check_new(p).map_err(ApiError::invalid)?;
            Some(password::hash(p.clone()).await.map_err(internal)?)
        }
        (None, _) => None,
    };
    caller.note.resource(format!("user:{name}"));
    let user = app
        .store
        .create_user(NewUser {
            name: name.to_string(),
            display_name: req.display_name.trim().to_string(),
            email: req.email.trim().to_string(),
            kind,
            password_hash,
            is_admin: req.is_admin,
            enabled: true,
            source: "local".to_string(),
            now: now_ms(),
        })
        .await
        .map_err(|e| match e {
            shoal_store::Error::Conflict(_) => ApiError::new(
                ErrorCode::Conflict,
                format!("an account named {name:?} already exists"),
            ),
            e => e.into(),
        })?;
    Ok(axum::Json(user.into_api()))
}

fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %e, "password hashing failed");
    ApiError::new(
        ErrorCode::Internal,
        "the server could not hash the password",
    )
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "account id")),
    responses((status = 200, description = "One account (platform admin, or the account itself)", body = User)))]
pub async fn get(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::Json<User>, ApiError> {
    if id != caller.user_id {
        caller.require(None, Permission::Platform)?;
    }
    let user = app
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
    Ok(axum::Json(user.into_api()))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = i64, Path, description = "account id")),
    responses((status = 200, description = "The account as changed", body = User)))]
pub async fn update(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(req): Json<UpdateUserRequest>,
) -> Result<axum::Json<User>, ApiError> {
    caller.require(None, Permission::Platform)?;
    let current = app
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
    caller.note.resource(format!("user:{}", current.name));
    if id == caller.user_id && (req.enabled == Some(false) || req.is_admin == Some(false)) {
        return Err(ApiError::state(
            "you cannot disable yourself or take away your own admin rights; ask another admin",
        ));
    }
    if let Some(d) = &req.display_name {
        short("display_name", d, 128)?;
    }
    if let Some(e) = &req.email {
        short("email", e, 254)?;
    }
    let password_hash = match &req.password {
        Some(_) if current.kind == UserKind::Service => {
            return Err(ApiError::invalid("service accounts have no password"));
        }
        Some(p) => {
            password::check_new(p).map_err(ApiError::invalid)?;
            Some(Some(password::hash(p.clone()).await.map_err(internal)?))
        }
        None => None,
    };
    let now = now_ms();
    let ends_sessions = req.enabled == Some(false) || req.password.is_some();
    let user = app
        .store
        .update_user(
            id,
            UserPatch {
                display_name: req.display_name.map(|s| s.trim().to_string()),
                email: req.email.map(|s| s.trim().to_string()),
                enabled: req.enabled,
                is_admin: req.is_admin,
                password_hash,
            },
            now,
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
    // A disabled account's requests already fail (every request checks the account); its
    // sessions end too, so that enabling it again does not revive them.
    if ends_sessions {
        app.store.revoke_user_sessions(id, now).await?;
    }
    Ok(axum::Json(user.into_api()))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/revoke", tag = "users",
    params(("id" = i64, Path, description = "account id")),
    responses((status = 204, description = "Every console session of the account ended (sign out everywhere)")))]
pub async fn revoke_sessions(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    if id != caller.user_id {
        caller.require(None, Permission::Platform)?;
    }
    app.store.revoke_user_sessions(id, now_ms()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "users", request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; every other session of the account ended")))]
pub async fn change_password(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    if caller.access.read_only {
        return Err(ApiError::denied(
            "a read-only token cannot change a password",
        ));
    }
    let user = app
        .store
        .get_user(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    if user.kind == UserKind::Service {
        return Err(ApiError::invalid("service accounts have no password"));
    }
    if !password::verify(req.current, user.password_hash.clone()).await {
        return Err(ApiError::denied("the current password is wrong"));
    }
    password::check_new(&req.new).map_err(ApiError::invalid)?;
    let hash = password::hash(req.new).await.map_err(internal)?;
    let now = now_ms();
    app.store
        .update_user(
            user.id,
            UserPatch {
                password_hash: Some(Some(hash)),
                ..Default::default()
            },
            now,
        )
        .await?;
    app.store.revoke_user_sessions(user.id, now).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingQuery {
    scope_id: Option<ScopeId>,
    user_id: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/role-bindings", tag = "users",
    params(("scope_id" = Option<i64>, Query, description = "bindings of one scope"),
           ("user_id" = Option<i64>, Query, description = "bindings of one account")),
    responses((status = 200, description = "Role bindings the caller may see: of scopes it administers, its own, or all for a platform admin", body = Vec<RoleBinding>)))]
pub async fn list_bindings(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<BindingQuery>,
) -> Result<axum::Json<Vec<RoleBinding>>, ApiError> {
    if let Some(s) = q.scope_id
        && q.user_id != Some(caller.user_id)
    {
        caller.require(Some(s), Permission::Administer)?;
    }
    let bindings = app.store.list_bindings(q.user_id, q.scope_id).await?;
    let visible: Vec<_> = bindings
        .into_iter()
        .filter(|b| {
            b.user_id == caller.user_id
                || caller
                    .access
                    .allows(Some(b.scope_id), Permission::Administer)
        })
        .collect();
    let users = app.store.list_users().await?;
    Ok(axum::Json(
        visible
            .into_iter()
            .map(|b| super::convert::binding(b, &users))
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/role-bindings", tag = "users", request_body = PutRoleBindingRequest,
    responses((status = 200, description = "The binding (created, or its role and selector replaced)", body = RoleBinding)))]
pub async fn put_binding(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<PutRoleBindingRequest>,
) -> Result<axum::Json<RoleBinding>, ApiError> {
    caller.require(Some(req.scope_id), Permission::Administer)?;
    crate::targets::check_scope(&app, req.scope_id).await?;
    let selector = req.host_selector.trim();
    if !selector.is_empty() {
        crate::targets::parse_selector(selector)?;
    }
    let user = app
        .store
        .get_user(req.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account {}", req.user_id)))?;
    caller.note.resource(format!("user:{}", user.name));
    let binding = app
        .store
        .put_binding(NewBinding {
            user_id: user.id,
            scope_id: req.scope_id,
            role: req.role,
            host_selector: selector.to_string(),
            source: BindingSource::Manual,
            created_by: caller.name.clone(),
            now: now_ms(),
        })
        .await?;
    Ok(axum::Json(super::convert::binding(binding, &[user])))
}

#[utoipa::path(delete, path = "/api/v1/role-bindings/{id}", tag = "users",
    params(("id" = i64, Path, description = "binding id")),
    responses((status = 204, description = "Removed")))]
pub async fn delete_binding(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    let binding = app
        .store
        .list_bindings(None, None)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no role binding {id}")))?;
    caller.require(Some(binding.scope_id), Permission::Administer)?;
    if app.store.delete_binding(id).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no role binding {id}")))
    }
}
