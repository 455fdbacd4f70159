//! `TaskStore`: per-host tasks: the batched, idempotent write path for agent reports, and the result,
//! group and log queries.

use crate::PgStore;
use crate::bind::{MAX_STATEMENT_BYTES, attempt};
use async_trait::async_trait;
use shoal_store::TaskStore;
use shoal_store::backend::{
    NewChunk, slice_chunks, sort_result_groups, split_updates, trim_chunks,
};
use shoal_store::{
    Error, GroupBy, LogSlice, OpenTask, Page, Paged, Result, ResultGroup, TaskBatch, TaskFilter,
    TaskRow,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, filter_text, int};
use shoal_types::{HostTaskStatus, StepId, TaskKey};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::{BTreeSet, HashMap};

/// Task keys as three parallel arrays, for `UNNEST`.
#[derive(Default)]
struct Keys {
    steps: Vec<i64>,
    attempts: Vec<i32>,
    hosts: Vec<i64>,
}

impl Keys {
    fn push(&mut self, key: TaskKey) {
        self.steps.push(key.step_id);
        self.attempts.push(attempt(key.attempt));
        self.hosts.push(key.host_id);
    }
}

/// Locks the task rows a batch touches, in key order (so that concurrent batches cannot
/// deadlock), and returns their log lengths.
async fn lock_tasks(conn: &mut PgConnection, batch: &TaskBatch) -> Result<HashMap<TaskKey, u64>> {
    let all: BTreeSet<TaskKey> = batch
        .chunks
        .iter()
        .map(|c| c.key)
        .chain(batch.updates.iter().map(|u| u.key()))
        .collect();
    let mut keys = Keys::default();
    for key in all {
        keys.push(key);
    }
    let rows = sqlx::query(
        "SELECT t.step_id, t.attempt, t.host_id, t.log_len FROM tasks t \
         JOIN UNNEST($1::bigint[], $2::int[], $3::bigint[]) AS v(step_id, attempt, host_id) \
         ON t.step_id = v.step_id AND t.attempt = v.attempt AND t.host_id = v.host_id \
         ORDER BY t.step_id, t.attempt, t.host_id FOR UPDATE OF t",
    )
    .bind(keys.steps)
    .bind(keys.attempts)
    .bind(keys.hosts)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut lens = HashMap::with_capacity(rows.len());
    for row in &rows {
        let (key, len) = decode::task_log_len(row)?;
        lens.insert(key, len);
    }
    Ok(lens)
}

