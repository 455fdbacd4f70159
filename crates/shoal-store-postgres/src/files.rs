//! File distribution: per-file transfer rows (batched inserts, idempotent progress) and
//! content-addressed uploads with their step references.

use crate::PgStore;
use crate::bind::attempt;
use shoal_store::backend::{MergedProgress, merge_file_progress};
use shoal_store::{
    Error, FILE_MODE_DOWNLOAD, FileProgress, FileStatus, FileTaskFilter, FileTaskKey, FileTaskRow,
    LIVE_RUN_STATUSES, NewFileTask, NewUpload, Page, Paged, Result, Upload,
};
use shoal_store_sql::{self as decode, db, int, to_json};
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

pub(crate) async fn insert_file_tasks(s: &PgStore, tasks: &[NewFileTask]) -> Result<()> {
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
    .execute(&s.pool)
    .await
    .map_err(|e| match db(e) {
        Error::Conflict(_) => Error::Conflict("file task exists already".to_string()),
        other => other,
    })?;
    Ok(())
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

pub(crate) async fn apply_file_progress(s: &PgStore, progress: &[FileProgress]) -> Result<()> {
    let merged = merge_file_progress(progress);
    if merged.is_empty() {
        return Ok(());
    }
    let mut tx = s.begin().await?;
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

pub(crate) async fn list_file_tasks(
    s: &PgStore,
    f: &FileTaskFilter,
    page: Page,
) -> Result<Paged<FileTaskRow>> {
    let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM file_tasks f");
    push_file_filter(&mut count, f);
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(&s.pool)
        .await
        .map_err(db)?;

    let mut select = QueryBuilder::<Postgres>::new(
        "SELECT f.step_id, f.attempt, f.mode, f.host_id, f.source_host_id, f.source_path, \
         f.dest_path, COALESCE(h.ip, '') AS ip, COALESCE(h.hostname, '') AS hostname, \
         sh.ip AS source_ip, sh.hostname AS source_hostname, f.size, f.bytes_done, f.speed, \
         f.status, f.error, f.started_at, f.ended_at \
         FROM file_tasks f LEFT JOIN hosts h ON h.id = f.host_id \
         LEFT JOIN hosts sh ON sh.id = f.source_host_id",
    );
    push_file_filter(&mut select, f);
    // Paths in byte order, as SQLite compares text, whatever the database's collation.
    select
        .push(
            " ORDER BY f.mode, f.host_id, COALESCE(f.source_host_id, 0), \
             f.source_path COLLATE \"C\", f.dest_path COLLATE \"C\" LIMIT ",
        )
        .push_bind(i64::from(page.length))
        .push(" OFFSET ")
        .push_bind(int(page.start));
    let rows = select.build().fetch_all(&s.pool).await.map_err(db)?;
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
    s: &PgStore,
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
    .fetch_all(&s.pool)
    .await
    .map_err(db)?;
    rows.iter().map(decode::file_status_count).collect()
}

const UPLOAD_COLUMNS: &str = "id, name, size, chunks, created_by, created_at, last_used_at";

/// `NOT EXISTS` condition: no live step refers to the upload `u`.
fn push_no_live_ref(qb: &mut QueryBuilder<'_, Postgres>) {
    let live: Vec<i32> = LIVE_RUN_STATUSES.iter().map(|s| s.code()).collect();
    qb.push(
        " NOT EXISTS (SELECT 1 FROM upload_refs r JOIN steps s ON s.id = r.step_id \
         WHERE r.upload_id = u.id AND s.status = ANY(",
    )
    .push_bind(live)
    .push("))");
}

pub(crate) async fn put_upload(s: &PgStore, u: NewUpload) -> Result<Upload> {
    let sql = format!(
        "INSERT INTO uploads AS u ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (id) DO UPDATE SET \
         last_used_at = GREATEST(u.last_used_at, excluded.last_used_at) \
         RETURNING {UPLOAD_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&u.id)
        .bind(&u.name)
        .bind(int(u.size))
        .bind(to_json(&u.chunks)?)
        .bind(&u.created_by)
        .bind(u.now)
        .fetch_one(&s.pool)
        .await
        .map_err(db)?;
    decode::upload(&row)
}

pub(crate) async fn get_upload(s: &PgStore, id: &str) -> Result<Option<Upload>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&s.pool)
        .await
        .map_err(db)?;
    row.as_ref().map(decode::upload).transpose()
}

pub(crate) async fn ref_upload(s: &PgStore, upload_id: &str, step_id: StepId) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO upload_refs (upload_id, step_id) SELECT u.id, s.id FROM uploads u, steps s \
         WHERE u.id = $1 AND s.id = $2 ON CONFLICT DO NOTHING",
    )
    .bind(upload_id)
    .bind(step_id)
    .execute(&s.pool)
    .await
    .map_err(db)?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    // Nothing inserted: referenced already, or the upload or step is missing.
    let (uploads, steps): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM uploads WHERE id = $1), \
         (SELECT COUNT(*) FROM steps WHERE id = $2)",
    )
    .bind(upload_id)
    .bind(step_id)
    .fetch_one(&s.pool)
    .await
    .map_err(db)?;
    match (uploads, steps) {
        (0, _) => Err(Error::NotFound(format!("upload {upload_id}"))),
        (_, 0) => Err(Error::NotFound(format!("step {step_id}"))),
        _ => Ok(()),
    }
}

pub(crate) async fn expired_uploads(s: &PgStore, unused_before: i64) -> Result<Vec<String>> {
    let mut qb =
        QueryBuilder::<Postgres>::new("SELECT u.id FROM uploads u WHERE u.last_used_at < ");
    qb.push_bind(unused_before).push(" AND");
    push_no_live_ref(&mut qb);
    qb.push(" ORDER BY u.id COLLATE \"C\"");
    qb.build_query_scalar().fetch_all(&s.pool).await.map_err(db)
}

pub(crate) async fn delete_uploads(s: &PgStore, ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Postgres>::new("DELETE FROM uploads u WHERE u.id = ANY(");
    qb.push_bind(ids.to_vec()).push(") AND");
    push_no_live_ref(&mut qb);
    qb.push(" RETURNING u.id");
    let mut deleted: Vec<String> = qb
        .build_query_scalar()
        .fetch_all(&s.pool)
        .await
        .map_err(db)?;
    deleted.sort();
    Ok(deleted)
}
