//! `HostStore`: hosts and their agents (enrollment, connection state fenced by generation,
//! labels), the inventory queries, and dynamic groups.

use crate::PgStore;
use async_trait::async_trait;
use shoal_store::HostStore;
use shoal_store::backend::last_status_changes;
use shoal_store::{
    AgentAuth, AgentStatusChange, Error, Group, Host, HostFilter, HostLabelRow, NewGroup, NewHost,
    Page, Paged, Result,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, filter_text, to_json};
use shoal_types::{AgentStatus, HostFacts, HostId, Labels, ScopeId, UnixMs};
use sqlx::{Postgres, QueryBuilder};
use std::collections::HashMap;

const HOST_COLUMNS: &str = "h.id, h.scope_id, h.agent_id, h.hostname, h.ips, h.os, \
    h.os_version, h.arch, h.agent_version, h.containment, h.agent_labels, h.user_labels, \
    h.status, h.generation, h.last_seen, h.created_at, h.revoked_at";

#[async_trait]
impl HostStore for PgStore {
    async fn create_host(&self, h: NewHost) -> Result<Host> {
        let f = &h.facts;
        let id: HostId = sqlx::query_scalar(
            "INSERT INTO hosts (scope_id, agent_id, secret_hash, hostname, ip, ips, os, os_version, \
             arch, agent_version, containment, agent_labels, user_labels, status, status_at, \
             generation, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             '{}', $13, $14, 0, $14) RETURNING id",
        )
        .bind(h.scope_id)
        .bind(&h.agent_id)
        .bind(&h.secret_hash)
        .bind(&f.hostname)
        .bind(f.ips.first().map(String::as_str).unwrap_or_default())
        .bind(&f.ips)
        .bind(&f.os)
        .bind(&f.os_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(&f.containment)
        .bind(to_json(&h.agent_labels)?)
        .bind(AgentStatus::Offline.code())
        .bind(h.now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict(format!("agent {} is enrolled", h.agent_id)),
            other => other,
        })?;
        self.get_host(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("host {id}")))
    }

    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>> {
        let row = sqlx::query("SELECT id, secret_hash, revoked_at FROM hosts WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::agent_auth).transpose()
    }

    async fn host_connected(
        &self,
        host_id: HostId,
        facts: &HostFacts,
        agent_labels: &Labels,
        now: UnixMs,
    ) -> Result<i64> {
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE hosts SET generation = generation + 1, status = $1, status_at = $2, \
             last_seen = $2, hostname = $3, ip = $4, ips = $5, os = $6, os_version = $7, arch = $8, \
             agent_version = $9, containment = $10, agent_labels = $11 WHERE id = $12 \
             RETURNING generation",
        )
        .bind(AgentStatus::Online.code())
        .bind(now)
        .bind(&facts.hostname)
        .bind(facts.ips.first().map(String::as_str).unwrap_or_default())
        .bind(&facts.ips)
        .bind(&facts.os)
        .bind(&facts.os_version)
        .bind(&facts.arch)
        .bind(&facts.agent_version)
        .bind(&facts.containment)
        .bind(to_json(agent_labels)?)
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        generation.ok_or_else(|| Error::NotFound(format!("host {host_id}")))
    }

    async fn set_agent_status(&self, changes: &[AgentStatusChange], now: UnixMs) -> Result<()> {
        let changes = last_status_changes(changes);
        if changes.is_empty() {
            return Ok(());
        }
        let ids: Vec<HostId> = changes.iter().map(|c| c.host_id).collect();
        let statuses: Vec<i32> = changes.iter().map(|c| c.status.code()).collect();
        let generations: Vec<Option<i64>> = changes.iter().map(|c| c.generation).collect();
        sqlx::query(
            "UPDATE hosts h SET status = v.status, status_at = $4, \
             last_seen = CASE WHEN v.status = $5 THEN $4 ELSE h.last_seen END \
             FROM UNNEST($1::bigint[], $2::int[], $3::bigint[]) AS v(id, status, generation) \
             WHERE h.id = v.id AND (v.generation IS NULL OR h.generation = v.generation)",
        )
        .bind(ids)
        .bind(statuses)
        .bind(generations)
        .bind(now)
        .bind(AgentStatus::Online.code())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn mark_all_offline(&self, now: UnixMs) -> Result<()> {
        sqlx::query("UPDATE hosts SET status = $1, status_at = $2 WHERE status <> $1")
            .bind(AgentStatus::Offline.code())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_host(&self, host_id: HostId, now: UnixMs) -> Result<bool> {
        let done =
            sqlx::query("UPDATE hosts SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now)
                .bind(host_id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_host(&self, host_id: HostId) -> Result<Option<Host>> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts h WHERE h.id = $1");
        let row = sqlx::query(&sql)
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::host).transpose()
    }

    async fn hosts_by_ids(&self, ids: &[HostId]) -> Result<Vec<Host>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts h WHERE h.id = ANY($1) ORDER BY h.id");
        let rows = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::host).collect()
    }

    async fn hosts_by_ip(&self, scope_id: Option<ScopeId>, ip: &str) -> Result<Vec<Host>> {
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM hosts h WHERE h.ips @> ARRAY[$1::text] \
             AND ($2::bigint IS NULL OR h.scope_id = $2) ORDER BY h.id"
        );
        let rows = sqlx::query(&sql)
            .bind(ip)
            .bind(scope_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::host).collect()
    }

    async fn host_labels(&self, scope_id: ScopeId) -> Result<Vec<HostLabelRow>> {
        let rows = sqlx::query(
            "SELECT id, agent_labels, user_labels, status FROM hosts \
             WHERE scope_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(scope_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(decode::host_label_row).collect()
    }

    async fn list_hosts(&self, f: &HostFilter, page: Page) -> Result<Paged<Host>> {
        fetch_page(
            &self.pool,
            Listing {
                table: "hosts h",
                joins: "",
                columns: HOST_COLUMNS,
                order_by: "h.id",
            },
            page,
            |qb| {
                push_host_filter(qb, f);
                Ok(())
            },
            decode::host,
        )
        .await
    }

    async fn host_status_counts(
        &self,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<(AgentStatus, u64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM hosts \
             WHERE revoked_at IS NULL AND ($1::bigint IS NULL OR scope_id = $1) GROUP BY status",
        )
        .bind(scope_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let counts = rows
            .iter()
            .map(decode::agent_status_count)
            .collect::<Result<HashMap<_, _>>>()?;
        Ok([
            AgentStatus::Online,
            AgentStatus::Offline,
            AgentStatus::Abnormal,
        ]
        .into_iter()
        .map(|status| (status, counts.get(&status).copied().unwrap_or(0)))
        .collect())
    }

    async fn set_host_labels(
        &self,
        host_id: HostId,
        labels: &Labels,
        _now: UnixMs,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE hosts SET user_labels = $1 WHERE id = $2")
            .bind(to_json(labels)?)
            .bind(host_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_group(&self, g: NewGroup) -> Result<Group> {
        let sql = format!(
            "INSERT INTO groups (scope_id, name, selector, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {GROUP_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(g.scope_id)
            .bind(&g.name)
            .bind(&g.selector)
            .bind(g.now)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        decode::group(&row)
    }

    async fn list_groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups WHERE ($1::bigint IS NULL OR scope_id = $1) \
             ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(scope_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::group).collect()
    }

    async fn get_group(&self, id: i64) -> Result<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::group).transpose()
    }

    async fn update_group(&self, id: i64, name: &str, selector: &str, now: UnixMs) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE groups SET name = $1, selector = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(selector)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_group(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Appends the `WHERE` clause of a host listing.
fn push_host_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &HostFilter) {
    qb.push(" WHERE TRUE");
    if let Some(scope_id) = f.scope_id {
        qb.push(" AND h.scope_id = ").push_bind(scope_id);
    }
    qb.push(shoal_store_sql::scope_in("h.scope_id", &f.scope_ids));
    if let Some(status) = f.status {
        qb.push(" AND h.status = ").push_bind(status.code());
    }
    if let Some(ip) = filter_text(&f.ip) {
        qb.push(" AND EXISTS (SELECT 1 FROM unnest(h.ips) AS x(ip) WHERE strpos(x.ip, ")
            .push_bind(ip.to_string())
            .push(") > 0)");
    }
    if let Some(q) = filter_text(&f.query) {
        qb.push(" AND (strpos(lower(h.hostname), lower(")
            .push_bind(q.to_string())
            .push(")) > 0 OR EXISTS (SELECT 1 FROM unnest(h.ips) AS x(ip) WHERE strpos(x.ip, ")
            .push_bind(q.to_string())
            .push(") > 0))");
    }
    if let Some(os) = filter_text(&f.os) {
        qb.push(" AND lower(h.os) = lower(")
            .push_bind(os.to_string())
            .push(")");
    }
    if let Some(ids) = &f.ids {
        qb.push(" AND h.id = ANY(").push_bind(ids.clone()).push(")");
    }
    if !f.include_revoked {
        qb.push(" AND h.revoked_at IS NULL");
    }
}

const GROUP_COLUMNS: &str = "id, scope_id, name, selector, created_at, updated_at";
