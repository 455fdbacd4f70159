//! Records of file distribution: per-file transfer rows (bk-job's file logs, mode 0 upload /
//! 1 download) and files uploaded through the API (content-addressed).

use serde::{Deserialize, Serialize};
use shoal_types::{HostId, StepId, UnixMs};

pub use shoal_types::FileStatus;
pub use shoal_types::files::{FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD};

/// What identifies one file transfer row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileTaskKey {
    pub step_id: StepId,
    pub attempt: u32,
    /// [`FILE_MODE_UPLOAD`] or [`FILE_MODE_DOWNLOAD`].
    pub mode: u8,
    /// The source host for upload rows, the target host for download rows.
    pub host_id: HostId,
    /// The host the file comes from; `None` for uploaded and inline sources.
    pub source_host_id: Option<HostId>,
    pub source_path: String,
    pub dest_path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFileTask {
    pub key: FileTaskKey,
    /// Bytes of the file.
    pub size: u64,
    /// Normally `Waiting`; `Failed` (with `error`) for a file known to fail already.
    pub status: FileStatus,
    pub error: Option<String>,
}

/// A progress report (or final status) of one file transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProgress {
    pub key: FileTaskKey,
    pub status: FileStatus,
    pub bytes_done: u64,
    /// Bytes per second.
    pub speed: u64,
    pub error: Option<String>,
    /// When the report was made: the start time of a row leaving `Waiting`, the end time of a
    /// terminal report.
    pub at: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTaskFilter {
    pub step_id: StepId,
    pub attempt: u32,
    /// Only upload (0) or download (1) rows.
    pub mode: Option<u8>,
    pub host_id: Option<HostId>,
    pub statuses: Vec<FileStatus>,
}

/// A file transfer row with the addresses of its host and source host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTaskRow {
    #[serde(flatten)]
    pub key: FileTaskKey,
    /// The host's preferred address, "" if the host is unknown.
    pub ip: String,
    pub hostname: String,
    /// The source host's preferred address and name; `None` without a (known) source host.
    pub source_ip: Option<String>,
    pub source_hostname: Option<String>,
    pub size: u64,
    pub bytes_done: u64,
    /// Bytes per second, as last reported.
    pub speed: u64,
    pub status: FileStatus,
    pub error: Option<String>,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<UnixMs>,
}

/// A file uploaded through the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpload {
    /// Hex BLAKE3 of the whole content.
    pub id: String,
    pub name: String,
    pub size: u64,
    /// Hex BLAKE3 of each chunk, in order.
    pub chunks: Vec<String>,
    pub created_by: String,
    pub now: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Hex BLAKE3 of the whole content.
    pub id: String,
    /// The name it was first uploaded under.
    pub name: String,
    pub size: u64,
    pub chunks: Vec<String>,
    pub created_by: String,
    pub created_at: UnixMs,
    /// Last upload of the same content (uploads expire some time after this when no live
    /// step refers to them).
    pub last_used_at: UnixMs,
}
