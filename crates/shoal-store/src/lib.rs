//! Storage for Shoal: the [`Store`] trait, its records, [`Error`], and the conformance suite
//! ([`conformance`]) that every backend runs against itself.
//!
//! Backends live in their own crates (`shoal-store-sqlite`, `shoal-store-postgres`) and only the
//! server picks one. This crate knows nothing about SQL dialects, the network or agents.
//!
//! Rules every backend keeps:
//! - Writes that touch many hosts are batched (multi-row statements inside one transaction);
//!   no method costs one round trip per host.
//! - [`Store::apply_task_batch`] is idempotent: applying the same batch twice changes nothing,
//!   a log chunk that overlaps stored bytes only adds the bytes past the stored end, and a task
//!   that is already terminal keeps its first result.
//! - Logs are append-only chunks keyed by (step, attempt, host, offset), never a row per line.
//! - [`Store::apply_file_progress`] is idempotent and monotonic: bytes done never decrease and a
//!   file transfer that is terminal never changes again.

pub mod backend;
pub mod conformance;
mod records;

pub use records::*;

use async_trait::async_trait;
use shoal_types::{
    AgentStatus, HostFacts, HostId, HostTaskStatus, JobId, Labels, RunStatus, ScopeId, StepId,
    TaskKey, UnixMs,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write named a record (scope, host, step) that does not exist.
    #[error("missing reference: {0}")]
    MissingReference(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is ("sqlite" or "postgres"), for logs and metrics.
    fn backend(&self) -> &'static str;

    // ---- scopes -------------------------------------------------------------------------
    async fn list_scopes(&self) -> Result<Vec<Scope>>;
    async fn create_scope(&self, name: &str, now: UnixMs) -> Result<Scope>;

    // ---- API and enrollment tokens ------------------------------------------------------
    /// Stores a token. Only the hash of its secret is kept.
    async fn create_token(&self, token: NewToken) -> Result<TokenRecord>;
    /// A token by the hash of its secret, whether or not it is revoked.
    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked; `false` if there is no such token.
    async fn revoke_token(&self, id: i64, now: UnixMs) -> Result<bool>;

    // ---- hosts and their agents ---------------------------------------------------------
    /// Creates the host an enrolling agent stands for. `agent_id` is unique.
    async fn create_host(&self, host: NewHost) -> Result<Host>;
    /// The credentials of an agent, for authenticating its `Hello`.
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>>;
    /// Records a (re)connection: bumps and returns the host's generation, stores facts and
    /// config labels, marks the host online and sets `last_seen`.
    async fn host_connected(
        &self,
        host_id: HostId,
        facts: &HostFacts,
        agent_labels: &Labels,
        now: UnixMs,
    ) -> Result<i64>;
    /// Sets agent status for many hosts at once. Where `generation` is given, only hosts still
    /// at that generation change (a stale session must not mark a fresh one offline).
    async fn set_agent_status(&self, changes: &[AgentStatusChange], now: UnixMs) -> Result<()>;
    /// Marks every host offline (server start: no agent is connected yet).
    async fn mark_all_offline(&self, now: UnixMs) -> Result<()>;
    async fn revoke_host(&self, host_id: HostId, now: UnixMs) -> Result<bool>;
    async fn get_host(&self, host_id: HostId) -> Result<Option<Host>>;
    async fn hosts_by_ids(&self, ids: &[HostId]) -> Result<Vec<Host>>;
    /// Hosts whose any IP equals `ip` exactly.
    async fn hosts_by_ip(&self, scope_id: Option<ScopeId>, ip: &str) -> Result<Vec<Host>>;
    /// Every host of a scope with its labels, for resolving selectors (id, labels, status).
    async fn host_labels(&self, scope_id: ScopeId) -> Result<Vec<HostLabelRow>>;
    async fn list_hosts(&self, filter: &HostFilter, page: Page) -> Result<Paged<Host>>;
    async fn host_status_counts(
        &self,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<(AgentStatus, u64)>>;
    /// Replaces the user-set labels of a host; `false` if there is no such host.
    async fn set_host_labels(&self, host_id: HostId, labels: &Labels, now: UnixMs) -> Result<bool>;

    // ---- dynamic groups -----------------------------------------------------------------
    async fn create_group(&self, group: NewGroup) -> Result<Group>;
    async fn list_groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>>;
    async fn get_group(&self, id: i64) -> Result<Option<Group>>;
    async fn update_group(&self, id: i64, name: &str, selector: &str, now: UnixMs) -> Result<bool>;
    async fn delete_group(&self, id: i64) -> Result<bool>;

    // ---- jobs, steps, tasks -------------------------------------------------------------
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

    /// Applies agent reports in one transaction: appends log chunks (idempotently: only bytes
    /// past the stored end are kept), then applies task updates. An update whose task is already
    /// terminal is ignored; `Started` moves waiting to running only.
    async fn apply_task_batch(&self, batch: &TaskBatch) -> Result<()>;
    /// Non-terminal tasks of the steps given, for recovery and dispatch.
    async fn open_tasks(&self, step_ids: &[StepId]) -> Result<Vec<OpenTask>>;
    /// Counts of tasks by status for one attempt of a step.
    async fn task_counts(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Vec<(HostTaskStatus, u64)>>;
    /// Per-host results for one attempt of a step, with the host's address, filtered and paged.
    async fn list_tasks(&self, filter: &TaskFilter, page: Page) -> Result<Paged<TaskRow>>;
    /// Result groups of one attempt: tasks grouped by (status, exit code, tag), and with
    /// [`GroupBy::Output`] by digest too.
    async fn result_groups(
        &self,
        step_id: StepId,
        attempt: u32,
        by: GroupBy,
    ) -> Result<Vec<ResultGroup>>;
    /// Bytes of a task's log from `offset`, at most `limit`.
    async fn read_log(&self, key: TaskKey, offset: u64, limit: u64) -> Result<LogSlice>;
    /// Starts a new attempt of a step: bumps the step's attempt, inserts the task rows given
    /// (batched) and sets the step (and its job) running. Fails with `Conflict` if the step's
    /// current attempt is not `expected_attempt`.
    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()>;

    // ---- file transfers (bk-job file logs) ----------------------------------------------
    /// Inserts per-file transfer rows (batched, one transaction). A key that exists already,
    /// or appears twice in `tasks`, is a `Conflict` and nothing is inserted.
    async fn insert_file_tasks(&self, tasks: &[NewFileTask]) -> Result<()>;
    /// Applies progress reports in one transaction, idempotently: `bytes_done` never
    /// decreases, a terminal row (success or failed) never changes again (within a batch the
    /// first terminal report of a row wins), and reports on unknown rows are ignored.
    async fn apply_file_progress(&self, progress: &[FileProgress]) -> Result<()>;
    /// File transfer rows of one attempt, with host addresses, filtered and paged; ordered by
    /// mode, host, source host (none first), source path and destination path.
    async fn list_file_tasks(
        &self,
        filter: &FileTaskFilter,
        page: Page,
    ) -> Result<Paged<FileTaskRow>>;
    /// Counts of download-side rows by status for one attempt of a step.
    async fn file_task_counts(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Vec<(FileStatus, u64)>>;

    // ---- uploads ------------------------------------------------------------------------
    /// Stores an upload, idempotently on its id: the same content again returns the stored
    /// row with `last_used_at` raised to `now` (never lowered).
    async fn put_upload(&self, upload: NewUpload) -> Result<Upload>;
    async fn get_upload(&self, id: &str) -> Result<Option<Upload>>;
    /// Records that a step uses an upload (idempotent). `NotFound` if either is missing.
    async fn ref_upload(&self, upload_id: &str, step_id: StepId) -> Result<()>;
    /// Ids of uploads last used before `unused_before` that no live step (see
    /// [`LIVE_RUN_STATUSES`]) refers to, in id order.
    async fn expired_uploads(&self, unused_before: UnixMs) -> Result<Vec<String>>;
    /// Deletes uploads (and their step references), except those a live step refers to.
    /// Returns the ids deleted, in id order.
    async fn delete_uploads(&self, ids: &[String]) -> Result<Vec<String>>;
}

/// The statuses in which a job or step is still going.
pub const LIVE_RUN_STATUSES: [RunStatus; 4] = RunStatus::LIVE;
