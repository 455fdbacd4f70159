//! `UploadStore`: content-addressed uploads and the steps that refer to them.

use crate::SqliteStore;
use async_trait::async_trait;
use shoal_store::UploadStore;
use shoal_store::{Error, LIVE_RUN_STATUSES, NewUpload, Result, Upload};
use shoal_store_sql::{self as decode, db, int, to_json};
use shoal_types::StepId;
use sqlx::{QueryBuilder, Sqlite};

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

#[async_trait]
impl UploadStore for SqliteStore {
    async fn put_upload(&self, u: NewUpload) -> Result<Upload> {
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
            .fetch_one(&self.write)
            .await
            .map_err(db)?;
        decode::upload(&row)
    }

    async fn get_upload(&self, id: &str) -> Result<Option<Upload>> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::upload).transpose()
    }

    async fn ref_upload(&self, upload_id: &str, step_id: StepId) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO upload_refs (upload_id, step_id) SELECT u.id, s.id FROM uploads u, steps s \
             WHERE u.id = ? AND s.id = ? ON CONFLICT DO NOTHING",
        )
        .bind(upload_id)
        .bind(step_id)
        .execute(&self.write)
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
        .fetch_one(&self.write)
        .await
        .map_err(db)?;
        match (uploads, steps) {
            (0, _) => Err(Error::NotFound(format!("upload {upload_id}"))),
            (_, 0) => Err(Error::NotFound(format!("step {step_id}"))),
            _ => Ok(()),
        }
    }

    async fn expired_uploads(&self, unused_before: i64) -> Result<Vec<String>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT u.id FROM uploads u WHERE u.last_used_at < ");
        qb.push_bind(unused_before).push(" AND");
        push_no_live_ref(&mut qb);
        qb.push(" ORDER BY u.id");
        qb.build_query_scalar()
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn delete_uploads(&self, ids: &[String]) -> Result<Vec<String>> {
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
            .fetch_all(&self.write)
            .await
            .map_err(db)?;
        deleted.sort();
        Ok(deleted)
    }
}
