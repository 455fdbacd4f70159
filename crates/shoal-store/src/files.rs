//! Per-file transfer rows of file distribution steps (bk-job file logs).

use crate::{
    FileProgress, FileStatus, FileTaskFilter, FileTaskRow, NewFileTask, Page, Paged, Result,
};
use async_trait::async_trait;
use shoal_types::StepId;

/// Per-file transfer rows of file distribution steps.
#[async_trait]
pub trait FileStore: Send + Sync {
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
}
