//! Scopes, API and enrollment tokens, and dynamic groups.

use crate::SqliteStore;
use shoal_store::{Error, Group, NewGroup, NewToken, Result, Scope, TokenRecord};
use shoal_store_sql::{self as decode, db};
use shoal_types::{ScopeId, UnixMs};

pub(crate) async fn list_scopes(s: &SqliteStore) -> Result<Vec<Scope>> {
    let rows = sqlx::query("SELECT id, name, created_at FROM scopes ORDER BY id")
        .fetch_all(&s.read)
        .await
        .map_err(db)?;
    rows.iter().map(decode::scope).collect()
}

pub(crate) async fn create_scope(s: &SqliteStore, name: &str, now: UnixMs) -> Result<Scope> {
    let row = sqlx::query(
        "INSERT INTO scopes (name, created_at) VALUES (?, ?) RETURNING id, name, created_at",
    )
    .bind(name)
    .bind(now)
    .fetch_one(&s.write)
    .await
    .map_err(db)?;
    decode::scope(&row)
}

const TOKEN_COLUMNS: &str = "id, name, kind, secret_hash, scope_id, created_by, created_at, \
                             expires_at, revoked_at";

pub(crate) async fn create_token(s: &SqliteStore, t: NewToken) -> Result<TokenRecord> {
    let sql = format!(
        "INSERT INTO tokens (name, kind, secret_hash, scope_id, created_by, created_at, \
         expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&t.name)
        .bind(t.kind.as_str())
        .bind(&t.secret_hash)
        .bind(t.scope_id)
        .bind(&t.created_by)
        .bind(t.created_at)
        .bind(t.expires_at)
        .fetch_one(&s.write)
        .await
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict("a token with this secret exists".to_string()),
            other => other,
        })?;
    decode::token(&row)
}

pub(crate) async fn find_token(s: &SqliteStore, secret_hash: &str) -> Result<Option<TokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ?");
    let row = sqlx::query(&sql)
        .bind(secret_hash)
        .fetch_optional(&s.read)
        .await
        .map_err(db)?;
    row.as_ref().map(decode::token).transpose()
}

pub(crate) async fn list_tokens(s: &SqliteStore) -> Result<Vec<TokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(&s.read).await.map_err(db)?;
    rows.iter().map(decode::token).collect()
}

pub(crate) async fn revoke_token(s: &SqliteStore, id: i64, now: UnixMs) -> Result<bool> {
    let done = sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(&s.write)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

const GROUP_COLUMNS: &str = "id, scope_id, name, selector, created_at, updated_at";

pub(crate) async fn create_group(s: &SqliteStore, g: NewGroup) -> Result<Group> {
    let sql = format!(
        "INSERT INTO groups (scope_id, name, selector, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING {GROUP_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(g.scope_id)
        .bind(&g.name)
        .bind(&g.selector)
        .bind(g.now)
        .bind(g.now)
        .fetch_one(&s.write)
        .await
        .map_err(db)?;
    decode::group(&row)
}

pub(crate) async fn list_groups(s: &SqliteStore, scope_id: Option<ScopeId>) -> Result<Vec<Group>> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE (?1 IS NULL OR scope_id = ?1) ORDER BY id"
    );
    let rows = sqlx::query(&sql)
        .bind(scope_id)
        .fetch_all(&s.read)
        .await
        .map_err(db)?;
    rows.iter().map(decode::group).collect()
}

pub(crate) async fn get_group(s: &SqliteStore, id: i64) -> Result<Option<Group>> {
    let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&s.read)
        .await
        .map_err(db)?;
    row.as_ref().map(decode::group).transpose()
}

pub(crate) async fn update_group(
    s: &SqliteStore,
    id: i64,
    name: &str,
    selector: &str,
    now: UnixMs,
) -> Result<bool> {
    let done = sqlx::query("UPDATE groups SET name = ?, selector = ?, updated_at = ? WHERE id = ?")
        .bind(name)
        .bind(selector)
        .bind(now)
        .bind(id)
        .execute(&s.write)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn delete_group(s: &SqliteStore, id: i64) -> Result<bool> {
    let done = sqlx::query("DELETE FROM groups WHERE id = ?")
        .bind(id)
        .execute(&s.write)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
