//! Request and response bodies of the REST API (`/api/v1`), shared by the server, the typed
//! client and the CLI. Every body the API sends is defined here, never a storage record: the
//! server converts records at its API edge, and shows only what the API means to show (no
//! environment values, lease owners or stored specs as they are; see [`views`]).
//!
//! With the `openapi` feature (the server's), every type also derives `utoipa::ToSchema`, from
//! which the server's OpenAPI description is generated.

#[cfg(feature = "openapi")]
pub mod openapi;
mod views;

pub use views::*;

use crate::{HostId, HostTaskStatus, JobId, RunStatus, ScopeId, StepId, UnixMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable code from [`ErrorCode`], e.g. `UNKNOWN_HOST`.
    pub code: ErrorCode,
    /// A sentence for people. May change between versions; branch on `code`.
    pub message: String,
}

/// Every error code the API returns, with its HTTP status. This set is closed: clients may
/// branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthenticated,
    PermissionDenied,
    NotFound,
    InvalidArgument,
    MalformedJson,
    UnknownHost,
    UnknownGroup,
    EmptyTarget,
    UnknownLanguage,
    ScriptTooLarge,
    TimeoutOutOfRange,
    InvalidSelector,
    InvalidParams,
    /// A file path that is relative, empty, or not valid for its place.
    InvalidPath,
    /// An `upload_id` the server does not hold.
    UnknownUpload,
    InvalidState,
    Conflict,
    PayloadTooLarge,
    /// A request URI over 8 KiB.
    UriTooLong,
    /// Request headers over 32 KiB in all, or more than 100 of them.
    HeadersTooLarge,
    /// A `scope_id` that names no scope.
    UnknownScope,
    /// Too many failed sign-ins for the account or from the address; wait and try again.
    TooManyAttempts,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            Unauthenticated => 401,
            PermissionDenied => 403,
            NotFound => 404,
            InvalidArgument | MalformedJson | UnknownHost | UnknownGroup | EmptyTarget
            | UnknownLanguage | TimeoutOutOfRange | InvalidSelector | InvalidParams
            | InvalidPath | UnknownUpload | UnknownScope => 400,
            InvalidState | Conflict => 409,
            ScriptTooLarge | PayloadTooLarge => 413,
            UriTooLong => 414,
            HeadersTooLarge => 431,
            TooManyAttempts => 429,
            Internal => 500,
            Unavailable => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("INTERNAL"))
    }
}

/// Which hosts a job runs on. Resolved when the job starts; the union of every field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub host_ids: Vec<HostId>,
    /// Exact IP addresses of hosts in the scope.
    #[serde(default)]
    pub ips: Vec<String>,
    /// A label selector, e.g. `role=web,env in (prod,staging)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Saved dynamic groups.
    #[serde(default)]
    pub group_ids: Vec<i64>,
}

/// `POST /api/v1/script-executions`: run a script on targets (bk-job's fast_execute_script).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecuteScriptRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    /// Task name; defaults to a name derived from the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The script body, plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The script body, base64 (for bodies that are not valid UTF-8 JSON strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_base64: Option<String>,
    /// `shell`, `python`, `perl`, `powershell`, `bat`, or a bk-job language code.
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::name_or_code))]
    pub language: serde_json::Value,
    /// One parameter string, split like a POSIX shell would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Seconds, 1 to 259200; default 7200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// OS account to run as; default: the agent's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub login_env: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    pub targets: Targets,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecuteScriptResponse {
    pub job_instance_id: JobId,
    pub job_instance_name: String,
    pub step_instance_id: StepId,
    /// Hosts targeted, and of those, hosts that ended at once as agent abnormal.
    pub host_count: u64,
    pub abnormal_count: u64,
}

/// `POST /api/v1/steps/{id}/retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetryMode {
    /// Re-run only hosts that did not succeed (bk-job operation 2).
    Failed,
    /// Re-run every host (bk-job operation 8).
    All,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    pub mode: RetryMode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryResponse {
    pub step_instance_id: StepId,
    pub attempt: u32,
    pub rerun_count: u64,
}

/// `GET /api/v1/steps/{sid}/hosts/{hid}/log`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogResponse {
    pub step_instance_id: StepId,
    pub host_id: HostId,
    pub attempt: u32,
    pub offset: u64,
    pub next_offset: u64,
    /// Bytes stored so far.
    pub total: u64,
    /// The task has ended: no more bytes will come.
    pub finished: bool,
    pub truncated: bool,
    /// The bytes as UTF-8, invalid sequences replaced. Use `content_base64` for exact bytes.
    pub content: String,
    pub content_base64: String,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// `api` (default) or `enroll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    /// Lifetime in seconds; none means it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// API tokens: the account the token acts for (a service account, say); the caller's own
    /// account when absent. Only a platform admin may name another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// API tokens: the token may only read, whatever its account may do.
    #[serde(default)]
    pub read_only: bool,
    /// API tokens: the token acts only in this scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_scope_id: Option<ScopeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTokenResponse {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// The secret. Shown once; only its hash is stored.
    pub token: String,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub expires_at: Option<UnixMs>,
}

