//! Who a caller is and what it may do: secrets and their hashes, tokens, passwords, console
//! sessions, sign-in (with throttling), and the [`Caller`] with its [`access::Access`] that
//! every service checks. The API's middleware (`api::authn`) calls [`token_caller`] and
//! [`session_caller`]; nothing here knows HTTP.
//!
//! Only SHA-256 hashes of tokens, agent secrets and session ids are stored, and Argon2id hashes
//! of passwords; the secrets themselves are shown once and never logged.

pub mod access;
pub mod password;
mod signin;
pub mod sso;

pub use access::{Access, Caller, Via};
pub use signin::{SignInError, password_sign_in, start_session};

use crate::app::App;
use crate::clock::now_ms;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use shoal_store::{NewToken, TokenKind, TokenRecord, User};
use shoal_types::ScopeId;
use std::sync::Arc;

/// A fresh random secret: 32 bytes, hex, with a prefix that says what it is for.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session: derived from the session id, so nothing more is stored. The
/// console reads it from the `shoal_csrf` cookie and sends it back in `x-csrf-token`.
pub fn csrf_token(session_secret: &str) -> String {
    hex::encode(Sha256::digest(format!("csrf:{session_secret}").as_bytes()))
}

/// Whether two secrets are equal, compared through their hashes so that the time taken says
/// nothing about where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// What a new token is for and what it may do.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub name: String,
    pub kind: TokenKind,
    /// Enrollment tokens: the scope agents enroll into. API tokens: [`shoal_types::DEFAULT_SCOPE`].
    pub scope_id: ScopeId,
    /// The account an API token acts for.
    pub user_id: Option<i64>,
    pub read_only: bool,
    pub only_scope_id: Option<ScopeId>,
    pub expires_at: Option<i64>,
}

impl TokenSpec {
    /// An API token acting for `user_id` with its full rights, never expiring.
    pub fn api(name: &str, user_id: i64) -> TokenSpec {
        TokenSpec {
            name: name.to_string(),
            kind: TokenKind::Api,
            scope_id: shoal_types::DEFAULT_SCOPE,
            user_id: Some(user_id),
            read_only: false,
            only_scope_id: None,
            expires_at: None,
        }
    }
}

/// Issues a token: a fresh secret (returned once, never stored) and its stored record.
pub async fn issue_token(
    app: &App,
    spec: TokenSpec,
    created_by: &str,
) -> shoal_store::Result<(String, TokenRecord)> {
    let prefix = match spec.kind {
        TokenKind::Api => "shoal",
        TokenKind::Enroll => "enroll",
    };
    let secret = new_secret(prefix);
    let record = app
        .store
        .create_token(NewToken {
            name: spec.name,
            kind: spec.kind,
            secret_hash: hash_secret(&secret),
            scope_id: spec.scope_id,
            created_by: created_by.to_string(),
            created_at: now_ms(),
            expires_at: spec.expires_at,
            user_id: spec.user_id,
            read_only: spec.read_only,
            only_scope_id: spec.only_scope_id,
        })
        .await?;
    Ok((secret, record))
}

/// How often a token's `last_used_at` or a session's `last_seen_at` is written: at most once
/// a minute, so that authenticating is a read.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The caller an API token stands for: `None` unless the token is a live API token of an
/// enabled account.
pub async fn token_caller(
    app: &App,
    secret: &str,
    address: &str,
) -> shoal_store::Result<Option<Caller>> {
    let now = now_ms();
    // One round trip: the token, its account and the account's roles.
    let Some(found) = app.store.token_account(&hash_secret(secret)).await? else {
        return Ok(None);
    };
    let token = found.credential;
    if token.kind != TokenKind::Api || !token.is_usable(now) || !found.user.enabled {
        return Ok(None);
    }
    if token.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        app.store.touch_token(token.id, now).await?;
    }
    let access =
        Access::of(&found.user, &found.bindings).narrowed(token.read_only, token.only_scope_id);
    Ok(Some(caller(
        found.user,
        access,
        Some(token.id),
        Via::Token,
        address,
    )))
}

/// The caller a console session stands for: `None` unless the session is live (not revoked,
/// not idle too long, not past its absolute expiry) and its account enabled.
pub async fn session_caller(
    app: &App,
    session_secret: &str,
    address: &str,
) -> shoal_store::Result<Option<Caller>> {
    let now = now_ms();
    let hash = hash_secret(session_secret);
    let Some(found) = app.store.session_account(&hash).await? else {
        return Ok(None);
    };
    let session = found.credential;
    let idle_ms = i64::try_from(app.opts.session_idle.as_millis()).unwrap_or(i64::MAX);
    if session.revoked_at.is_some()
        || session.expires_at <= now
        || session.last_seen_at.saturating_add(idle_ms) <= now
        || !found.user.enabled
    {
        return Ok(None);
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        app.store.touch_session(&hash, now).await?;
    }
    let access = Access::of(&found.user, &found.bindings);
    Ok(Some(caller(
        found.user,
        access,
        None,
        Via::Session,
        address,
    )))
}

fn caller(user: User, access: Access, token_id: Option<i64>, via: Via, address: &str) -> Caller {
    Caller {
        user_id: user.id,
        name: user.name,
        kind: user.kind,
        token_id,
        via,
        access: Arc::new(access),
        address: address.to_string(),
        note: Default::default(),
    }
}
