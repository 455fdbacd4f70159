//! Per-host tasks of a step: agent reports, counts, results and logs.

use crate::{
    GroupBy, LogSlice, OpenTask, Page, Paged, Result, ResultGroup, TaskBatch, TaskFilter, TaskRow,
};
use async_trait::async_trait;
use shoal_types::{HostTaskStatus, StepId, TaskKey};

/// Per-host tasks: batches of agent reports, open tasks, counts, result rows and groups, and
/// the logs.
#[async_trait]
pub trait TaskStore: Send + Sync {
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
}
