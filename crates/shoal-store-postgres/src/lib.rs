//! The PostgreSQL backend of `shoal-store`: [`PgStore`], with its schema in `migrations/`
//! (embedded, applied at connect; several servers may share one database).
//!
//! Id lists are bound as arrays (`= ANY($1)`), batches as parallel arrays expanded with
//! `UNNEST`, so a write costs a handful of round trips whatever its size. Step claims are one
//! `FOR UPDATE SKIP LOCKED` statement with a lease; task batches lock their rows in key order
//! first, so concurrent batches cannot deadlock.
//!
//! This crate knows SQL and PostgreSQL, nothing about the network, agents or the engine.

mod admin;
mod bind;
mod files;
mod hosts;
mod jobs;
mod tasks;

use async_trait::async_trait;
use shoal_store::{
    AgentAuth, AgentStatusChange, CreatedJob, Error, FileProgress, FileStatus, FileTaskFilter,
    FileTaskRow, Group, GroupBy, Host, HostFilter, HostLabelRow, Job, JobFilter, JobTransition,
    LogSlice, NewAttempt, NewFileTask, NewGroup, NewHost, NewJob, NewToken, NewUpload, OpenTask,
    Page, Paged, Result, ResultGroup, Scope, Step, StepTransition, Store, TaskBatch, TaskFilter,
    TaskRow, TokenRecord, Upload,
};
use shoal_types::{
    AgentStatus, HostFacts, HostId, HostTaskStatus, JobId, Labels, ScopeId, StepId, TaskKey, UnixMs,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per store (per server process).
const MAX_CONNECTIONS: u32 = 16;

/// Shoal's store on a PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        // The URL may hold a password: errors name the host and database, never the URL.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| Error::Database("invalid postgres url".to_string()))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| Error::Database(format!("connecting to postgres at {target}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Database(format!("applying postgres migrations: {e}")))?;
        Ok(PgStore { pool })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(shoal_store_sql::db)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn list_scopes(&self) -> Result<Vec<Scope>> {
        admin::list_scopes(self).await
    }
    async fn create_scope(&self, name: &str, now: UnixMs) -> Result<Scope> {
        admin::create_scope(self, name, now).await
    }

    async fn create_token(&self, token: NewToken) -> Result<TokenRecord> {
        admin::create_token(self, token).await
    }
    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        admin::find_token(self, secret_hash).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        admin::list_tokens(self).await
    }
    async fn revoke_token(&self, id: i64, now: UnixMs) -> Result<bool> {
        admin::revoke_token(self, id, now).await
    }

    async fn create_host(&self, host: NewHost) -> Result<Host> {
        hosts::create_host(self, host).await
    }
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>> {
        hosts::agent_auth(self, agent_id).await
    }
    async fn host_connected(
        &self,
        host_id: HostId,
        facts: &HostFacts,
        agent_labels: &Labels,
        now: UnixMs,
    ) -> Result<i64> {
        hosts::host_connected(self, host_id, facts, agent_labels, now).await
    }
    async fn set_agent_status(&self, changes: &[AgentStatusChange], now: UnixMs) -> Result<()> {
        hosts::set_agent_status(self, changes, now).await
    }
    async fn mark_all_offline(&self, now: UnixMs) -> Result<()> {
        hosts::mark_all_offline(self, now).await
    }
    async fn revoke_host(&self, host_id: HostId, now: UnixMs) -> Result<bool> {
        hosts::revoke_host(self, host_id, now).await
    }
    async fn get_host(&self, host_id: HostId) -> Result<Option<Host>> {
        hosts::get_host(self, host_id).await
    }
    async fn hosts_by_ids(&self, ids: &[HostId]) -> Result<Vec<Host>> {
        hosts::hosts_by_ids(self, ids).await
    }
    async fn hosts_by_ip(&self, scope_id: Option<ScopeId>, ip: &str) -> Result<Vec<Host>> {
        hosts::hosts_by_ip(self, scope_id, ip).await
    }
    async fn host_labels(&self, scope_id: ScopeId) -> Result<Vec<HostLabelRow>> {
        hosts::host_labels(self, scope_id).await
    }
    async fn list_hosts(&self, filter: &HostFilter, page: Page) -> Result<Paged<Host>> {
        hosts::list_hosts(self, filter, page).await
    }
    async fn host_status_counts(
        &self,
        scope_id: Option<ScopeId>,
    ) -> Result<Vec<(AgentStatus, u64)>> {
        hosts::host_status_counts(self, scope_id).await
    }
    async fn set_host_labels(&self, host_id: HostId, labels: &Labels, now: UnixMs) -> Result<bool> {
        hosts::set_host_labels(self, host_id, labels, now).await
    }

    async fn create_group(&self, group: NewGroup) -> Result<Group> {
        admin::create_group(self, group).await
    }
    async fn list_groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>> {
        admin::list_groups(self, scope_id).await
    }
    async fn get_group(&self, id: i64) -> Result<Option<Group>> {
        admin::get_group(self, id).await
    }
    async fn update_group(&self, id: i64, name: &str, selector: &str, now: UnixMs) -> Result<bool> {
        admin::update_group(self, id, name, selector, now).await
    }
    async fn delete_group(&self, id: i64) -> Result<bool> {
        admin::delete_group(self, id).await
    }

    async fn create_job(&self, job: NewJob) -> Result<CreatedJob> {
        jobs::create_job(self, job).await
    }
    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        jobs::get_job(self, id).await
    }
    async fn get_steps(&self, job_id: JobId) -> Result<Vec<Step>> {
        jobs::get_steps(self, job_id).await
    }
    async fn get_step(&self, id: StepId) -> Result<Option<Step>> {
        jobs::get_step(self, id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>> {
        jobs::list_jobs(self, filter, page).await
    }
    async fn transition_job(&self, t: &JobTransition) -> Result<bool> {
        jobs::transition_job(self, t).await
    }
    async fn transition_step(&self, t: &StepTransition) -> Result<bool> {
        jobs::transition_step(self, t).await
    }
    async fn claim_steps(
        &self,
        owner: &str,
        now: UnixMs,
        lease_until: UnixMs,
    ) -> Result<Vec<Step>> {
        jobs::claim_steps(self, owner, now, lease_until).await
    }
    async fn renew_leases(&self, owner: &str, lease_until: UnixMs) -> Result<u64> {
        jobs::renew_leases(self, owner, lease_until).await
    }
    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        jobs::start_attempt(self, attempt).await
    }

    async fn apply_task_batch(&self, batch: &TaskBatch) -> Result<()> {
        tasks::apply_task_batch(self, batch).await
    }
    async fn open_tasks(&self, step_ids: &[StepId]) -> Result<Vec<OpenTask>> {
        tasks::open_tasks(self, step_ids).await
    }
    async fn task_counts(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Vec<(HostTaskStatus, u64)>> {
        tasks::task_counts(self, step_id, attempt).await
    }
    async fn list_tasks(&self, filter: &TaskFilter, page: Page) -> Result<Paged<TaskRow>> {
        tasks::list_tasks(self, filter, page).await
    }
    async fn result_groups(
        &self,
        step_id: StepId,
        attempt: u32,
        by: GroupBy,
    ) -> Result<Vec<ResultGroup>> {
        tasks::result_groups(self, step_id, attempt, by).await
    }
    async fn read_log(&self, key: TaskKey, offset: u64, limit: u64) -> Result<LogSlice> {
        tasks::read_log(self, key, offset, limit).await
    }

    async fn insert_file_tasks(&self, tasks: &[NewFileTask]) -> Result<()> {
        files::insert_file_tasks(self, tasks).await
    }
    async fn apply_file_progress(&self, progress: &[FileProgress]) -> Result<()> {
        files::apply_file_progress(self, progress).await
    }
    async fn list_file_tasks(
        &self,
        filter: &FileTaskFilter,
        page: Page,
    ) -> Result<Paged<FileTaskRow>> {
        files::list_file_tasks(self, filter, page).await
    }
    async fn file_task_counts(
        &self,
        step_id: StepId,
        attempt: u32,
    ) -> Result<Vec<(FileStatus, u64)>> {
        files::file_task_counts(self, step_id, attempt).await
    }

    async fn put_upload(&self, upload: NewUpload) -> Result<Upload> {
        files::put_upload(self, upload).await
    }
    async fn get_upload(&self, id: &str) -> Result<Option<Upload>> {
        files::get_upload(self, id).await
    }
    async fn ref_upload(&self, upload_id: &str, step_id: StepId) -> Result<()> {
        files::ref_upload(self, upload_id, step_id).await
    }
    async fn expired_uploads(&self, unused_before: UnixMs) -> Result<Vec<String>> {
        files::expired_uploads(self, unused_before).await
    }
    async fn delete_uploads(&self, ids: &[String]) -> Result<Vec<String>> {
        files::delete_uploads(self, ids).await
    }
}
