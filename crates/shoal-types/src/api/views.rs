//! What the API shows of stored things: scopes, tokens, hosts, groups, jobs, steps, per-host
//! results, result groups, per-file rows and uploads. Each is a deliberate view, converted from
//! the storage record at the server's API edge; a field the API does not mean to show (an
//! environment value, a step's lease owner and expiry, a token's hash) has no place here.

use crate::access::{Permission, Role, UserKind};
use crate::files::{DirMode, DuplicateMode, FileSource, FileSpec};
use crate::{
    AgentStatus, FileStatus, HostId, HostTaskStatus, JobId, JobType, Labels, Language, LaunchMode,
    RunStatus, ScopeId, ScriptSpec, StepId, StepType, UnixMs,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// One page of a list: `data` holds at most `length` items from offset `start` of `total`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Paged<T> {
    pub start: u64,
    pub length: u32,
    pub total: u64,
    pub data: Vec<T>,
}

/// A scope (bk-job's business): hosts, groups, tokens and jobs belong to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Scope {
    pub id: ScopeId,
    pub name: String,
    pub created_at: UnixMs,
}

/// `POST /api/v1/scopes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateScopeRequest {
    /// 1 to 128 characters, unique.
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Authenticates API requests.
    Api,
    /// Lets an agent enroll once per host into the token's scope.
    Enroll,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Enroll => "enroll",
        }
    }
    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "api" => Some(TokenKind::Api),
            "enroll" => Some(TokenKind::Enroll),
            _ => None,
        }
    }
}

/// An API or enrollment token as listed: never its secret, nor the secret's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub kind: TokenKind,
    pub scope_id: ScopeId,
    pub created_by: String,
    pub created_at: UnixMs,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub expires_at: Option<UnixMs>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub revoked_at: Option<UnixMs>,
    /// The account an API token acts for.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub user_id: Option<i64>,
    pub read_only: bool,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub only_scope_id: Option<ScopeId>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_used_at: Option<UnixMs>,
}

/// What the caller may do in one scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScopeAccess {
    pub scope_id: ScopeId,
    pub scope_name: String,
    /// The role held there; absent for a platform admin without a binding.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub role: Option<Role>,
    /// The label selector execution is limited to; `""` for every host.
    pub host_selector: String,
    pub permissions: Vec<Permission>,
}

/// `GET /api/v1/whoami`: the account of the request and what it may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WhoAmI {
    pub user_id: i64,
    /// The account's name.
    pub name: String,
    pub display_name: String,
    pub kind: UserKind,
    /// Platform admin (and not narrowed by the token).
    pub is_admin: bool,
    /// `token` or `session`.
    pub via: String,
    /// The token of the request, if it came with one.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub token_id: Option<i64>,
    pub read_only: bool,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub only_scope_id: Option<ScopeId>,
    /// Every scope the caller may read, with its permissions there.
    pub scopes: Vec<ScopeAccess>,
}

/// `GET /api/v1/auth/config`: how to sign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthConfig {
    pub password: bool,
    /// Single sign-on, when configured.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub sso: Option<SsoConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SsoConfig {
    /// The button's text.
    pub label: String,
    /// Where the browser goes to start.
    pub start_url: String,
}

/// `POST /api/web/v1/auth/login` and `POST /api/v1/auth/token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub password: String,
    /// `auth/token` only: the new token's name [default: `cli`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    /// `auth/token` only: its lifetime in seconds [default: 30 days].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// The answer to a console sign-in: the account, and the CSRF token to send back in
/// `x-csrf-token` with every state-changing request (also set as the `shoal_csrf` cookie).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SignedIn {
    pub user: WhoAmI,
    pub csrf_token: String,
}

/// An account: a person or a service account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub kind: UserKind,
    pub is_admin: bool,
    pub enabled: bool,
    /// `local` or `oidc`.
    pub source: String,
    /// Whether the account can sign in with a password.
    pub has_password: bool,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1 to 64 characters: letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    /// `user` (default) or `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<UserKind>,
    /// People only; at least 10 characters. Without one, the account signs in only by SSO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// `PATCH /api/v1/users/{id}`: every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Disabling ends the account's sessions and stops its tokens at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /api/v1/me/password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current: String,
    pub new: String,
}

/// A role held by an account in a scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RoleBinding {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub scope_id: ScopeId,
    pub role: Role,
    /// Execution is limited to hosts matching this label selector; `""` for every host.
    pub host_selector: String,
    /// `manual`, or `oidc` for bindings mapped from single sign-on groups at each sign-in.
    pub source: String,
    pub created_by: String,
    pub created_at: UnixMs,
}

/// `PUT /api/v1/role-bindings`: gives `user_id` the `role` in `scope_id` (replacing the role it
/// had there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutRoleBindingRequest {
    pub user_id: i64,
    pub scope_id: ScopeId,
    pub role: Role,
    /// A label selector (`env!=prod`) limiting where the role may execute; empty for all hosts.
    #[serde(default)]
    pub host_selector: String,
}

