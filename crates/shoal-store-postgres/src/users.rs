//! `UserStore` and `AuditStore`: accounts, role bindings, sessions and the audit trail.

use crate::PgStore;
use async_trait::async_trait;
use shoal_store::{
    AuditEvent, AuditFilter, AuditStore, BindingSource, Error, NewAuditEvent, NewBinding,
    NewSession, NewUser, Result, RoleBinding, SessionRecord, User, UserPatch, UserStore,
};
use shoal_store_sql::{
    self as decode, ACCOUNT_COLUMNS, AUDIT_COLUMNS, BINDING_COLUMNS, SESSION_COLUMNS, USER_COLUMNS,
    db,
};
use shoal_types::{ScopeId, UnixMs};
use sqlx::{PgConnection, Postgres, QueryBuilder};

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, u: NewUser) -> Result<User> {
        let sql = format!(
            "INSERT INTO users (name, display_name, email, kind, password_hash, is_admin, enabled, \
             source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&u.name)
            .bind(&u.display_name)
            .bind(&u.email)
            .bind(u.kind.as_str())
            .bind(&u.password_hash)
            .bind(u.is_admin)
            .bind(u.enabled)
            .bind(&u.source)
            .bind(u.now)
            .bind(u.now)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match db(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "a user named {:?} exists; choose another name",
                    u.name
                )),
                other => other,
            })?;
        decode::user(&row)
    }

    async fn get_user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::user).transpose()
    }

    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::user).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(decode::user).collect()
    }

    async fn update_user(&self, id: i64, p: UserPatch, now: UnixMs) -> Result<Option<User>> {
        let mut qb = QueryBuilder::<Postgres>::new("UPDATE users SET updated_at = ");
        qb.push_bind(now);
        if let Some(v) = p.display_name {
            qb.push(", display_name = ").push_bind(v);
        }
        if let Some(v) = p.email {
            qb.push(", email = ").push_bind(v);
        }
        if let Some(v) = p.enabled {
            qb.push(", enabled = ").push_bind(v);
        }
        if let Some(v) = p.is_admin {
            qb.push(", is_admin = ").push_bind(v);
        }
        if let Some(v) = p.password_hash {
            qb.push(", password_hash = ").push_bind(v);
        }
        qb.push(" WHERE id = ")
            .push_bind(id)
            .push(format_args!(" RETURNING {USER_COLUMNS}"));
        let row = qb.build().fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(decode::user).transpose()
    }

    async fn list_bindings(
        &self,
        user_id: Option<i64>,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<RoleBinding>> {
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM role_bindings \
             WHERE ($1::BIGINT IS NULL OR user_id = $1) \
             AND ($2::BIGINT IS NULL OR scope_id = $2) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(scope_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::binding).collect()
    }

    async fn put_binding(&self, b: NewBinding) -> Result<RoleBinding> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        upsert_binding(&mut conn, &b).await
    }

    async fn delete_binding(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM role_bindings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn replace_oidc_bindings(&self, user_id: i64, bindings: Vec<NewBinding>) -> Result<()> {
        if bindings
            .iter()
            .any(|b| b.user_id != user_id || b.source != BindingSource::Oidc)
        {
            return Err(Error::Conflict(
                "replace_oidc_bindings takes single sign-on bindings of that user only".to_string(),
            ));
        }
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM role_bindings WHERE user_id = $1 AND source = $2")
            .bind(user_id)
            .bind(BindingSource::Oidc.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for b in &bindings {
            upsert_binding(&mut tx, b).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn create_session(&self, s: NewSession) -> Result<SessionRecord> {
        let sql = format!(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {SESSION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&s.id_hash)
            .bind(s.user_id)
            .bind(s.now)
            .bind(s.now)
            .bind(s.expires_at)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        decode::session(&row)
    }

    async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
        let row = sqlx::query(&sql)
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::session).transpose()
    }

    async fn touch_session(&self, id_hash: &str, now: UnixMs) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id_hash = $2",
        )
        .bind(now)
        .bind(id_hash)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn revoke_session(&self, id_hash: &str, now: UnixMs) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id_hash = $2",
        )
        .bind(now)
        .bind(id_hash)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_user_sessions(&self, user_id: i64, now: UnixMs) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn token_account(
        &self,
        secret_hash: &str,
    ) -> Result<Option<shoal_store::Authenticated<shoal_store::TokenRecord>>> {
        let sql = format!(
            "SELECT {}, {ACCOUNT_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id \
             LEFT JOIN role_bindings b ON b.user_id = u.id WHERE t.secret_hash = $1 ORDER BY b.id",
            shoal_store_sql::TOKEN_COLUMNS
                .split(", ")
                .map(|c| format!("t.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(secret_hash)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        decode::authenticated(&rows, decode::token)
    }

    async fn session_account(
        &self,
        id_hash: &str,
    ) -> Result<Option<shoal_store::Authenticated<SessionRecord>>> {
        let sql = format!(
            "SELECT {}, {ACCOUNT_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN role_bindings b ON b.user_id = u.id WHERE s.id_hash = $1 ORDER BY b.id",
            SESSION_COLUMNS
                .split(", ")
                .map(|c| format!("s.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(id_hash)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        decode::authenticated(&rows, decode::session)
    }

    async fn prune_sessions(&self, before: UnixMs) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}

async fn upsert_binding(conn: &mut PgConnection, b: &NewBinding) -> Result<RoleBinding> {
    let sql = format!(
        "INSERT INTO role_bindings (user_id, scope_id, role, host_selector, source, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, scope_id, source) \
         DO UPDATE SET role = EXCLUDED.role, host_selector = EXCLUDED.host_selector, \
         created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at \
         RETURNING {BINDING_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(b.user_id)
        .bind(b.scope_id)
        .bind(b.role.as_str())
        .bind(&b.host_selector)
        .bind(b.source.as_str())
        .bind(&b.created_by)
        .bind(b.now)
        .fetch_one(conn)
        .await
        .map_err(db)?;
    decode::binding(&row)
}

/// Appends the `WHERE` clause of an audit query.
fn push_audit_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &AuditFilter) {
    qb.push(" WHERE TRUE");
    if let Some(v) = f.from {
        qb.push(" AND at >= ").push_bind(v);
    }
    if let Some(v) = f.to {
        qb.push(" AND at < ").push_bind(v);
    }
    if let Some(v) = &f.actor {
        qb.push(" AND actor = ").push_bind(v.clone());
    }
    match f.action.as_deref() {
        // A prefix compared as text, so `_` and `%` in it mean themselves.
        Some(prefix) if prefix.ends_with('.') => {
            qb.push(" AND left(action, char_length(")
                .push_bind(prefix.to_string())
                .push(")) = ")
                .push_bind(prefix.to_string());
        }
        Some(action) => {
            qb.push(" AND action = ").push_bind(action.to_string());
        }
        None => {}
    }
    qb.push(shoal_store_sql::scope_in("scope_id", &f.scope_ids));
    if let Some(v) = &f.resource {
        qb.push(" AND resource = ").push_bind(v.clone());
    }
    if let Some(v) = &f.outcome {
        qb.push(" AND outcome = ").push_bind(v.clone());
    }
    if let Some(v) = &f.address {
        qb.push(" AND address = ").push_bind(v.clone());
    }
    if let Some(v) = f.before_id {
        qb.push(" AND id < ").push_bind(v);
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, e: NewAuditEvent) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO audit_events (at, actor, actor_kind, user_id, token_id, address, origin, \
             scope_id, action, resource, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.actor_kind)
        .bind(e.user_id)
        .bind(e.token_id)
        .bind(&e.address)
        .bind(&e.origin)
        .bind(e.scope_id)
        .bind(&e.action)
        .bind(&e.resource)
        .bind(&e.outcome)
        .bind(&e.detail)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(id)
    }

    async fn list_audit(&self, f: &AuditFilter, limit: u32) -> Result<Vec<AuditEvent>> {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
        push_audit_filter(&mut qb, f);
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(decode::audit_event).collect()
    }

    async fn count_audit(&self, f: &AuditFilter) -> Result<u64> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM audit_events");
        push_audit_filter(&mut qb, f);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn prune_audit(&self, before: UnixMs, limit: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }
}
