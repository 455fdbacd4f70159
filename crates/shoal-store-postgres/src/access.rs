//! `AccessStore`: scopes and tokens.

use crate::PgStore;
use async_trait::async_trait;
use shoal_store::AccessStore;
use shoal_store::{Error, NewToken, Result, Scope, TokenRecord};
use shoal_store_sql::{self as decode, TOKEN_COLUMNS, db};
use shoal_types::UnixMs;

#[async_trait]
impl AccessStore for PgStore {
    async fn list_scopes(&self) -> Result<Vec<Scope>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM scopes ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::scope).collect()
    }

    async fn create_scope(&self, name: &str, now: UnixMs) -> Result<Scope> {
        let row = sqlx::query(
            "INSERT INTO scopes (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        decode::scope(&row)
    }

    async fn create_token(&self, t: NewToken) -> Result<TokenRecord> {
        let sql = format!(
            "INSERT INTO tokens (name, kind, secret_hash, scope_id, created_by, created_at, \
             expires_at, user_id, read_only, only_scope_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {TOKEN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&t.name)
            .bind(t.kind.as_str())
            .bind(&t.secret_hash)
            .bind(t.scope_id)
            .bind(&t.created_by)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.user_id)
            .bind(t.read_only)
            .bind(t.only_scope_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match db(e) {
                Error::Conflict(_) => {
                    Error::Conflict("a token with this secret exists".to_string())
                }
                other => other,
            })?;
        decode::token(&row)
    }

    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1");
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::token).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(decode::token).collect()
    }

    async fn revoke_token(&self, id: i64, now: UnixMs) -> Result<bool> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_token(&self, id: i64, now: UnixMs) -> Result<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_user_tokens(&self, user_id: i64, now: UnixMs) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }
}