async fn insert_chunks(conn: &mut PgConnection, chunks: &[NewChunk<'_>]) -> Result<()> {
    let mut rest = chunks;
    while !rest.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        while n < rest.len() && (n == 0 || bytes < MAX_STATEMENT_BYTES) {
            bytes += rest[n].data.len();
            n += 1;
        }
        let (part, tail) = rest.split_at(n);
        rest = tail;
        let mut keys = Keys::default();
        let mut offsets = Vec::with_capacity(part.len());
        let mut streams = Vec::with_capacity(part.len());
        let mut data = Vec::with_capacity(part.len());
        for c in part {
            keys.push(c.key);
            offsets.push(int(c.offset));
            streams.push(i16::from(c.stream));
            data.push(c.data.to_vec());
        }
        sqlx::query(
            "INSERT INTO log_chunks (step_id, attempt, host_id, byte_offset, stream, data) \
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], \
             $5::smallint[], $6::bytea[]) ON CONFLICT DO NOTHING",
        )
        .bind(keys.steps)
        .bind(keys.attempts)
        .bind(keys.hosts)
        .bind(offsets)
        .bind(streams)
        .bind(data)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

async fn append_chunks(
    conn: &mut PgConnection,
    batch: &TaskBatch,
    mut lens: HashMap<TaskKey, u64>,
) -> Result<()> {
    let kept = trim_chunks(&batch.chunks, &mut lens);
    if kept.is_empty() {
        return Ok(());
    }
    insert_chunks(conn, &kept).await?;

    let grown: BTreeSet<TaskKey> = kept.iter().map(|c| c.key).collect();
    let mut keys = Keys::default();
    let mut new_lens = Vec::with_capacity(grown.len());
    for key in grown {
        let Some(len) = lens.get(&key) else { continue };
        keys.push(key);
        new_lens.push(int(*len));
    }
    sqlx::query(
        "UPDATE tasks t SET log_len = v.log_len \
         FROM UNNEST($1::bigint[], $2::int[], $3::bigint[], $4::bigint[]) \
         AS v(step_id, attempt, host_id, log_len) \
         WHERE t.step_id = v.step_id AND t.attempt = v.attempt AND t.host_id = v.host_id \
         AND t.log_len < v.log_len",
    )
    .bind(keys.steps)
    .bind(keys.attempts)
    .bind(keys.hosts)
    .bind(new_lens)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

async fn apply_updates(conn: &mut PgConnection, batch: &TaskBatch) -> Result<()> {
    let (started, finished) = split_updates(&batch.updates);
    if !started.is_empty() {
        let mut keys = Keys::default();
        let mut at = Vec::with_capacity(started.len());
        for (key, when) in &started {
            keys.push(*key);
            at.push(*when);
        }
        sqlx::query(
            "UPDATE tasks t SET status = $5, started_at = v.at \
             FROM UNNEST($1::bigint[], $2::int[], $3::bigint[], $4::bigint[]) \
             AS v(step_id, attempt, host_id, at) \
             WHERE t.step_id = v.step_id AND t.attempt = v.attempt AND t.host_id = v.host_id \
             AND t.status = $6",
        )
        .bind(keys.steps)
        .bind(keys.attempts)
        .bind(keys.hosts)
        .bind(at)
        .bind(HostTaskStatus::Running.code())
        .bind(HostTaskStatus::Waiting.code())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    if !finished.is_empty() {
        let mut keys = Keys::default();
        let n = finished.len();
        let (mut status, mut exit_code, mut started_at, mut ended_at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut truncated, mut digest, mut tag, mut error) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in &finished {
            keys.push(r.key);
            status.push(r.status.code());
            exit_code.push(r.exit_code);
            started_at.push(r.started_at);
            ended_at.push(r.ended_at);
            truncated.push(r.truncated);
            digest.push(r.digest.clone());
            tag.push(r.tag.clone());
            error.push(r.error.clone());
        }
        sqlx::query(
            "UPDATE tasks t SET status = v.status, exit_code = v.exit_code, \
             started_at = COALESCE(t.started_at, v.started_at), ended_at = v.ended_at, \
             truncated = v.truncated, digest = v.digest, tag = v.tag, error = v.error \
             FROM UNNEST($1::bigint[], $2::int[], $3::bigint[], $4::int[], $5::int[], \
             $6::bigint[], $7::bigint[], $8::bool[], $9::text[], $10::text[], $11::text[]) \
             AS v(step_id, attempt, host_id, status, exit_code, started_at, ended_at, truncated, \
             digest, tag, error) \
             WHERE t.step_id = v.step_id AND t.attempt = v.attempt AND t.host_id = v.host_id \
             AND t.status = ANY($12)",
        )
        .bind(keys.steps)
        .bind(keys.attempts)
        .bind(keys.hosts)
        .bind(status)
        .bind(exit_code)
        .bind(started_at)
        .bind(ended_at)
        .bind(truncated)
        .bind(digest)
        .bind(tag)
        .bind(error)
        .bind(vec![
            HostTaskStatus::Waiting.code(),
            HostTaskStatus::Running.code(),
        ])
        .execute(&mut *conn)
        .await
        .map_err(db)?;
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
impl TaskStore for PgStore {
    async fn apply_task_batch(&self, batch: &TaskBatch) -> Result<()> {
        if batch.chunks.is_empty() && batch.updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let lens = lock_tasks(&mut tx, batch).await?;
        if !batch.chunks.is_empty() {
            append_chunks(&mut tx, batch, lens).await?;
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
             WHERE t.step_id = ANY($1) AND t.status = ANY($2) \
             ORDER BY t.step_id, t.attempt, t.host_id",
        )
        .bind(step_ids)
        .bind(vec![
            HostTaskStatus::Waiting.code(),
            HostTaskStatus::Running.code(),
        ])
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(decode::open_task).collect()
    }

    async fn task_counts(
        &self,
        step_id: StepId,
        attempt_no: u32,
    ) -> Result<Vec<(HostTaskStatus, u64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM tasks WHERE step_id = $1 AND attempt = $2 \
             GROUP BY status ORDER BY status",
        )
        .bind(step_id)
        .bind(attempt(attempt_no))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(decode::task_status_count).collect()
    }

    async fn list_tasks(&self, f: &TaskFilter, page: Page) -> Result<Paged<TaskRow>> {
        fetch_page(
            &self.pool,
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
        attempt_no: u32,
        by: GroupBy,
    ) -> Result<Vec<ResultGroup>> {
        let sql = match by {
            GroupBy::Status => {
                "SELECT status, exit_code, tag, NULL::text AS digest, COUNT(*) AS n, \
                 MIN(host_id) AS sample FROM tasks WHERE step_id = $1 AND attempt = $2 \
                 GROUP BY status, exit_code, tag"
            }
            GroupBy::Output => {
                "SELECT status, exit_code, tag, digest, COUNT(*) AS n, MIN(host_id) AS sample \
                 FROM tasks WHERE step_id = $1 AND attempt = $2 GROUP BY status, exit_code, tag, digest"
            }
        };
        let rows = sqlx::query(sql)
            .bind(step_id)
            .bind(attempt(attempt_no))
            .fetch_all(&self.pool)
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
            "SELECT log_len FROM tasks WHERE step_id = $1 AND attempt = $2 AND host_id = $3",
        )
        .bind(key.step_id)
        .bind(attempt(key.attempt))
        .bind(key.host_id)
        .fetch_optional(&self.pool)
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
             WHERE step_id = $1 AND attempt = $2 AND host_id = $3 AND byte_offset < $5 \
             AND byte_offset >= COALESCE((SELECT MAX(byte_offset) FROM log_chunks \
                 WHERE step_id = $1 AND attempt = $2 AND host_id = $3 AND byte_offset <= $4), 0) \
             ORDER BY byte_offset",
        )
        .bind(key.step_id)
        .bind(attempt(key.attempt))
        .bind(key.host_id)
        .bind(int(offset))
        .bind(int(end))
        .fetch_all(&self.pool)
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

fn push_task_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &TaskFilter) {
    qb.push(" WHERE t.step_id = ")
        .push_bind(f.step_id)
        .push(" AND t.attempt = ")
        .push_bind(attempt(f.attempt));
    if !f.statuses.is_empty() {
        let codes: Vec<i32> = f.statuses.iter().map(|s| s.code()).collect();
        qb.push(" AND t.status = ANY(").push_bind(codes).push(")");
    }
    if let Some(host_id) = f.host_id {
        qb.push(" AND t.host_id = ").push_bind(host_id);
    }
    if let Some(ip) = filter_text(&f.ip) {
        qb.push(
            " AND EXISTS (SELECT 1 FROM hosts h2, unnest(h2.ips) AS x(ip) \
             WHERE h2.id = t.host_id AND strpos(x.ip, ",
        )
        .push_bind(ip.to_string())
        .push(") > 0)");
    }
    if let Some(keyword) = f.keyword.as_deref().filter(|k| !k.is_empty()) {
        qb.push(
            " AND EXISTS (SELECT 1 FROM log_chunks c WHERE c.step_id = t.step_id \
             AND c.attempt = t.attempt AND c.host_id = t.host_id AND position(",
        )
        .push_bind(keyword.as_bytes().to_vec())
        .push("::bytea in c.data) > 0)");
    }
    if let Some(g) = &f.group {
        qb.push(" AND t.status = ")
            .push_bind(g.status.code())
            .push(" AND t.exit_code IS NOT DISTINCT FROM ")
            .push_bind(g.exit_code)
            .push("::int AND t.tag IS NOT DISTINCT FROM ")
            .push_bind(g.tag.clone())
            .push("::text");
        if let Some(digest) = &g.digest {
            qb.push(" AND t.digest = ").push_bind(digest.clone());
        }
    }
}
