//! `FileStore`: per-file transfer rows of file distribution (batched inserts, idempotent
//! progress, paged listing).

use crate::PgStore;
use crate::bind::attempt;
use async_trait::async_trait;
use shoal_store::FileStore;
use shoal_store::backend::{MergedProgress, merge_file_progress};
use shoal_store::{
    Error, FILE_MODE_DOWNLOAD, FileProgress, FileStatus, FileTaskFilter, FileTaskKey, FileTaskRow,
    NewFileTask, Page, Paged, Result,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, int};
use shoal_types::StepId;
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// File task keys as parallel arrays, for `UNNEST` (`$1..$7`; no source host is 0).
#[derive(Default)]
struct Keys {
    steps: Vec<i64>,
    attempts: Vec<i32>,
    modes: Vec<i32>,
    hosts: Vec<i64>,
    sources: Vec<i64>,
    source_paths: Vec<String>,
    dest_paths: Vec<String>,
}

impl Keys {
    fn push(&mut self, key: &FileTaskKey) {
        self.steps.push(key.step_id);
        self.attempts.push(attempt(key.attempt));
        self.modes.push(i32::from(key.mode));
        self.hosts.push(key.host_id);
        self.sources.push(key.source_host_id.unwrap_or(0));
        self.source_paths.push(key.source_path.clone());
        self.dest_paths.push(key.dest_path.clone());
    }

    fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.steps)
            .bind(self.attempts)
            .bind(self.modes)
            .bind(self.hosts)
            .bind(self.sources)
            .bind(self.source_paths)
            .bind(self.dest_paths)
    }
}

/// The `UNNEST` of [`Keys`] as `v`, and the condition joining `f` (file_tasks) to it.
const UNNEST_KEYS: &str = "UNNEST($1::bigint[], $2::int[], $3::int[], $4::bigint[], \
    $5::bigint[], $6::text[], $7::text[]";
const V_KEY_COLUMNS: &str = "step_id, attempt, mode, host_id, src, source_path, dest_path";
const JOIN_V: &str = "f.step_id = v.step_id AND f.attempt = v.attempt AND f.mode = v.mode \
    AND f.host_id = v.host_id AND COALESCE(f.source_host_id, 0) = v.src \
    AND f.source_path = v.source_path AND f.dest_path = v.dest_path";

/// The file transfer rows of `list_file_tasks`, with both hosts' addresses.
const FILE_TASK_ROWS: Listing<'static> = Listing {
    table: "file_tasks f",
    joins: " LEFT JOIN hosts h ON h.id = f.host_id LEFT JOIN hosts sh ON sh.id = f.source_host_id",
    columns: "f.step_id, f.attempt, f.mode, f.host_id, f.source_host_id, f.source_path, \
        f.dest_path, COALESCE(h.ip, '') AS ip, COALESCE(h.hostname, '') AS hostname, \
        sh.ip AS source_ip, sh.hostname AS source_hostname, f.size, f.bytes_done, f.speed, \
        f.status, f.error, f.started_at, f.ended_at",
    // Paths in byte order, as SQLite compares text, whatever the database's collation.
    order_by: "f.mode, f.host_id, COALESCE(f.source_host_id, 0), \
        f.source_path COLLATE \"C\", f.dest_path COLLATE \"C\"",
};

