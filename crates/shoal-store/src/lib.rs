//! Storage for Shoal: one trait per domain ([`AccessStore`] for scopes and tokens, [`UserStore`]
//! for users, role bindings and sessions, [`AuditStore`] for the audit trail,
//! [`HostStore`] for hosts, agents and groups, [`JobStore`] for jobs and steps, [`TaskStore`] for
//! per-host tasks and logs, [`FileStore`] for file transfer rows, [`UploadStore`] for uploads),
//! the umbrella [`Store`] the server holds as `Arc<dyn Store>`, the records, [`Error`], and (with
//! the `conformance` feature) the conformance suite that every backend runs against itself.
//!
//! Backends live in their own crates (`shoal-store-sqlite`, `shoal-store-postgres`) and only the
//! server picks one. This crate knows nothing about SQL dialects, the network or agents.
//!
//! Rules every backend keeps:
//! - Writes that touch many hosts are batched (multi-row statements inside one transaction);
//!   no method costs one round trip per host.
//! - [`TaskStore::apply_task_batch`] is idempotent: applying the same batch twice changes nothing,
//!   a log chunk that overlaps stored bytes only adds the bytes past the stored end, and a task
//!   that is already terminal keeps its first result.
//! - Logs are append-only chunks keyed by (step, attempt, host, offset), never a row per line.
//! - [`FileStore::apply_file_progress`] is idempotent and monotonic: bytes done never decrease and a
//!   file transfer that is terminal never changes again.

mod access;
pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod files;
mod hosts;
mod jobs;
mod records;
mod tasks;
mod uploads;
mod users;

pub use access::AccessStore;
pub use files::FileStore;
pub use hosts::HostStore;
pub use jobs::JobStore;
pub use records::*;
pub use tasks::TaskStore;
pub use uploads::UploadStore;
pub use users::{AuditStore, UserStore};

use shoal_types::RunStatus;

/// The storage traits, for `use shoal_store::prelude::*` wherever the store is called (a
/// method of a domain trait needs its trait in scope).
pub mod prelude {
    pub use crate::{
        AccessStore, AuditStore, FileStore, HostStore, JobStore, Store, TaskStore, UploadStore,
        UserStore,
    };
}

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

/// The whole store: every domain trait, and the backend's name. The server holds an
/// `Arc<dyn Store>`; callers bring the domain traits into scope with
/// `use shoal_store::prelude::*`.
pub trait Store:
    AccessStore
    + UserStore
    + AuditStore
    + HostStore
    + JobStore
    + TaskStore
    + FileStore
    + UploadStore
    + 'static
{
    /// Which backend this is ("sqlite" or "postgres"), for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// The statuses in which a job or step is still going.
pub const LIVE_RUN_STATUSES: [RunStatus; 4] = RunStatus::LIVE;
