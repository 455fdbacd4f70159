//! `HostStore`: hosts and their agents (enrollment, connection state fenced by generation,
//! labels), the inventory queries, and dynamic groups.

use crate::SqliteStore;
use crate::bind::rows_per_statement;
use async_trait::async_trait;
use shoal_store::HostStore;
use shoal_store::backend::last_status_changes;
use shoal_store::{
    AgentAuth, AgentStatusChange, Error, Group, Host, HostFilter, HostLabelRow, NewGroup, NewHost,
    Page, Paged, Result,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, filter_text, to_json};
use shoal_types::{AgentStatus, HostFacts, HostId, Labels, ScopeId, UnixMs};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{BTreeSet, HashMap};

const HOST_COLUMNS: &str = "h.id, h.scope_id, h.agent_id, h.hostname, h.ips, h.os, \
    h.os_version, h.arch, h.agent_version, h.containment, h.agent_labels, h.user_labels, \
    h.status, h.generation, h.last_seen, h.created_at, h.revoked_at";

/// Replaces the rows of `host_ips` for one host.
async fn store_ips(conn: &mut SqliteConnection, host_id: HostId, ips: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM host_ips WHERE host_id = ?")
        .bind(host_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let unique: BTreeSet<&str> = ips.iter().map(String::as_str).collect();
    if unique.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO host_ips (host_id, ip) ");
    qb.push_values(unique, |mut b, ip| {
        b.push_bind(host_id).push_bind(ip);
    });
    qb.build().execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

#[async_trait]
impl HostStore for SqliteStore {
    async fn create_host(&self, h: NewHost) -> Result<Host> {
        let mut tx = self.begin().await?;
        let f = &h.facts;
        let id: HostId = sqlx::query_scalar(
            "INSERT INTO hosts (scope_id, agent_id, secret_hash, hostname, ip, ips, os, os_version, \
             arch, agent_version, containment, agent_labels, user_labels, status, status_at, \
             generation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, 0, ?) \
             RETURNING id",
        )
        .bind(h.scope_id)
        .bind(&h.agent_id)
        .bind(&h.secret_hash)
        .bind(&f.hostname)
        .bind(f.ips.first().map(String::as_str).unwrap_or_default())
        .bind(to_json(&f.ips)?)
        .bind(&f.os)
        .bind(&f.os_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(&f.containment)
        .bind(to_json(&h.agent_labels)?)
        .bind(AgentStatus::Offline.code())
        .bind(h.now)
        .bind(h.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict(format!("agent {} is enrolled", h.agent_id)),
            other => other,
        })?;
        store_ips(&mut tx, id, &f.ips).await?;
        tx.commit().await.map_err(db)?;
        self.get_host(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("host {id}")))
    }

    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>> {
        let row = sqlx::query("SELECT id, secret_hash, revoked_at FROM hosts WHERE agent_id = ?")
            .bind(agent_id)
            .fetch_optional(&self.read)
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
        let mut tx = self.begin().await?;
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE hosts SET generation = generation + 1, status = ?, status_at = ?, last_seen = ?, \
             hostname = ?, ip = ?, ips = ?, os = ?, os_version = ?, arch = ?, agent_version = ?, \
             containment = ?, agent_labels = ? WHERE id = ? RETURNING generation",
        )
        .bind(AgentStatus::Online.code())
        .bind(now)
        .bind(now)
        .bind(&facts.hostname)
        .bind(facts.ips.first().map(String::as_str).unwrap_or_default())
        .bind(to_json(&facts.ips)?)
        .bind(&facts.os)
        .bind(&facts.os_version)
        .bind(&facts.arch)
        .bind(&facts.agent_version)
        .bind(&facts.containment)
        .bind(to_json(agent_labels)?)
        .bind(host_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let generation = generation.ok_or_else(|| Error::NotFound(format!("host {host_id}")))?;
        store_ips(&mut tx, host_id, &facts.ips).await?;
        tx.commit().await.map_err(db)?;
        Ok(generation)
    }

    async fn set_agent_status(&self, changes: &[AgentStatusChange], now: UnixMs) -> Result<()> {
        let changes = last_status_changes(changes);
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for part in changes.chunks(rows_per_statement(3)) {
            let mut qb = QueryBuilder::<Sqlite>::new("WITH v(id, status, generation) AS (");
            qb.push_values(part, |mut b, c| {
                b.push_bind(c.host_id)
                    .push_bind(c.status.code())
                    .push_bind(c.generation);
            });
            qb.push(") UPDATE hosts SET status = v.status, status_at = ")
                .push_bind(now)
                .push(", last_seen = CASE WHEN v.status = ")
                .push_bind(AgentStatus::Online.code())
                .push(" THEN ")
                .push_bind(now)
                .push(
                    " ELSE hosts.last_seen END FROM v WHERE hosts.id = v.id \
                     AND (v.generation IS NULL OR hosts.generation = v.generation)",
                );
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn mark_all_offline(&self, now: UnixMs) -> Result<()> {
        sqlx::query("UPDATE hosts SET status = ?, status_at = ? WHERE status <> ?")
            .bind(AgentStatus::Offline.code())
            .bind(now)
            .bind(AgentStatus::Offline.code())
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_host(&self, host_id: HostId, now: UnixMs) -> Result<bool> {
        let done =
            sqlx::query("UPDATE hosts SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(now)
                .bind(host_id)
                .execute(&self.write)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_host(&self, host_id: HostId) -> Result<Option<Host>> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts h WHERE h.id = ?");
        let row = sqlx::query(&sql)
            .bind(host_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::host).transpose()
    }

    async fn hosts_by_ids(&self, ids: &[HostId]) -> Result<Vec<Host>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A JSON array is one bound variable however many ids there are.
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM hosts h WHERE h.id IN (SELECT value FROM json_each(?)) \
             ORDER BY h.id"
        );
        let rows = sqlx::query(&sql)
            .bind(to_json(&ids)?)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(decode::host).collect()
    }

    async fn hosts_by_ip(&self, scope_id: Option<ScopeId>, ip: &str) -> Result<Vec<Host>> {
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM hosts h \
             WHERE h.id IN (SELECT host_id FROM host_ips WHERE ip = ?1) \
             AND (?2 IS NULL OR h.scope_id = ?2) ORDER BY h.id"
        );
        let rows = sqlx::query(&sql)
            .bind(ip)
            .bind(scope_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(decode::host).collect()
    }

    async fn host_labels(&self, scope_id: ScopeId) -> Result<Vec<HostLabelRow>> {
        let rows = sqlx::query(
            "SELECT id, agent_labels, user_labels, status FROM hosts \
             WHERE scope_id = ? AND revoked_at IS NULL ORDER BY id",
        )
        .bind(scope_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter().map(decode::host_label_row).collect()
    }

    async fn list_hosts(&self, f: &HostFilter, page: Page) -> Result<Paged<Host>> {
        fetch_page(
            &self.read,
            Listing {
                table: "hosts h",
                joins: "",
                columns: HOST_COLUMNS,
                order_by: "h.id",
            },
            page,
            |qb| push_host_filter(qb, f),
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
             WHERE revoked_at IS NULL AND (?1 IS NULL OR scope_id = ?1) GROUP BY status",
        )
        .bind(scope_id)
        .fetch_all(&self.read)
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
        let done = sqlx::query("UPDATE hosts SET user_labels = ? WHERE id = ?")
            .bind(to_json(labels)?)
            .bind(host_id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_group(&self, g: NewGroup) -> Result<Group> {
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
            .fetch_one(&self.write)
            .await
            .map_err(db)?;
        decode::group(&row)
    }

    async fn list_groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups WHERE (?1 IS NULL OR scope_id = ?1) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(scope_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(decode::group).collect()
    }

    async fn get_group(&self, id: i64) -> Result<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::group).transpose()
    }

    async fn update_group(&self, id: i64, name: &str, selector: &str, now: UnixMs) -> Result<bool> {
        let done =
            sqlx::query("UPDATE groups SET name = ?, selector = ?, updated_at = ? WHERE id = ?")
                .bind(name)
                .bind(selector)
                .bind(now)
                .bind(id)
                .execute(&self.write)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_group(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM groups WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Appends the `WHERE` clause of a host listing.
fn push_host_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &HostFilter) -> Result<()> {
    qb.push(" WHERE 1 = 1");
    if let Some(scope_id) = f.scope_id {
        qb.push(" AND h.scope_id = ").push_bind(scope_id);
    }
    qb.push(shoal_store_sql::scope_in("h.scope_id", &f.scope_ids));
    if let Some(status) = f.status {
        qb.push(" AND h.status = ").push_bind(status.code());
    }
    if let Some(ip) = filter_text(&f.ip) {
        qb.push(" AND EXISTS (SELECT 1 FROM host_ips i WHERE i.host_id = h.id AND instr(i.ip, ")
            .push_bind(ip.to_string())
            .push(") > 0)");
    }
    if let Some(q) = filter_text(&f.query) {
        qb.push(" AND (instr(lower(h.hostname), lower(")
            .push_bind(q.to_string())
            .push(")) > 0 OR EXISTS (SELECT 1 FROM host_ips i WHERE i.host_id = h.id AND instr(i.ip, ")
            .push_bind(q.to_string())
            .push(") > 0))");
    }
    if let Some(os) = filter_text(&f.os) {
        qb.push(" AND lower(h.os) = lower(")
            .push_bind(os.to_string())
            .push(")");
    }
    if let Some(ids) = &f.ids {
        qb.push(" AND h.id IN (SELECT value FROM json_each(")
            .push_bind(to_json(ids)?)
            .push("))");
    }
    if !f.include_revoked {
        qb.push(" AND h.revoked_at IS NULL");
    }
    Ok(())
}

const GROUP_COLUMNS: &str = "id, scope_id, name, selector, created_at, updated_at";
