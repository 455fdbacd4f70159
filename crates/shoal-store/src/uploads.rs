//! Uploaded files kept for distribution, and which steps use them.

use crate::{NewUpload, Result, Upload};
use async_trait::async_trait;
use shoal_types::{StepId, UnixMs};

/// Uploads, the steps that refer to them, and their expiry.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Stores an upload, idempotently on its id: the same content again returns the stored
    /// row with `last_used_at` raised to `now` (never lowered).
    async fn put_upload(&self, upload: NewUpload) -> Result<Upload>;
    async fn get_upload(&self, id: &str) -> Result<Option<Upload>>;
    /// Records that a step uses an upload (idempotent). `NotFound` if either is missing.
    async fn ref_upload(&self, upload_id: &str, step_id: StepId) -> Result<()>;
    /// Ids of uploads last used before `unused_before` that no live step (see
    /// [`LIVE_RUN_STATUSES`](crate::LIVE_RUN_STATUSES)) refers to, in id order.
    async fn expired_uploads(&self, unused_before: UnixMs) -> Result<Vec<String>>;
    /// Deletes uploads (and their step references), except those a live step refers to.
    /// Returns the ids deleted, in id order.
    async fn delete_uploads(&self, ids: &[String]) -> Result<Vec<String>>;
}