/// One record of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    pub at: UnixMs,
    /// The acting account's name; `""` for an unknown one (a failed sign-in).
    pub actor: String,
    /// `user`, `service`, `system` or `anonymous`.
    pub actor_kind: String,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub user_id: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub token_id: Option<i64>,
    pub address: String,
    /// `web`, `api`, `cron`, `flow` or `system`.
    pub origin: String,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub scope_id: Option<ScopeId>,
    /// A stable dotted name: `job.execute_script`, `token.create`, `auth.login`...
    pub action: String,
    /// What was acted on: `job:42`, `user:alice`; `""` for nothing in particular.
    pub resource: String,
    /// `ok`, `denied`, `failed` or `throttled`.
    pub outcome: String,
    /// The error code and message of a refusal or failure.
    pub detail: String,
}

/// `GET /api/v1/audit`: newest first; pass `next_before_id` as `before_id` for the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditPage {
    pub data: Vec<AuditRecord>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_before_id: Option<i64>,
}

/// A host of the inventory and its agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Host {
    pub id: HostId,
    pub scope_id: ScopeId,
    pub agent_id: String,
    pub hostname: String,
    /// The preferred address (the first the agent reported), "" if none.
    pub ip: String,
    pub ips: Vec<String>,
    pub os: String,
    pub os_version: String,
    pub arch: String,
    pub agent_version: String,
    /// How the agent contains a task's processes: `"cgroup"` or `"pgroup"`; absent when the
    /// agent did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
    /// Effective labels: the agent's config labels overlaid by labels set through the API.
    pub labels: Labels,
    pub agent_labels: Labels,
    pub user_labels: Labels,
    pub status: AgentStatus,
    /// Bumped by every connection of the host's agent.
    pub generation: i64,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_seen: Option<UnixMs>,
    pub created_at: UnixMs,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub revoked_at: Option<UnixMs>,
}

/// A saved dynamic group: the hosts of its scope that match its selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Group {
    pub id: i64,
    pub scope_id: ScopeId,
    pub name: String,
    pub selector: String,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// A job (bk-job's task instance), as history lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Job {
    pub id: JobId,
    pub scope_id: ScopeId,
    pub name: String,
    pub job_type: JobType,
    pub launch_mode: LaunchMode,
    pub operator: String,
    pub status: RunStatus,
    pub created_at: UnixMs,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub started_at: Option<UnixMs>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ended_at: Option<UnixMs>,
    /// Hosts targeted by the first step.
    pub host_count: u64,
}

/// A step of a job. Its lease (which server drives it, until when) is internal and not shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Step {
    pub id: StepId,
    pub job_id: JobId,
    /// Position in the job, from 0.
    pub ordinal: u32,
    pub name: String,
    pub step_type: StepType,
    /// What the step runs.
    pub spec: StepSpec,
    pub status: RunStatus,
    /// The current attempt (bk-job's `execute_count`), from 0.
    pub attempt: u32,
    pub created_at: UnixMs,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub started_at: Option<UnixMs>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ended_at: Option<UnixMs>,
    pub host_count: u64,
}

/// What a step runs, by kind: a script step shows its script and settings with the names of
/// its environment variables but never their values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(untagged)]
pub enum StepSpec {
    Script(ScriptStepSpec),
    File(FileStepSpec),
    /// A kind with nothing to show (or a spec the server could not read): `{}`.
    Empty(EmptySpec),
}

/// Nothing but `{}`, so that it never also matches a script or file spec (`oneOf`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmptySpec {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScriptStepSpec {
    pub language: Language,
    pub content: String,
    /// Parameters, split into argv words.
    pub args: Vec<String>,
    /// Names of the extra environment variables; their values are never shown.
    pub env_names: Vec<String>,
    /// OS account; "" is the agent's own.
    pub account: String,
    pub login_env: bool,
    /// Working directory; "" is the account's home directory.
    pub workdir: String,
    pub timeout_secs: u32,
}

