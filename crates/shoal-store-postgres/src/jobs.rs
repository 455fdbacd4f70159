//! `JobStore`: jobs and steps: creation with batched task rows, history queries, compare-and-set
//! transitions, lease claims (`FOR UPDATE SKIP LOCKED`), and new attempts.

use crate::PgStore;
use crate::bind::attempt;
use async_trait::async_trait;
use shoal_store::JobStore;
use shoal_store::backend::initial_task_error;
use shoal_store::{
    CreatedJob, Error, Job, JobFilter, JobTransition, NewAttempt, NewJob, Page, Paged, Result,
    Step, StepTransition,
};
use shoal_store_sql::{self as decode, Cols, Listing, db, fetch_page, filter_text, int, to_json};
use shoal_types::{HostId, HostTaskStatus, JobId, RunStatus, StepId, UnixMs};
use sqlx::{PgConnection, Postgres, QueryBuilder};

const JOB_COLUMNS: &str = "j.id, j.scope_id, j.name, j.job_type, j.launch_mode, j.operator, \
    j.status, j.created_at, j.started_at, j.ended_at, j.host_count";

const STEP_COLUMNS: &str = "s.id, s.job_id, s.ordinal, s.name, s.step_type, s.spec, s.status, \
    s.attempt, s.created_at, s.started_at, s.ended_at, s.owner, s.lease_until, s.host_count";

