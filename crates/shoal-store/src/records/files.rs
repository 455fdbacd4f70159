//! Records of file distribution: per-file transfer rows (bk-job's file logs, mode 0 upload /
//! 1 download) and files uploaded through the API (content-addressed).

use serde::{Deserialize, Serialize};
use shoal_types::{HostId, StepId, UnixMs};

/// `FileTaskKey::mode` of a row on the serving side: `host_id` is the source host and the row
/// records what it uploaded.
pub const FILE_MODE_UPLOAD: u8 = 0;
/// `FileTaskKey::mode` of a row on the receiving side: `host_id` is the target host.
pub const FILE_MODE_DOWNLOAD: u8 = 1;

/// Status of one file transfer, numbered as bk-job's file logs (§2.4.5); serialised as the
/// code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileStatus {
    Waiting,
    Uploading,
    Downloading,
    Success,
    Failed,
}

impl FileStatus {
    pub const ALL: &'static [FileStatus] = &[
        FileStatus::Waiting,
        FileStatus::Uploading,
        FileStatus::Downloading,
        FileStatus::Success,
        FileStatus::Failed,
    ];

    pub fn code(self) -> i32 {
        match self {
            FileStatus::Waiting => 1,
            FileStatus::Uploading => 2,
            FileStatus::Downloading => 3,
            FileStatus::Success => 4,
            FileStatus::Failed => 5,
        }
    }

    pub fn from_code(code: i32) -> Option<FileStatus> {
        match code {
            1 => Some(FileStatus::Waiting),
            2 => Some(FileStatus::Uploading),
            3 => Some(FileStatus::Downloading),
            4 => Some(FileStatus::Success),
            5 => Some(FileStatus::Failed),
            _ => None,
        }
    }

    /// A short English description, as shown in the CLI.
    pub fn text(self) -> &'static str {
        match self {
            FileStatus::Waiting => "waiting",
            FileStatus::Uploading => "uploading",
            FileStatus::Downloading => "downloading",
            FileStatus::Success => "success",
            FileStatus::Failed => "failed",
        }
    }

    /// Success and failure are final: a row in either never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, FileStatus::Success | FileStatus::Failed)
    }
}

impl Serialize for FileStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.code())
    }
}

impl<'de> Deserialize<'de> for FileStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = i32::deserialize(d)?;
        FileStatus::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown FileStatus code {code}")))
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

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

#[cfg(test)]
mod tests {
    // Pins the wire form of file statuses: bk-job's codes, both ways, unknown codes refused.
    use super::FileStatus;

    #[test]
    fn file_status_serialises_as_code() {
        for status in FileStatus::ALL {
            let json = serde_json::to_string(status).expect("serialise");
            assert_eq!(json, status.code().to_string());
            let back: FileStatus = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, *status);
        }
        assert_eq!(FileStatus::Downloading.code(), 3);
        assert!(serde_json::from_str::<FileStatus>("0").is_err());
        assert!(FileStatus::Failed.is_terminal() && !FileStatus::Uploading.is_terminal());
    }
}
