//! `JobStore`: jobs and steps: creation with batched task rows, history queries, compare-and-set
//! transitions, lease claims, and new attempts.

use crate::SqliteStore;
use crate::bind::rows_per_statement;
use async_trait::async_trait;
use shoal_store::JobStore;
use shoal_store::backend::initial_task_error;
use shoal_store::{
    CreatedJob, Error, Job, JobFilter, JobTransition, NewAttempt, NewJob, Page, Paged, Result,
    Step, StepTransition,
};
use shoal_store_sql::{self as decode, Cols, Listing, db, fetch_page, filter_text, int, to_json};
use shoal_types::{HostId, HostTaskStatus, JobId, RunStatus, StepId, UnixMs};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

const JOB_COLUMNS: &str = "j.id, j.scope_id, j.name, j.job_type, j.launch_mode, j.operator, \
    j.status, j.created_at, j.started_at, j.ended_at, j.host_count";

const STEP_COLUMNS: &str = "id, job_id, ordinal, name, step_type, spec, status, attempt, \
    created_at, started_at, ended_at, owner, lease_until, host_count";

/// Inserts the task rows of one attempt of a step with multi-row statements.
pub(crate) async fn insert_tasks(
    conn: &mut SqliteConnection,
    step_id: StepId,
    attempt: u32,
    tasks: &[(HostId, HostTaskStatus)],
) -> Result<()> {
    for part in tasks.chunks(rows_per_statement(5)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO tasks (step_id, attempt, host_id, status, error) ",
        );
        qb.push_values(part, |mut b, (host_id, status)| {
            b.push_bind(step_id)
                .push_bind(i64::from(attempt))
                .push_bind(*host_id)
                .push_bind(status.code())
                .push_bind(initial_task_error(*status));
        });
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(&self, j: NewJob) -> Result<CreatedJob> {
        let (status, started_at) = if j.start {
            (RunStatus::Running, Some(j.now))
        } else {
            (RunStatus::Blank, None)
        };
        let host_count = j.steps.first().map_or(0, |s| s.tasks.len());
        let mut tx = self.begin().await?;
        let job_id: JobId = sqlx::query_scalar(
            "INSERT INTO jobs (scope_id, name, job_type, launch_mode, operator, status, created_at, \
             started_at, host_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(j.scope_id)
        .bind(&j.name)
        .bind(j.job_type.code())
        .bind(j.launch_mode.code())
        .bind(&j.operator)
        .bind(status.code())
        .bind(j.now)
        .bind(started_at)
        .bind(int(host_count as u64))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;

        let mut step_ids = Vec::with_capacity(j.steps.len());
        for (ordinal, new) in j.steps.iter().enumerate() {
            let started = (new.status == RunStatus::Running).then_some(j.now);
            let step_id: StepId = sqlx::query_scalar(
                "INSERT INTO steps (job_id, ordinal, name, step_type, spec, status, attempt, \
                 created_at, started_at, owner, lease_until, host_count) \
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(job_id)
            .bind(int(ordinal as u64))
            .bind(&new.name)
            .bind(new.step_type.code())
            .bind(to_json(&new.spec)?)
            .bind(new.status.code())
            .bind(j.now)
            .bind(started)
            .bind(new.owner.as_deref())
            .bind(new.lease_until)
            .bind(int(new.tasks.len() as u64))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            insert_tasks(&mut tx, step_id, 0, &new.tasks).await?;
            step_ids.push(step_id);
        }
        tx.commit().await.map_err(db)?;
        Ok(CreatedJob { job_id, step_ids })
    }

    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::job).transpose()
    }

    async fn get_steps(&self, job_id: JobId) -> Result<Vec<Step>> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE job_id = ? ORDER BY ordinal");
        let rows = sqlx::query(&sql)
            .bind(job_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(decode::step).collect()
    }

    async fn get_step(&self, id: StepId) -> Result<Option<Step>> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::step).transpose()
    }

    async fn list_jobs(&self, f: &JobFilter, page: Page) -> Result<Paged<Job>> {
        fetch_page(
            &self.read,
            Listing {
                table: "jobs j",
                joins: "",
                columns: JOB_COLUMNS,
                order_by: "j.id DESC",
            },
            page,
            |qb| push_job_filter(qb, f),
            decode::job,
        )
        .await
    }

    async fn transition_job(&self, t: &JobTransition) -> Result<bool> {
        if t.from.is_empty() {
            return Ok(false);
        }
        let mut qb = QueryBuilder::<Sqlite>::new("UPDATE jobs SET status = ");
        qb.push_bind(t.to.code());
        qb.push(", started_at = COALESCE(started_at, ")
            .push_bind(t.started_at)
            .push(")");
        if let Some(ended_at) = t.ended_at {
            qb.push(", ended_at = ").push_bind(ended_at);
        }
        qb.push(" WHERE id = ").push_bind(t.job_id);
        qb.push(" AND status IN ");
        push_status_list(&mut qb, &t.from);
        let done = qb.build().execute(&self.write).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn transition_step(&self, t: &StepTransition) -> Result<bool> {
        if t.from.is_empty() {
            return Ok(false);
        }
        let mut qb = QueryBuilder::<Sqlite>::new("UPDATE steps SET status = ");
        qb.push_bind(t.to.code());
        qb.push(", started_at = COALESCE(started_at, ")
            .push_bind(t.started_at)
            .push(")");
        if let Some(ended_at) = t.ended_at {
            qb.push(", ended_at = ").push_bind(ended_at);
        }
        if let Some(owner) = &t.owner {
            let (owner, lease_until) = match owner {
                Some((owner, lease_until)) => (Some(owner.clone()), Some(*lease_until)),
                None => (None, None),
            };
            qb.push(", owner = ").push_bind(owner);
            qb.push(", lease_until = ").push_bind(lease_until);
        }
        qb.push(" WHERE id = ").push_bind(t.step_id);
        qb.push(" AND status IN ");
        push_status_list(&mut qb, &t.from);
        let done = qb.build().execute(&self.write).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_steps(
        &self,
        owner: &str,
        now: UnixMs,
        lease_until: UnixMs,
    ) -> Result<Vec<Step>> {
        // Status codes are literals so that the partial index `steps_live` applies.
        let sql = format!(
            "UPDATE steps SET owner = ?1, lease_until = ?3 \
             WHERE status IN ({running}, {stopping}) \
             AND (owner IS NULL OR owner = ?1 OR lease_until IS NULL OR lease_until < ?2) \
             RETURNING {STEP_COLUMNS}",
            running = RunStatus::Running.code(),
            stopping = RunStatus::Stopping.code(),
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now)
            .bind(lease_until)
            .fetch_all(&self.write)
            .await
            .map_err(db)?;
        let mut steps = rows.iter().map(decode::step).collect::<Result<Vec<_>>>()?;
        steps.sort_by_key(|s| s.id);
        Ok(steps)
    }

    async fn renew_leases(&self, owner: &str, lease_until: UnixMs) -> Result<u64> {
        let done = sqlx::query("UPDATE steps SET lease_until = ? WHERE owner = ?")
            .bind(lease_until)
            .bind(owner)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn stalled_jobs(&self, limit: u32) -> Result<Vec<JobId>> {
        let mut q = sqlx::query_scalar::<_, i64>(
            "SELECT j.id FROM jobs j WHERE j.status IN (?, ?, ?, ?) AND NOT EXISTS \
             (SELECT 1 FROM steps s WHERE s.job_id = j.id AND s.status IN (?, ?, ?)) \
             ORDER BY j.id LIMIT ?",
        );
        for status in RunStatus::LIVE {
            q = q.bind(status.code());
        }
        for status in [
            RunStatus::Running,
            RunStatus::Stopping,
            RunStatus::WaitingUser,
        ] {
            q = q.bind(status.code());
        }
        q.bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn start_attempt(&self, a: &NewAttempt) -> Result<()> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE steps SET attempt = attempt + 1, status = ?, started_at = ?, ended_at = NULL, \
             owner = ?, lease_until = ?, host_count = ? WHERE id = ? AND attempt = ? \
             RETURNING job_id, attempt",
        )
        .bind(a.status.code())
        .bind(a.now)
        .bind(&a.owner)
        .bind(a.lease_until)
        .bind(int(a.tasks.len() as u64))
        .bind(a.step_id)
        .bind(i64::from(a.expected_attempt))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            let current: Option<i64> = sqlx::query_scalar("SELECT attempt FROM steps WHERE id = ?")
                .bind(a.step_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            return Err(match current {
                None => Error::NotFound(format!("step {}", a.step_id)),
                Some(current) => Error::Conflict(format!(
                    "step {} is at attempt {current}, not {}",
                    a.step_id, a.expected_attempt
                )),
            });
        };
        let job_id: JobId = row.i64("job_id")?;
        let attempt = row.u32("attempt")?;
        insert_tasks(&mut tx, a.step_id, attempt, &a.tasks).await?;
        sqlx::query(
            "UPDATE jobs SET status = ?, ended_at = NULL, started_at = COALESCE(started_at, ?) \
             WHERE id = ?",
        )
        .bind(a.status.code())
        .bind(a.now)
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}

fn push_status_list(qb: &mut QueryBuilder<'_, Sqlite>, statuses: &[RunStatus]) {
    qb.push("(");
    let mut list = qb.separated(", ");
    for status in statuses {
        list.push_bind(status.code());
    }
    qb.push(")");
}

fn push_job_filter(qb: &mut QueryBuilder<'_, Sqlite>, f: &JobFilter) -> Result<()> {
    qb.push(" WHERE 1 = 1");
    if let Some(scope_id) = f.scope_id {
        qb.push(" AND j.scope_id = ").push_bind(scope_id);
    }
    qb.push(shoal_store_sql::scope_in("j.scope_id", &f.scope_ids));
    if let Some(from) = f.created_from {
        qb.push(" AND j.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        qb.push(" AND j.created_at <= ").push_bind(to);
    }
    if !f.statuses.is_empty() {
        qb.push(" AND j.status IN ");
        push_status_list(qb, &f.statuses);
    }
    if let Some(operator) = filter_text(&f.operator) {
        qb.push(" AND j.operator = ")
            .push_bind(operator.to_string());
    }
    if let Some(name) = filter_text(&f.name) {
        qb.push(" AND instr(lower(j.name), lower(")
            .push_bind(name.to_string())
            .push(")) > 0");
    }
    if let Some(ids) = &f.host_ids {
        qb.push(
            " AND EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.step_id = s.id \
             WHERE s.job_id = j.id AND t.host_id IN (SELECT value FROM json_each(",
        )
        .push_bind(to_json(ids)?)
        .push(")))");
    }
    Ok(())
}