/// Inserts the task rows of one attempt of a step in one statement.
pub(crate) async fn insert_tasks(
    conn: &mut PgConnection,
    step_id: StepId,
    attempt_no: u32,
    tasks: &[(HostId, HostTaskStatus)],
) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let hosts: Vec<HostId> = tasks.iter().map(|(h, _)| *h).collect();
    let statuses: Vec<i32> = tasks.iter().map(|(_, s)| s.code()).collect();
    let errors: Vec<Option<&str>> = tasks.iter().map(|(_, s)| initial_task_error(*s)).collect();
    sqlx::query(
        "INSERT INTO tasks (step_id, attempt, host_id, status, error) \
         SELECT $1, $2, u.host_id, u.status, u.error \
         FROM UNNEST($3::bigint[], $4::int[], $5::text[]) AS u(host_id, status, error)",
    )
    .bind(step_id)
    .bind(attempt(attempt_no))
    .bind(hosts)
    .bind(statuses)
    .bind(errors)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl JobStore for PgStore {
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
             started_at, host_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
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
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(job_id)
            .bind(i32::try_from(ordinal).unwrap_or(i32::MAX))
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
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::job).transpose()
    }

    async fn get_steps(&self, job_id: JobId) -> Result<Vec<Step>> {
        let sql =
            format!("SELECT {STEP_COLUMNS} FROM steps s WHERE s.job_id = $1 ORDER BY s.ordinal");
        let rows = sqlx::query(&sql)
            .bind(job_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(decode::step).collect()
    }

    async fn get_step(&self, id: StepId) -> Result<Option<Step>> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps s WHERE s.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(decode::step).transpose()
    }

    async fn list_jobs(&self, f: &JobFilter, page: Page) -> Result<Paged<Job>> {
        fetch_page(
            &self.pool,
            Listing {
                table: "jobs j",
                joins: "",
                columns: JOB_COLUMNS,
                order_by: "j.id DESC",
            },
            page,
            |qb| {
                push_job_filter(qb, f);
                Ok(())
            },
            decode::job,
        )
        .await
    }

    async fn transition_job(&self, t: &JobTransition) -> Result<bool> {
        if t.from.is_empty() {
            return Ok(false);
        }
        let mut qb = QueryBuilder::<Postgres>::new("UPDATE jobs SET status = ");
        qb.push_bind(t.to.code());
        qb.push(", started_at = COALESCE(started_at, ")
            .push_bind(t.started_at)
            .push("::bigint)");
        if let Some(ended_at) = t.ended_at {
            qb.push(", ended_at = ").push_bind(ended_at);
        }
        qb.push(" WHERE id = ").push_bind(t.job_id);
        qb.push(" AND status = ANY(")
            .push_bind(codes(&t.from))
            .push(")");
        let done = qb.build().execute(&self.pool).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn transition_step(&self, t: &StepTransition) -> Result<bool> {
        if t.from.is_empty() {
            return Ok(false);
        }
        let mut qb = QueryBuilder::<Postgres>::new("UPDATE steps SET status = ");
        qb.push_bind(t.to.code());
        qb.push(", started_at = COALESCE(started_at, ")
            .push_bind(t.started_at)
            .push("::bigint)");
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
        qb.push(" AND status = ANY(")
            .push_bind(codes(&t.from))
            .push(")");
        let done = qb.build().execute(&self.pool).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_steps(
        &self,
        owner: &str,
        now: UnixMs,
        lease_until: UnixMs,
    ) -> Result<Vec<Step>> {
        let sql = format!("{CLAIM_SQL}{STEP_COLUMNS}");
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut steps = rows.iter().map(decode::step).collect::<Result<Vec<_>>>()?;
        steps.sort_by_key(|s| s.id);
        Ok(steps)
    }

    async fn renew_leases(&self, owner: &str, lease_until: UnixMs) -> Result<u64> {
        let done = sqlx::query("UPDATE steps SET lease_until = $1 WHERE owner = $2")
            .bind(lease_until)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn stalled_jobs(&self, limit: u32) -> Result<Vec<JobId>> {
        let mut q = sqlx::query_scalar::<_, i64>(
            "SELECT j.id FROM jobs j WHERE j.status IN ($1, $2, $3, $4) AND NOT EXISTS \
             (SELECT 1 FROM steps s WHERE s.job_id = j.id AND s.status IN ($5, $6, $7)) \
             ORDER BY j.id LIMIT $8",
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
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn start_attempt(&self, a: &NewAttempt) -> Result<()> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE steps SET attempt = attempt + 1, status = $1, started_at = $2, ended_at = NULL, \
             owner = $3, lease_until = $4, host_count = $5 WHERE id = $6 AND attempt = $7 \
             RETURNING job_id, attempt",
        )
        .bind(a.status.code())
        .bind(a.now)
        .bind(&a.owner)
        .bind(a.lease_until)
        .bind(int(a.tasks.len() as u64))
        .bind(a.step_id)
        .bind(attempt(a.expected_attempt))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            let current: Option<i32> =
                sqlx::query_scalar("SELECT attempt FROM steps WHERE id = $1")
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
        let new_attempt = row.u32("attempt")?;
        insert_tasks(&mut tx, a.step_id, new_attempt, &a.tasks).await?;
        sqlx::query(
            "UPDATE jobs SET status = $1, ended_at = NULL, started_at = COALESCE(started_at, $2) \
             WHERE id = $3",
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

fn codes(statuses: &[RunStatus]) -> Vec<i32> {
    statuses.iter().map(|s| s.code()).collect()
}

fn push_job_filter(qb: &mut QueryBuilder<'_, Postgres>, f: &JobFilter) {
    qb.push(" WHERE TRUE");
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
        qb.push(" AND j.status = ANY(")
            .push_bind(codes(&f.statuses))
            .push(")");
    }
    if let Some(operator) = filter_text(&f.operator) {
        qb.push(" AND j.operator = ")
            .push_bind(operator.to_string());
    }
    if let Some(name) = filter_text(&f.name) {
        qb.push(" AND strpos(lower(j.name), lower(")
            .push_bind(name.to_string())
            .push(")) > 0");
    }
    if let Some(ids) = &f.host_ids {
        qb.push(
            " AND EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.step_id = s.id \
             WHERE s.job_id = j.id AND t.host_id = ANY(",
        )
        .push_bind(ids.clone())
        .push("))");
    }
}

/// The claim: one statement that picks free running (2) / stopping (10) steps, skipping rows
/// another server is claiming right now, and takes their lease. The status codes are literals
/// so that the partial index `steps_live` applies.
const CLAIM_SQL: &str = "WITH free AS ( \
        SELECT id FROM steps \
        WHERE status IN (2, 10) \
        AND (owner IS NULL OR owner = $1 OR lease_until IS NULL OR lease_until < $2) \
        ORDER BY id FOR UPDATE SKIP LOCKED) \
    UPDATE steps s SET owner = $1, lease_until = $3 FROM free WHERE s.id = free.id \
    RETURNING ";

#[cfg(test)]
mod tests {
    // Pins the claim query: one statement, skipping locked rows, over the live statuses.
    use super::CLAIM_SQL;
    use shoal_types::RunStatus;

    #[test]
    fn claim_is_one_skip_locked_statement_over_live_steps() {
        assert!(CLAIM_SQL.contains("FOR UPDATE SKIP LOCKED"));
        assert!(!CLAIM_SQL.contains(';'));
        let live = format!(
            "status IN ({}, {})",
            RunStatus::Running.code(),
            RunStatus::Stopping.code()
        );
        assert!(CLAIM_SQL.contains(&live), "{CLAIM_SQL}");
    }
}