/// `PUT /api/v1/hosts/{id}/labels`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetLabelsRequest {
    pub labels: BTreeMap<String, String>,
}

/// `POST /api/v1/groups` and `PUT /api/v1/groups/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    pub name: String,
    pub selector: String,
}

/// `POST /api/v1/targets/preview`: what targets resolve to right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    pub targets: Targets,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewResponse {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
    pub abnormal: u64,
    /// Up to 1000 ids of hosts whose agent is not online.
    pub not_online_ids: Vec<HostId>,
}

/// `GET /api/v1/hosts/summary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostSummary {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
    pub abnormal: u64,
}

/// Server-sent events on `GET /api/v1/jobs/{id}/events` (`event:` is the variant name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// The job's status changed.
    Job { job_id: JobId, status: RunStatus },
    /// A step's status or task counts changed (coalesced: at most a few a second per step).
    Step {
        job_id: JobId,
        step_id: StepId,
        attempt: u32,
        status: RunStatus,
        counts: Vec<StatusCount>,
    },
    /// New output was stored for a host (only for the `host_id` the stream was opened with).
    Log {
        job_id: JobId,
        step_id: StepId,
        attempt: u32,
        host_id: HostId,
        total: u64,
    },
    /// A host's task changed status (only for the `host_id` the stream was opened with).
    Task {
        job_id: JobId,
        step_id: StepId,
        attempt: u32,
        host_id: HostId,
        status: HostTaskStatus,
    },
}

impl JobEvent {
    pub fn job_id(&self) -> JobId {
        match self {
            JobEvent::Job { job_id, .. }
            | JobEvent::Step { job_id, .. }
            | JobEvent::Log { job_id, .. }
            | JobEvent::Task { job_id, .. } => *job_id,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            JobEvent::Job { .. } => "job",
            JobEvent::Step { .. } => "step",
            JobEvent::Log { .. } => "log",
            JobEvent::Task { .. } => "task",
        }
    }
}

/// One source of `POST /api/v1/file-transfers`: exactly one of `file_list` (with `targets`),
/// `upload_id`, or `inline_content_base64` (with `inline_name`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FileSourceRequest {
    /// Absolute paths on the source hosts: files, directories (trailing `/`, recursive),
    /// wildcards (`*`, `?`, `[...]`), or `REGEX:<pattern>`. Anything else is literal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_list: Vec<String>,
    /// The source hosts of `file_list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    /// Account that reads the source files; default: the agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// A file uploaded with `POST /api/v1/uploads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The name an uploaded file gets at the target (default: its upload name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A small text file given inline, base64 (at most 1 MiB decoded), written as `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_content_base64: Option<String>,
    /// Permission bits of an uploaded or inline file at the targets, octal (`"0755"`);
    /// default `"0644"`. (Files from hosts keep their source's mode.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<String>,
}

/// `POST /api/v1/file-transfers`: distribute files to targets (bk-job's fast_transfer_file).
/// Answered with [`FileTransferResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FileTransferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<ScopeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub file_source_list: Vec<FileSourceRequest>,
    /// Absolute target directory; `[date:%Y%m%d]` and `[source_ip]` macros allowed.
    pub file_target_path: String,
    /// Owner of the written files; default: the agent's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub targets: Targets,
    /// `strict` (or 1): the target directory must exist; `force` (or 2, default): create it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::name_or_code))]
    pub transfer_mode: Option<serde_json::Value>,
    /// `overwrite` (default), `by_source_ip`, `by_date_and_source_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_handling: Option<crate::files::DuplicateMode>,
    /// Per host upload limit in MB/s (1 MB = 1,048,576 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_speed_limit: Option<u32>,
    /// Per host download limit in MB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_speed_limit: Option<u32>,
    /// Seconds, 1 to 259200; default 7200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Default true: targets also fetch from each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_to_peer: Option<bool>,
}

/// Answer to `POST /api/v1/uploads?name=NAME` (the body is the raw content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadResponse {
    /// Hex BLAKE3 of the content: the `upload_id` to use in file transfers.
    pub upload_id: String,
    pub name: String,
    pub size: u64,
    /// When it expires unless a transfer uses it (Unix ms).
    pub expires_at: UnixMs,
}
