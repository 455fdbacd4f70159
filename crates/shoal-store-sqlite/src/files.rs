//! `FileStore`: per-file transfer rows of file distribution (batched inserts, idempotent
//! progress, paged listing).

use crate::SqliteStore;
use crate::bind::rows_per_statement;
use async_trait::async_trait;
use shoal_store::FileStore;
use shoal_store::backend::merge_file_progress;
use shoal_store::{
    Error, FileProgress, FileStatus, FileTaskFilter, FileTaskKey, FileTaskRow, NewFileTask, Page,
    Paged, Result,
};
use shoal_store_sql::{self as decode, Listing, db, fetch_page, int};
use shoal_types::StepId;
use sqlx::{QueryBuilder, Sqlite};

/// `WHERE` condition joining `file_tasks` to a `v` relation on the file task key (`v.src` is
/// the source host id, 0 for none).
const JOIN_V: &str = "file_tasks.step_id = v.step_id AND file_tasks.attempt = v.attempt \
    AND file_tasks.mode = v.mode AND file_tasks.host_id = v.host_id \
    AND COALESCE(file_tasks.source_host_id, 0) = v.src \
    AND file_tasks.source_path = v.source_path AND file_tasks.dest_path = v.dest_path";

fn push_key<'a>(
    b: &mut sqlx::query_builder::Separated<'_, 'a, Sqlite, &'static str>,
    key: &'a FileTaskKey,
) {
    b.push_bind(key.step_id)
        .push_bind(i64::from(key.attempt))
        .push_bind(i64::from(key.mode))
        .push_bind(key.host_id)
        .push_bind(key.source_host_id.unwrap_or(0))
        .push_bind(key.source_path.as_str())
        .push_bind(key.dest_path.as_str());
}

/// The file transfer rows of `list_file_tasks`, with both hosts' addresses.
const FILE_TASK_ROWS: Listing<'static> = Listing {
    table: "file_tasks f",
    joins: " LEFT JOIN hosts h ON h.id = f.host_id LEFT JOIN hosts sh ON sh.id = f.source_host_id",
    columns: "f.step_id, f.attempt, f.mode, f.host_id, f.source_host_id, f.source_path, \
        f.dest_path, COALESCE(h.ip, '') AS ip, COALESCE(h.hostname, '') AS hostname, \
        sh.ip AS source_ip, sh.hostname AS source_hostname, f.size, f.bytes_done, f.speed, \
        f.status, f.error, f.started_at, f.ended_at",
    order_by: "f.mode, f.host_id, COALESCE(f.source_host_id, 0), f.source_path, f.dest_path",
};

#[async_trait]
impl FileStore for SqliteStore {
    async fn insert_file_tasks(&self, tasks: &[NewFileTask]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for part in tasks.chunks(rows_per_statement(10)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO file_tasks (step_id, attempt, mode, host_id, source_host_id, \
                 source_path, dest_path, size, status, error) ",
            );
            qb.push_values(part, |mut b, t| {
                b.push_bind(t.key.step_id)
                    .push_bind(i64::from(t.key.attempt))
                    .push_bind(i64::from(t.key.mode))
                    .push_bind(t.key.host_id)
                    .push_bind(t.key.source_host_id)
                    .push_bind(t.key.source_path.as_str())
                    .push_bind(t.key.dest_path.as_str())
                    .push_bind(int(t.size))
                    .push_bind(t.status.code())
                    .push_bind(t.error.as_deref());
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::Conflict(_) => Error::Conflict("file task exists already".to_string()),
                    other => other,
                })?;
        }
        tx.commit().await.map_err(db)
    }

    async fn apply_file_progress(&self, progress: &[FileProgress]) -> Result<()> {
        let merged = merge_file_progress(progress);
        if merged.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for part in merged.chunks(rows_per_statement(13)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "WITH v(step_id, attempt, mode, host_id, src, source_path, dest_path, status, \
                 bytes_done, speed, error, started_at, ended_at) AS (",
            );
            qb.push_values(part, |mut b, m| {
                push_key(&mut b, m.key);
                b.push_bind(m.status.code())
                    .push_bind(int(m.bytes_done))
                    .push_bind(int(m.speed))
                    .push_bind(m.error)
                    .push_bind(m.started_at)
                    .push_bind(m.ended_at);
            });
            qb.push(
                ") UPDATE file_tasks SET status = v.status, \
                 bytes_done = max(file_tasks.bytes_done, v.bytes_done), speed = v.speed, \
                 error = COALESCE(v.error, file_tasks.error), \
                 started_at = COALESCE(file_tasks.started_at, v.started_at), ended_at = v.ended_at \
                 FROM v WHERE ",
            )
            .push(JOIN_V)
            .push(" AND file_tasks.status NOT IN (")
            .push_bind(FileStatus::Success.code())
            .push(", ")
            .push_bind(FileStatus::Failed.code())
            .push(")");
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn list_file_tasks(&self, f: &FileTaskFilter, page: Page) -> Result<Paged<FileTaskRow>> {
        fetch_page(
            &self.read,
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
        attempt: u32,
    ) -> Result<Vec<(FileStatus, u64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM file_tasks \
             WHERE step_id = ? AND attempt = ? AND mode = ? GROUP BY status ORDER BY status",
        )
        .bind(step_id)
        .bind(i64::from(attempt))
        .bind(i64::from(shoal_store::FILE_MODE_DOWNLOAD))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter().map(decode::file_status_count).collect()
    }
}

fn push_file_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &FileTaskFilter) {
    qb.push(" WHERE f.step_id = ")
        .push_bind(f.step_id)
        .push(" AND f.attempt = ")
        .push_bind(i64::from(f.attempt));
    if let Some(mode) = f.mode {
        qb.push(" AND f.mode = ").push_bind(i64::from(mode));
    }
    if let Some(host_id) = f.host_id {
        qb.push(" AND f.host_id = ").push_bind(host_id);
    }
    if !f.statuses.is_empty() {
        qb.push(" AND f.status IN (");
        let mut list = qb.separated(", ");
        for status in &f.statuses {
            list.push_bind(status.code());
        }
        qb.push(")");
    }
}