impl From<&ScriptSpec> for ScriptStepSpec {
    fn from(s: &ScriptSpec) -> ScriptStepSpec {
        ScriptStepSpec {
            language: s.language,
            content: s.content.clone(),
            args: s.args.clone(),
            env_names: s.env.iter().map(|(k, _)| k.clone()).collect(),
            account: s.account.clone(),
            login_env: s.login_env,
            workdir: s.workdir.clone(),
            timeout_secs: s.timeout_secs,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileStepSpec {
    pub sources: Vec<FileSource>,
    /// Absolute; may contain `[date:FORMAT]` and `[source_ip]` macros.
    pub target_dir: String,
    /// Owner of written files; "" is the agent's account.
    pub account: String,
    pub dir_mode: DirMode,
    pub duplicate: DuplicateMode,
    /// Per host, MB/s; none is unlimited.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub upload_limit_mbps: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub download_limit_mbps: Option<u32>,
    pub timeout_secs: u32,
    pub peer_to_peer: bool,
}

impl From<&FileSpec> for FileStepSpec {
    fn from(s: &FileSpec) -> FileStepSpec {
        FileStepSpec {
            sources: s.sources.clone(),
            target_dir: s.target_dir.clone(),
            account: s.account.clone(),
            dir_mode: s.dir_mode,
            duplicate: s.duplicate,
            upload_limit_mbps: s.upload_limit_mbps,
            download_limit_mbps: s.download_limit_mbps,
            timeout_secs: s.timeout_secs,
            peer_to_peer: s.peer_to_peer,
        }
    }
}

/// Counts of a step attempt's tasks by host status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct StatusCount {
    pub status: HostTaskStatus,
    pub count: u64,
}

/// `GET /api/v1/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JobDetail {
    pub job: Job,
    /// The job has ended: nothing will change any more (unless a step is retried).
    pub finished: bool,
    pub steps: Vec<StepDetail>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct StepDetail {
    pub step: Step,
    /// Task counts of the step's current attempt.
    pub counts: Vec<StatusCount>,
}

/// `POST /api/v1/jobs/{id}/terminate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TerminateResponse {
    pub job_instance_id: JobId,
}

/// The result of one host in one attempt of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TaskRow {
    pub step_id: StepId,
    pub attempt: u32,
    pub host_id: HostId,
    pub ip: String,
    pub hostname: String,
    pub status: HostTaskStatus,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub exit_code: Option<i32>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub tag: Option<String>,
    /// Digest of the output: hosts with equal digests printed the same.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub digest: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub started_at: Option<UnixMs>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ended_at: Option<UnixMs>,
    /// Bytes of output stored.
    pub log_len: u64,
    pub truncated: bool,
    /// A short reason for statuses that are not the script's own doing.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub error: Option<String>,
}

/// How result groups are formed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By status, exit code and tag (bk-job's grouping); `digest` is null in every group.
    #[default]
    Status,
    /// Also by output digest: hosts whose output is identical.
    Output,
}

/// What the hosts of one result group share.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GroupKey {
    pub status: HostTaskStatus,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub exit_code: Option<i32>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub tag: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResultGroup {
    #[serde(flatten)]
    pub key: GroupKey,
    pub host_count: u64,
    /// One host of the group, whose log shows what the group's output looks like.
    pub sample_host_id: HostId,
}

/// `GET /api/v1/steps/{id}/groups`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResultGroups {
    pub attempt: u32,
    pub by: GroupBy,
    pub groups: Vec<ResultGroup>,
}

/// What identifies one file transfer row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileTaskKey {
    pub step_id: StepId,
    pub attempt: u32,
    /// 0: a row at a source host (what it uploaded); 1: a row at a target host.
    pub mode: u8,
    /// The source host for upload rows, the target host for download rows.
    pub host_id: HostId,
    /// The host the file comes from; null for uploaded and inline sources.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub source_host_id: Option<HostId>,
    pub source_path: String,
    pub dest_path: String,
}

/// One file on one host (bk-job's file log row), with the addresses of its host and source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileTaskRow {
    #[serde(flatten)]
    pub key: FileTaskKey,
    /// The host's preferred address, "" if the host is unknown.
    pub ip: String,
    pub hostname: String,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub source_ip: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub source_hostname: Option<String>,
    pub size: u64,
    pub bytes_done: u64,
    /// Bytes per second, as last reported.
    pub speed: u64,
    pub status: FileStatus,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub started_at: Option<UnixMs>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ended_at: Option<UnixMs>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileCount {
    pub status: FileStatus,
    pub count: u64,
}

/// `GET /api/v1/steps/{id}/files/summary`: download-side file counts by status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FilesSummary {
    pub step_instance_id: StepId,
    pub attempt: u32,
    /// Files (per target) in all.
    pub total: u64,
    pub counts: Vec<FileCount>,
}

/// `GET /api/v1/uploads/{id}`: a file uploaded through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Upload {
    /// Hex BLAKE3 of the whole content.
    pub id: String,
    /// The name it was first uploaded under.
    pub name: String,
    pub size: u64,
    /// Hex BLAKE3 of each 4 MiB chunk, in order.
    pub chunks: Vec<String>,
    pub created_by: String,
    pub created_at: UnixMs,
    /// Last upload of the same content.
    pub last_used_at: UnixMs,
}

/// `POST /api/v1/file-transfers`: the job started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileTransferResponse {
    pub job_instance_id: JobId,
    pub job_instance_name: String,
    /// The file step: its per-file rows are at `/api/v1/steps/{id}/files`.
    pub step_instance_id: StepId,
    /// Target hosts, and of those, hosts that ended at once as agent abnormal.
    pub host_count: u64,
    pub abnormal_count: u64,
}
