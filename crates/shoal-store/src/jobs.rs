//! Jobs and their steps: creation, status transitions, leases and attempts.

use crate::{
    CreatedJob, Job, JobFilter, JobTransition, NewAttempt, NewJob, Page, Paged, Result, Step,
    StepTransition,
};
use async_trait::async_trait;
use shoal_types::{JobId, StepId, UnixMs};

/// Jobs and steps: creation (with their task rows), compare-and-set transitions, step leases
/// and new attempts.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates a job, its steps and, for each step, one task row per host at attempt 0, in one
    /// transaction with batched inserts. Returns the ids in step order.
    async fn create_job(&self, job: NewJob) -> Result<CreatedJob>;
    async fn get_job(&self, id: JobId) -> Result<Option<Job>>;
    async fn get_steps(&self, job_id: JobId) -> Result<Vec<Step>>;
    async fn get_step(&self, id: StepId) -> Result<Option<Step>>;
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>>;
    /// Compare-and-set of a job's status; `false` if the current status is not in `from`.
    async fn transition_job(&self, t: &JobTransition) -> Result<bool>;
    /// Compare-and-set of a step's status; `false` if the current status is not in `from`.
    async fn transition_step(&self, t: &StepTransition) -> Result<bool>;
    /// Steps that are running (or stopping) and whose lease is free to take: owned by `owner`
    /// already, or with a lease that ended before `now`. Claims them for `owner` until
    /// `lease_until` in the same statement and returns them.
    async fn claim_steps(&self, owner: &str, now: UnixMs, lease_until: UnixMs)
    -> Result<Vec<Step>>;
    /// Extends the lease of every step `owner` holds.
    async fn renew_leases(&self, owner: &str, lease_until: UnixMs) -> Result<u64>;
    /// Live jobs (see [`crate::LIVE_RUN_STATUSES`]) none of whose steps is running, stopping
    /// or waiting for a user, oldest first, at most `limit`: jobs whose next move was lost
    /// between two transitions.
    async fn stalled_jobs(&self, limit: u32) -> Result<Vec<JobId>>;

    /// Starts a new attempt of a step: bumps the step's attempt, inserts the task rows given
    /// (batched) and sets the step (and its job) running. Fails with `Conflict` if the step's
    /// current attempt is not `expected_attempt`.
    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()>;
}
