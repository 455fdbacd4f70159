//! Signing in and out: the console's password sign-in (a session cookie), the CLI's (a
//! personal token), and how to sign in (`auth/config`). Every route here except `auth/logout`
//! is reachable without credentials.

use super::ApiError;
use super::authn::{CSRF_COOKIE, SESSION_COOKIE, cookie};
use super::extract::{ClientAddress, Json, Origin};
use crate::app::App;
use crate::auth::{self, Caller, TokenSpec};
use crate::clock::now_ms;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use shoal_store::TokenKind;
use shoal_types::api::{AuthConfig, CreateTokenResponse, LoginRequest, SignedIn, SsoConfig};

/// The default lifetime of a token made by `auth/token`.
const CLI_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;

#[utoipa::path(get, path = "/api/v1/auth/config", tag = "auth", security(()),
    responses((status = 200, description = "How to sign in (no credentials needed)", body = AuthConfig)))]
pub async fn config(State(app): State<App>) -> axum::Json<AuthConfig> {
    axum::Json(AuthConfig {
        password: true,
        sso: sso_label(&app).map(|label| SsoConfig {
            label,
            start_url: "/api/web/v1/auth/oidc/start".to_string(),
        }),
    })
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, description = "Signed in: the session cookie (HttpOnly) and the CSRF cookie are set", body = SignedIn),
              (status = 401, description = "Wrong user name or password"),
              (status = 429, description = "Too many failed sign-ins")))]
pub async fn login(
    State(app): State<App>,
    Origin(origin): Origin,
    ClientAddress(address): ClientAddress,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let user =
        auth::password_sign_in(&app, &body.name, &body.password, &address, origin.as_str()).await?;
    signed_in(&app, &user, &address).await
}

/// Starts a session for `user` and answers with its cookies and the account as `whoami` shows
/// it. Used by password and single sign-on.
pub async fn signed_in(
    app: &App,
    user: &shoal_store::User,
    address: &str,
) -> Result<Response, ApiError> {
    let secret = auth::start_session(app, user).await?;
    let csrf = auth::csrf_token(&secret);
    let caller = auth::session_caller(app, &secret, address)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account cannot sign in"))?;
    let who = super::tokens::who_am_i(app, &caller).await?;
    let mut response = axum::Json(SignedIn {
        user: who,
        csrf_token: csrf.clone(),
    })
    .into_response();
    set_session_cookies(app, &mut response, &secret, &csrf);
    Ok(response)
}

/// Sets the session and CSRF cookies on a response.
pub fn set_session_cookies(app: &App, response: &mut Response, secret: &str, csrf: &str) {
    let secure = app.opts.api_tls != crate::options::ApiTls::Off;
    let max_age = cookie::time::Duration::seconds(
        i64::try_from(app.opts.session_max.as_secs()).unwrap_or(86_400),
    );
    let session = Cookie::build((SESSION_COOKIE, secret.to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(max_age)
        .build();
    let csrf = Cookie::build((CSRF_COOKIE, csrf.to_string()))
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(max_age)
        .build();
    for c in [session, csrf] {
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, description = "A new personal API token for the account (what `shoal login` stores)", body = CreateTokenResponse),
              (status = 401, description = "Wrong user name or password"),
              (status = 429, description = "Too many failed sign-ins")))]
pub async fn token(
    State(app): State<App>,
    Origin(origin): Origin,
    ClientAddress(address): ClientAddress,
    Json(body): Json<LoginRequest>,
) -> Result<axum::Json<CreateTokenResponse>, ApiError> {
    let name = body
        .token_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("cli")
        .to_string();
    if name.chars().count() > 128 {
        return Err(ApiError::invalid("token_name must be 1-128 characters"));
    }
    let ttl = body.ttl_secs.unwrap_or(CLI_TOKEN_TTL_SECS);
    if ttl == 0 || ttl > 10 * 365 * 24 * 3600 {
        return Err(ApiError::invalid(
            "ttl_secs must be between 1 and 315360000",
        ));
    }
    let user =
        auth::password_sign_in(&app, &body.name, &body.password, &address, origin.as_str()).await?;
    let expires_at = now_ms().saturating_add(i64::try_from(ttl).unwrap_or(0).saturating_mul(1000));
    let (secret, record) = auth::issue_token(
        &app,
        TokenSpec {
            expires_at: Some(expires_at),
            ..TokenSpec::api(&name, user.id)
        },
        &user.name,
    )
    .await?;
    crate::audit::record(
        &app,
        shoal_store::NewAuditEvent {
            actor: user.name.clone(),
            actor_kind: user.kind.as_str().to_string(),
            user_id: Some(user.id),
            address,
            origin: origin.as_str().to_string(),
            action: "token.create".to_string(),
            resource: format!("token:{}", record.id),
            outcome: "ok".to_string(),
            detail: "signed in for a token".to_string(),
            ..Default::default()
        },
    )
    .await;
    Ok(axum::Json(CreateTokenResponse {
        id: record.id,
        name: record.name,
        kind: TokenKind::Api.as_str().to_string(),
        token: secret,
        expires_at: Some(expires_at),
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "The session ended and its cookies cleared")))]
pub async fn logout(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        app.store
            .revoke_session(&auth::hash_secret(&secret), now_ms())
            .await?;
    }
    caller.note.resource(format!("user:{}", caller.name));
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let gone = Cookie::build((name, ""))
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build();
        if let Ok(v) = HeaderValue::from_str(&gone.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// The single sign-on button's label, when single sign-on is configured.
fn sso_label(app: &App) -> Option<String> {
    app.opts.oidc.as_ref().map(|o| o.label.clone())
}
