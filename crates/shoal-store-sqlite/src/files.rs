//! File distribution: per-file transfer rows (batched inserts, idempotent progress) and
//! content-addressed uploads with their step references.

use crate::SqliteStore;
use crate::bind::rows_per_statement;
use shoal_store::backend::merge_file_progress;
use shoal_store::{
    Error, FileProgress, FileStatus, FileTaskFilter, FileTaskKey, FileTaskRow, LIVE_RUN_STATUSES,
    NewFileTask, NewUpload, Page, Paged, Result, Upload,
};
use shoal_store_sql::{self as decode, db, int, to_json};
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

pub(crate) async fn insert_file_tasks(s: &SqliteStore, tasks: &[NewFileTask]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let mut tx = s.begin().await?;
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

pub(crate) async fn apply_file_progress(s: &SqliteStore, progress: &[FileProgress]) -> Result<()> {
    let merged = merge_file_progress(progress);
    if merged.is_empty() {
        return Ok(());
    }
    let mut tx = s.begin().await?;
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

pub(crate) async fn list_file_tasks(
    s: &SqliteStore,
    f: &FileTaskFilter,
    page: Page,
) -> Result<Paged<FileTaskRow>> {
    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM file_tasks f");
    push_file_filter(&mut count, f);
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(&s.read)
        .await
        .map_err(db)?;

    let mut select = QueryBuilder::<Sqlite>::new(
        "SELECT f.step_id, f.attempt, f.mode, f.host_id, f.source_host_id, f.source_path, \
         f.dest_path, COALESCE(h.ip, '') AS ip, COALESCE(h.hostname, '') AS hostname, \
         sh.ip AS source_ip, sh.hostname AS source_hostname, f.size, f.bytes_done, f.speed, \
         f.status, f.error, f.started_at, f.ended_at \
         FROM file_tasks f LEFT JOIN hosts h ON h.id = f.host_id \
         LEFT JOIN hosts sh ON sh.id = f.source_host_id",
    );
    push_file_filter(&mut select, f);
    select
        .push(
            " ORDER BY f.mode, f.host_id, COALESCE(f.source_host_id, 0), f.source_path, \
             f.dest_path LIMIT ",
        )
        .push_bind(i64::from(page.length))
        .push(" OFFSET ")
        .push_bind(int(page.start));
    let rows = select.build().fetch_all(&s.read).await.map_err(db)?;
    Ok(Paged {
        start: page.start,
        length: page.length,
        total: u64::try_from(total).unwrap_or_default(),
        data: rows
            .iter()
            .map(decode::file_task_row)
            .collect::<Result<_>>()?,
    })
}

pub(crate) async fn file_task_counts(
    s: &SqliteStore,
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
    .fetch_all(&s.read)
    .await
    .map_err(db)?;
    rows.iter().map(decode::file_status_count).collect()
}

const UPLOAD_COLUMNS: &str = "id, name, size, chunks, created_by, created_at, last_used_at";

/// `NOT EXISTS` condition: no live step refers to the upload `u`.
fn push_no_live_ref(qb: &mut QueryBuilder<'_, Sqlite>) {
    qb.push(
        " NOT EXISTS (SELECT 1 FROM upload_refs r JOIN steps s ON s.id = r.step_id \
         WHERE r.upload_id = u.id AND s.status IN (",
    );
    let mut list = qb.separated(", ");
    for status in LIVE_RUN_STATUSES {
        list.push_bind(status.code());
    }
    qb.push("))");
}

pub(crate) async fn put_upload(s: &SqliteStore, u: NewUpload) -> Result<Upload> {
    let sql = format!(
        "INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
         last_used_at = max(uploads.last_used_at, excluded.last_used_at) \
         RETURNING {UPLOAD_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&u.id)
        .bind(&u.name)
        .bind(int(u.size))
        .bind(to_json(&u.chunks)?)
        .bind(&u.created_by)
        .bind(u.now)
        .bind(u.now)
        .fetch_one(&s.write)
        .await
        .map_err(db)?;
    decode::upload(&row)
}

pub(crate) async fn get_upload(s: &SqliteStore, id: &str) -> Result<Option<Upload>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&s.read)
        .await
        .map_err(db)?;
    row.as_ref().map(decode::upload).transpose()
}

pub(crate) async fn ref_upload(s: &SqliteStore, upload_id: &str, step_id: StepId) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO upload_refs (upload_id, step_id) SELECT u.id, s.id FROM uploads u, steps s \
         WHERE u.id = ? AND s.id = ? ON CONFLICT DO NOTHING",
    )
    .bind(upload_id)
    .bind(step_id)
    .execute(&s.write)
    .await
    .map_err(db)?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    // Nothing inserted: referenced already, or the upload or step is missing.
    let (uploads, steps): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM uploads WHERE id = ?), \
         (SELECT COUNT(*) FROM steps WHERE id = ?)",
    )
    .bind(upload_id)
    .bind(step_id)
    .fetch_one(&s.write)
    .await
    .map_err(db)?;
    match (uploads, steps) {
        (0, _) => Err(Error::NotFound(format!("upload {upload_id}"))),
        (_, 0) => Err(Error::NotFound(format!("step {step_id}"))),
        _ => Ok(()),
    }
}

pub(crate) async fn expired_uploads(s: &SqliteStore, unused_before: i64) -> Result<Vec<String>> {
    let mut qb = QueryBuilder::<Sqlite>::new("SELECT u.id FROM uploads u WHERE u.last_used_at < ");
    qb.push_bind(unused_before).push(" AND");
    push_no_live_ref(&mut qb);
    qb.push(" ORDER BY u.id");
    qb.build_query_scalar().fetch_all(&s.read).await.map_err(db)
}

pub(crate) async fn delete_uploads(s: &SqliteStore, ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Sqlite>::new(
        "DELETE FROM uploads AS u WHERE u.id IN (SELECT value FROM json_each(",
    );
    qb.push_bind(to_json(&ids)?).push(")) AND");
    push_no_live_ref(&mut qb);
    qb.push(" RETURNING id");
    let mut deleted: Vec<String> = qb
        .build_query_scalar()
        .fetch_all(&s.write)
        .await
        .map_err(db)?;
    deleted.sort();
    Ok(deleted)
}
