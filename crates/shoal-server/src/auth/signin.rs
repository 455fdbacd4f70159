//! Signing in with a password, throttled against guessing, and starting console sessions.
//! Every attempt, good or bad, is an audit record (`auth.login`); the throttle counts the
//! failed ones in the audit trail itself, so it holds across restarts and servers.

use super::password;
use crate::app::App;
use crate::audit;
use crate::clock::now_ms;
use shoal_store::{AuditFilter, NewAuditEvent, NewSession, User};
use shoal_types::access::UserKind;

/// Failed sign-ins counted over this window.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60_000;
/// Failed sign-ins for one account name in the window before further attempts are refused.
pub const MAX_FAILURES_PER_ACCOUNT: u64 = 5;
/// Failed sign-ins from one address in the window before further attempts are refused.
pub const MAX_FAILURES_PER_ADDRESS: u64 = 20;

pub const LOGIN_ACTION: &str = "auth.login";

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    /// Wrong name or password, a disabled account, or an account that cannot sign in with a
    /// password: one answer for all, so that it tells nothing about which accounts exist.
    #[error("wrong user name or password")]
    BadCredentials,
    #[error(transparent)]
    Store(#[from] shoal_store::Error),
}

/// Whether sign-ins for `name` or from `address` are throttled now; `Some(seconds to wait)`.
pub async fn throttled(app: &App, name: &str, address: &str) -> shoal_store::Result<Option<u64>> {
    let from = now_ms() - THROTTLE_WINDOW_MS;
    let failed = |resource: Option<String>, address: Option<String>| AuditFilter {
        from: Some(from),
        action: Some(LOGIN_ACTION.to_string()),
        outcome: Some("failed".to_string()),
        resource,
        address,
        ..Default::default()
    };
    let by_name = app
        .store
        .count_audit(&failed(Some(format!("user:{name}")), None))
        .await?;
    let by_address = if address.is_empty() {
        0
    } else {
        app.store
            .count_audit(&failed(None, Some(address.to_string())))
            .await?
    };
    if by_name >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
        return Ok(Some((THROTTLE_WINDOW_MS / 1000) as u64));
    }
    Ok(None)
}

/// Checks a name and password. Records the attempt in the audit trail (`origin` is `web` or
/// `api`), and refuses without checking while the account or address is throttled.
pub async fn password_sign_in(
    app: &App,
    name: &str,
    password: &str,
    address: &str,
    origin: &str,
) -> Result<User, SignInError> {
    let record = |outcome: &str, user: Option<&User>, detail: &str| NewAuditEvent {
        actor: user.map_or_else(String::new, |u| u.name.clone()),
        actor_kind: if user.is_some() { "user" } else { "anonymous" }.to_string(),
        user_id: user.map(|u| u.id),
        address: address.to_string(),
        origin: origin.to_string(),
        action: LOGIN_ACTION.to_string(),
        resource: format!("user:{name}"),
        outcome: outcome.to_string(),
        detail: detail.to_string(),
        ..Default::default()
    };
    if let Some(retry_after_secs) = throttled(app, name, address).await? {
        audit::record(app, record("throttled", None, "too many failed sign-ins")).await;
        return Err(SignInError::Throttled { retry_after_secs });
    }
    let user = app.store.find_user(name).await?;
    let stored = user
        .as_ref()
        .filter(|u| u.enabled && u.kind == UserKind::User)
        .and_then(|u| u.password_hash.clone());
    if password.len() > password::MAX_LEN || !password::verify(password.to_string(), stored).await {
        let why = match &user {
            None => "no such account",
            Some(u) if !u.enabled => "account disabled",
            Some(u) if u.kind == UserKind::Service => "service accounts cannot sign in",
            Some(u) if u.password_hash.is_none() => "account has no password",
            Some(_) => "wrong password",
        };
        audit::record(app, record("failed", None, why)).await;
        return Err(SignInError::BadCredentials);
    }
    let Some(user) = user else {
        return Err(SignInError::BadCredentials);
    };
    audit::record(app, record("ok", Some(&user), "password")).await;
    Ok(user)
}

/// Starts a console session for `user`: returns the session id (the cookie's value; only its
/// hash is stored).
pub async fn start_session(app: &App, user: &User) -> shoal_store::Result<String> {
    let secret = super::new_secret("sess");
    let now = now_ms();
    let max_ms = i64::try_from(app.opts.session_max.as_millis()).unwrap_or(i64::MAX / 2);
    app.store
        .create_session(NewSession {
            id_hash: super::hash_secret(&secret),
            user_id: user.id,
            now,
            expires_at: now.saturating_add(max_ms),
        })
        .await?;
    Ok(secret)
}
