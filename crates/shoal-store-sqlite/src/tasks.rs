//! `TaskStore`: per-host tasks: the batched, idempotent write path for agent reports, and the result,
//! group and log queries.

use crate::SqliteStore;
use crate::bind::rows_per_statement;
use async_trait::async_trait;
use shoal_store::TaskStore;
use shoal_store::backend::{slice_chunks, sort_result_groups, split_updates, trim_chunks};
use shoal_store::{
    Error, GroupBy, LogSlice, OpenTask, Page, Paged, Result, ResultGroup, TaskBatch, TaskFilter,
    TaskRow,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, filter_text, int, to_json};
use shoal_types::{HostTaskStatus, StepId, TaskKey};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{BTreeSet, HashMap};

/// Most log bytes bound in one multi-row insert.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// `WHERE` condition joining `tasks` to a `v` relation on the task key.
const JOIN_V: &str = "tasks.step_id = v.step_id AND tasks.attempt = v.attempt \
    AND tasks.host_id = v.host_id";

fn push_key(b: &mut sqlx::query_builder::Separated<'_, '_, Sqlite, &'static str>, key: TaskKey) {
    b.push_bind(key.step_id)
        .push_bind(i64::from(key.attempt))
        .push_bind(key.host_id);
}

/// Stored log lengths of the tasks given; tasks that do not exist are absent.
async fn log_lens(
    conn: &mut SqliteConnection,
    keys: &BTreeSet<TaskKey>,
) -> Result<HashMap<TaskKey, u64>> {
    let keys: Vec<TaskKey> = keys.iter().copied().collect();
    let mut lens = HashMap::with_capacity(keys.len());
    for part in keys.chunks(rows_per_statement(3)) {
        let mut qb = QueryBuilder::<Sqlite>::new("WITH v(step_id, attempt, host_id) AS (");
        qb.push_values(part, |mut b, key| push_key(&mut b, *key));
        qb.push(
            ") SELECT tasks.step_id, tasks.attempt, tasks.host_id, tasks.log_len \
             FROM v JOIN tasks ON ",
        )
        .push(JOIN_V);
        for row in qb.build().fetch_all(&mut *conn).await.map_err(db)? {
            let (key, len) = decode::task_log_len(&row)?;
            lens.insert(key, len);
        }
    }
    Ok(lens)
}

