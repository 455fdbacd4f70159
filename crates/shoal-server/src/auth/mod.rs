//! Secrets and callers: generation and hashing of secrets, issuing tokens, who a caller is.
//! The API's bearer-token check is `api::authn`. Only SHA-256 hashes of tokens
//! and agent secrets are stored; the secrets themselves are shown once and never logged.

use crate::app::App;
use crate::clock::now_ms;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use shoal_store::{NewToken, TokenKind, TokenRecord};

/// A fresh random secret: 32 bytes, hex, with a prefix that says what it is for.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller of an API request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: i64,
    pub name: String,
}

/// Issues a token: a fresh secret (returned once, never stored) and its stored record.
pub async fn issue_token(
    app: &App,
    name: &str,
    kind: TokenKind,
    scope_id: i64,
    created_by: &str,
    expires_at: Option<i64>,
) -> shoal_store::Result<(String, TokenRecord)> {
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
