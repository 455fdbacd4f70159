//! Scopes and tokens: who may act, and where.

use crate::{NewToken, Result, Scope, TokenRecord};
use async_trait::async_trait;
use shoal_types::UnixMs;

/// Scopes, API tokens and enrollment tokens.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn list_scopes(&self) -> Result<Vec<Scope>>;
    async fn create_scope(&self, name: &str, now: UnixMs) -> Result<Scope>;

    /// Stores a token. Only the hash of its secret is kept.
    async fn create_token(&self, token: NewToken) -> Result<TokenRecord>;
    /// A token by the hash of its secret, whether or not it is revoked.
    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked; `false` if there is no such token.
    async fn revoke_token(&self, id: i64, now: UnixMs) -> Result<bool>;
    /// Records that a token authenticated a request at `now`.
    async fn touch_token(&self, id: i64, now: UnixMs) -> Result<()>;
    /// Revokes every live token of a user; returns how many.
    async fn revoke_user_tokens(&self, user_id: i64, now: UnixMs) -> Result<u64>;
}