async fn append_chunks(conn: &mut SqliteConnection, batch: &TaskBatch) -> Result<()> {
    let keys: BTreeSet<TaskKey> = batch.chunks.iter().map(|c| c.key).collect();
    let mut lens = log_lens(conn, &keys).await?;
    let kept = trim_chunks(&batch.chunks, &mut lens);
    if kept.is_empty() {
        return Ok(());
    }

    let per_statement = rows_per_statement(6);
    let mut rest = &kept[..];
    while !rest.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        while n < rest.len() && n < per_statement && (n == 0 || bytes < MAX_STATEMENT_BYTES) {
            bytes += rest[n].data.len();
            n += 1;
        }
        let (part, tail) = rest.split_at(n);
        rest = tail;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO log_chunks (step_id, attempt, host_id, byte_offset, stream, data) ",
        );
        qb.push_values(part, |mut b, c| {
            push_key(&mut b, c.key);
            b.push_bind(int(c.offset))
                .push_bind(i64::from(c.stream))
                .push_bind(c.data);
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }

    let grown: BTreeSet<TaskKey> = kept.iter().map(|c| c.key).collect();
    let grown: Vec<(TaskKey, u64)> = grown
        .into_iter()
        .filter_map(|k| lens.get(&k).map(|len| (k, *len)))
        .collect();
    for part in grown.chunks(rows_per_statement(4)) {
        let mut qb = QueryBuilder::<Sqlite>::new("WITH v(step_id, attempt, host_id, log_len) AS (");
        qb.push_values(part, |mut b, (key, len)| {
            push_key(&mut b, *key);
            b.push_bind(int(*len));
        });
        qb.push(") UPDATE tasks SET log_len = v.log_len FROM v WHERE ")
            .push(JOIN_V)
            .push(" AND tasks.log_len < v.log_len");
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

async fn apply_updates(conn: &mut SqliteConnection, batch: &TaskBatch) -> Result<()> {
    let (started, finished) = split_updates(&batch.updates);
    for part in started.chunks(rows_per_statement(4)) {
        let mut qb = QueryBuilder::<Sqlite>::new("WITH v(step_id, attempt, host_id, at) AS (");
        qb.push_values(part, |mut b, (key, at)| {
            push_key(&mut b, *key);
            b.push_bind(*at);
        });
        qb.push(") UPDATE tasks SET status = ")
            .push_bind(HostTaskStatus::Running.code())
            .push(", started_at = v.at FROM v WHERE ")
            .push(JOIN_V)
            .push(" AND tasks.status = ")
            .push_bind(HostTaskStatus::Waiting.code());
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    for part in finished.chunks(rows_per_statement(11)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "WITH v(step_id, attempt, host_id, status, exit_code, started_at, ended_at, \
             truncated, digest, tag, error) AS (",
        );
        qb.push_values(part, |mut b, r| {
            push_key(&mut b, r.key);
            b.push_bind(r.status.code())
                .push_bind(r.exit_code)
                .push_bind(r.started_at)
                .push_bind(r.ended_at)
                .push_bind(r.truncated)
                .push_bind(r.digest.as_deref())
                .push_bind(r.tag.as_deref())
                .push_bind(r.error.as_deref());
        });
        qb.push(
            ") UPDATE tasks SET status = v.status, exit_code = v.exit_code, \
             started_at = COALESCE(tasks.started_at, v.started_at), ended_at = v.ended_at, \
             truncated = v.truncated, digest = v.digest, tag = v.tag, error = v.error \
             FROM v WHERE ",
        )
        .push(JOIN_V)
        .push(" AND tasks.status IN (")
        .push_bind(HostTaskStatus::Waiting.code())
        .push(", ")
        .push_bind(HostTaskStatus::Running.code())
        .push(")");
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// The per-host result rows of `list_tasks`, with the host's address.
const TASK_ROWS: Listing<'static> = Listing {
    table: "tasks t",
    joins: " LEFT JOIN hosts h ON h.id = t.host_id",
    columns: "t.step_id, t.attempt, t.host_id, COALESCE(h.ip, '') AS ip, \
        COALESCE(h.hostname, '') AS hostname, t.status, t.exit_code, t.tag, t.digest, \
        t.started_at, t.ended_at, t.log_len, t.truncated, t.error",
    order_by: "t.host_id",
};

#[async_trait]
impl TaskStore for SqliteStore {
    async fn apply_task_batch(&self, batch: &TaskBatch) -> Result<()> {
        if batch.chunks.is_empty() && batch.updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        if !batch.chunks.is_empty() {
            append_chunks(&mut tx, batch).await?;
        }
        apply_updates(&mut tx, batch).await?;
        tx.commit().await.map_err(db)
    }

    async fn open_tasks(&self, step_ids: &[StepId]) -> Result<Vec<OpenTask>> {
        if step_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT t.step_id, t.attempt, t.host_id, s.job_id, t.status \
             FROM tasks t JOIN steps s ON s.id = t.step_id \
             WHERE t.step_id IN (SELECT value FROM json_each(?)) AND t.status IN (?, ?) \
             ORDER BY t.step_id, t.attempt, t.host_id",
        )
        .bind(to_json(&step_ids)?)
        .bind(HostTaskStatus::Waiting.code())
        .bind(HostTaskStatus::Running.code())
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter().map(decode::open_task).collect()
    }

    async fn task_counts(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Vec<(HostTaskStatus, u64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM tasks WHERE step_id = ? AND attempt = ? \
             GROUP BY status ORDER BY status",
        )
        .bind(step_id)
        .bind(i64::from(attempt))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter().map(decode::task_status_count).collect()
    }

    async fn list_tasks(&self, f: &TaskFilter, page: Page) -> Result<Paged<TaskRow>> {
        fetch_page(
            &self.read,
            TASK_ROWS,
            page,
            |qb| {
                push_task_filter(qb, f);
                Ok(())
            },
            decode::task_row,
        )
        .await
    }

    async fn result_groups(
        &self,
        step_id: StepId,
        attempt: u32,
        by: GroupBy,
    ) -> Result<Vec<ResultGroup>> {
        let sql = match by {
            GroupBy::Status => {
                "SELECT status, exit_code, tag, NULL AS digest, COUNT(*) AS n, MIN(host_id) AS sample \
                 FROM tasks WHERE step_id = ? AND attempt = ? GROUP BY status, exit_code, tag"
            }
            GroupBy::Output => {
                "SELECT status, exit_code, tag, digest, COUNT(*) AS n, MIN(host_id) AS sample \
                 FROM tasks WHERE step_id = ? AND attempt = ? GROUP BY status, exit_code, tag, digest"
            }
        };
        let rows = sqlx::query(sql)
            .bind(step_id)
            .bind(i64::from(attempt))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        let mut groups = rows
            .iter()
            .map(decode::result_group)
            .collect::<Result<Vec<_>>>()?;
        sort_result_groups(&mut groups);
        Ok(groups)
    }

    async fn read_log(&self, key: TaskKey, offset: u64, limit: u64) -> Result<LogSlice> {
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT log_len FROM tasks WHERE step_id = ? AND attempt = ? AND host_id = ?",
        )
        .bind(key.step_id)
        .bind(i64::from(key.attempt))
        .bind(key.host_id)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        let total = total.ok_or_else(|| Error::NotFound(format!("task {key}")))?;
        let total = u64::try_from(total).unwrap_or_default();
        let end = offset.saturating_add(limit).min(total);
        if offset >= end {
            return Ok(LogSlice {
                offset,
                data: Vec::new(),
                total,
            });
        }
        // The chunk holding `offset` starts at or before it; later chunks start before `end`.
        let rows = sqlx::query(
            "SELECT byte_offset, data FROM log_chunks \
             WHERE step_id = ?1 AND attempt = ?2 AND host_id = ?3 AND byte_offset < ?5 \
             AND byte_offset >= COALESCE((SELECT MAX(byte_offset) FROM log_chunks \
                 WHERE step_id = ?1 AND attempt = ?2 AND host_id = ?3 AND byte_offset <= ?4), 0) \
             ORDER BY byte_offset",
        )
        .bind(key.step_id)
        .bind(i64::from(key.attempt))
        .bind(key.host_id)
        .bind(int(offset))
        .bind(int(end))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        let pieces = rows
            .iter()
            .map(decode::log_piece)
            .collect::<Result<Vec<_>>>()?;
        Ok(LogSlice {
            offset,
            data: slice_chunks(&pieces, offset, end),
            total,
        })
    }
}

fn push_task_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &TaskFilter) {
    qb.push(" WHERE t.step_id = ")
        .push_bind(f.step_id)
        .push(" AND t.attempt = ")
        .push_bind(i64::from(f.attempt));
    if !f.statuses.is_empty() {
        qb.push(" AND t.status IN (");
        let mut list = qb.separated(", ");
        for status in &f.statuses {
            list.push_bind(status.code());
        }
        qb.push(")");
    }
    if let Some(host_id) = f.host_id {
        qb.push(" AND t.host_id = ").push_bind(host_id);
    }
    if let Some(ip) = filter_text(&f.ip) {
        qb.push(
            " AND EXISTS (SELECT 1 FROM host_ips i WHERE i.host_id = t.host_id AND instr(i.ip, ",
        )
        .push_bind(ip.to_string())
        .push(") > 0)");
    }
    if let Some(keyword) = f.keyword.as_deref().filter(|k| !k.is_empty()) {
        qb.push(
            " AND EXISTS (SELECT 1 FROM log_chunks c WHERE c.step_id = t.step_id \
             AND c.attempt = t.attempt AND c.host_id = t.host_id AND instr(c.data, ",
        )
        .push_bind(keyword.as_bytes().to_vec())
        .push(") > 0)");
    }
    if let Some(g) = &f.group {
        qb.push(" AND t.status = ")
            .push_bind(g.status.code())
            .push(" AND t.exit_code IS ")
            .push_bind(g.exit_code)
            .push(" AND t.tag IS ")
            .push_bind(g.tag.clone());
        if let Some(digest) = &g.digest {
            qb.push(" AND t.digest = ").push_bind(digest.clone());
        }
    }
}