#[async_trait]
impl FileStore for PgStore {
    async fn insert_file_tasks(&self, tasks: &[NewFileTask]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let n = tasks.len();
        let (mut steps, mut attempts, mut modes, mut hosts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut sources, mut source_paths, mut dest_paths) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut sizes, mut statuses, mut errors) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for t in tasks {
            steps.push(t.key.step_id);
            attempts.push(attempt(t.key.attempt));
            modes.push(i32::from(t.key.mode));
            hosts.push(t.key.host_id);
            sources.push(t.key.source_host_id);
            source_paths.push(t.key.source_path.as_str());
            dest_paths.push(t.key.dest_path.as_str());
            sizes.push(int(t.size));
            statuses.push(t.status.code());
            errors.push(t.error.as_deref());
        }
        sqlx::query(
            "INSERT INTO file_tasks (step_id, attempt, mode, host_id, source_host_id, source_path, \
             dest_path, size, status, error) \
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::bigint[], \
             $6::text[], $7::text[], $8::bigint[], $9::int[], $10::text[])",
        )
        .bind(steps)
        .bind(attempts)
        .bind(modes)
        .bind(hosts)
        .bind(sources)
        .bind(source_paths)
        .bind(dest_paths)
        .bind(sizes)
        .bind(statuses)
        .bind(errors)
        .execute(&self.pool)
        .await
        .map_err(|e| match db(e) {
            Error::Conflict(_) => Error::Conflict("file task exists already".to_string()),
            other => other,
        })?;
        Ok(())
    }

    async fn apply_file_progress(&self, progress: &[FileProgress]) -> Result<()> {
        let merged = merge_file_progress(progress);
        if merged.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        lock_rows(&mut tx, &merged).await?;
        let n = merged.len();
        let mut keys = Keys::default();
        let (mut statuses, mut done, mut speeds) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut errors, mut started, mut ended) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for m in &merged {
            keys.push(m.key);
            statuses.push(m.status.code());
            done.push(int(m.bytes_done));
            speeds.push(int(m.speed));
            errors.push(m.error.map(str::to_string));
            started.push(m.started_at);
            ended.push(m.ended_at);
        }
        let sql = format!(
            "UPDATE file_tasks f SET status = v.status, \
             bytes_done = GREATEST(f.bytes_done, v.bytes_done), speed = v.speed, \
             error = COALESCE(v.error, f.error), started_at = COALESCE(f.started_at, v.started_at), \
             ended_at = v.ended_at \
             FROM UNNEST($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::bigint[], \
             $6::text[], $7::text[], $8::int[], $9::bigint[], $10::bigint[], $11::text[], \
             $12::bigint[], $13::bigint[]) \
             AS v({V_KEY_COLUMNS}, status, bytes_done, speed, error, started_at, ended_at) \
             WHERE {JOIN_V} AND f.status <> ALL($14)"
        );
        keys.bind(sqlx::query(&sql))
            .bind(statuses)
            .bind(done)
            .bind(speeds)
            .bind(errors)
            .bind(started)
            .bind(ended)
            .bind(vec![FileStatus::Success.code(), FileStatus::Failed.code()])
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn list_file_tasks(&self, f: &FileTaskFilter, page: Page) -> Result<Paged<FileTaskRow>> {
        fetch_page(
            &self.pool,
            FILE_TASK_ROWS,
            page,
            |qb| {
                push_file_filter(qb, f);
                Ok(())
            },
            decode::file_task_row,
        )
        .await
    }

    async fn file_task_counts(
        &self,
        step_id: StepId,
        attempt_no: u32,
    ) -> Result<Vec<(FileStatus, u64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM file_tasks \
             WHERE step_id = $1 AND attempt = $2 AND mode = $3 GROUP BY status ORDER BY status",
        )
        .bind(step_id)
        .bind(attempt(attempt_no))
        .bind(i32::from(FILE_MODE_DOWNLOAD))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(decode::file_status_count).collect()
    }
}

/// Locks the rows a batch touches in id order, so that concurrent batches cannot deadlock.
async fn lock_rows(conn: &mut PgConnection, merged: &[MergedProgress<'_>]) -> Result<()> {
    let mut keys = Keys::default();
    for m in merged {
        keys.push(m.key);
    }
    let sql = format!(
        "SELECT f.id FROM file_tasks f JOIN {UNNEST_KEYS}) AS v({V_KEY_COLUMNS}) ON {JOIN_V} \
         ORDER BY f.id FOR UPDATE OF f"
    );
    keys.bind(sqlx::query(&sql))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

fn push_file_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &FileTaskFilter) {
    qb.push(" WHERE f.step_id = ")
        .push_bind(f.step_id)
        .push(" AND f.attempt = ")
        .push_bind(attempt(f.attempt));
    if let Some(mode) = f.mode {
        qb.push(" AND f.mode = ").push_bind(i32::from(mode));
    }
    if let Some(host_id) = f.host_id {
        qb.push(" AND f.host_id = ").push_bind(host_id);
    }
    if !f.statuses.is_empty() {
        let codes: Vec<i32> = f.statuses.iter().map(|s| s.code()).collect();
        qb.push(" AND f.status = ANY(").push_bind(codes).push(")");
    }
}
