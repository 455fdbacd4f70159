//! The records the [`crate::Store`] trait reads and writes. Plain data, serialisable so the API
//! can return most of them as they are.

mod files;
mod users;

pub use files::*;
pub use users::*;

use serde::{Deserialize, Serialize};
use shoal_types::{
    AgentStatus, HostFacts, HostId, HostTaskStatus, JobId, JobType, Labels, LaunchMode, RunStatus,
    ScopeId, StepId, StepType, TaskKey, UnixMs,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub id: ScopeId,
    pub name: String,
    pub created_at: UnixMs,
}

/// Token kinds are the API's: stored as [`TokenKind::as_str`].
pub use shoal_types::api::TokenKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub kind: TokenKind,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    pub scope_id: ScopeId,
    pub created_by: String,
    pub created_at: UnixMs,
    pub expires_at: Option<UnixMs>,
    /// The user or service account an API token acts for; `None` for enrollment tokens.
    pub user_id: Option<i64>,
    /// The token only reads, whatever its owner may do.
    pub read_only: bool,
    /// The token acts only in this scope, whatever its owner may do elsewhere.
    pub only_scope_id: Option<ScopeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub kind: TokenKind,
    #[serde(skip)]
    pub secret_hash: String,
    pub scope_id: ScopeId,
    pub created_by: String,
    pub created_at: UnixMs,
    pub expires_at: Option<UnixMs>,
    pub revoked_at: Option<UnixMs>,
    pub user_id: Option<i64>,
    pub read_only: bool,
    pub only_scope_id: Option<ScopeId>,
    /// When the token last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<UnixMs>,
}

impl TokenRecord {
    pub fn is_usable(&self, now: UnixMs) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHost {
    pub scope_id: ScopeId,
    pub agent_id: String,
    /// SHA-256 of the agent's secret, hex.
    pub secret_hash: String,
    pub facts: HostFacts,
    pub agent_labels: Labels,
    pub now: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How the agent contains a task's processes: `"cgroup"` or `"pgroup"` (see
    /// `HostFacts::containment`); absent when the agent did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
    /// Effective labels: the agent's config labels overlaid by labels set through the API.
    pub labels: Labels,
    pub agent_labels: Labels,
    pub user_labels: Labels,
    pub status: AgentStatus,
    pub generation: i64,
    pub last_seen: Option<UnixMs>,
    pub created_at: UnixMs,
    pub revoked_at: Option<UnixMs>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentAuth {
    pub host_id: HostId,
    pub secret_hash: String,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentStatusChange {
    pub host_id: HostId,
    pub status: AgentStatus,
    /// Change only if the host is still at this generation.
    pub generation: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLabelRow {
    pub id: HostId,
    pub labels: Labels,
    pub status: AgentStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFilter {
    pub scope_id: Option<ScopeId>,
    /// Hosts of any of these scopes (the scopes a caller may read); `Some(vec![])` matches none.
    pub scope_ids: Option<Vec<ScopeId>>,
    pub status: Option<AgentStatus>,
    /// Substring of any IP.
    pub ip: Option<String>,
    /// Substring of hostname or IP.
    pub query: Option<String>,
    pub os: Option<String>,
    /// Only these hosts (from a resolved selector), if given.
    pub ids: Option<Vec<HostId>>,
    pub include_revoked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 0-based offset.
    pub start: u64,
    pub length: u32,
}

impl Page {
    pub fn first(length: u32) -> Page {
        Page { start: 0, length }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paged<T> {
    pub start: u64,
    pub length: u32,
    pub total: u64,
    pub data: Vec<T>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    pub scope_id: ScopeId,
    pub name: String,
    pub selector: String,
    pub now: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: i64,
    pub scope_id: ScopeId,
    pub name: String,
    pub selector: String,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub scope_id: ScopeId,
    pub name: String,
    pub job_type: JobType,
    pub launch_mode: LaunchMode,
    pub operator: String,
    /// The job starts as `Running` with `started_at = now` when true, `Blank` otherwise.
    pub start: bool,
    pub now: UnixMs,
    pub steps: Vec<NewStep>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStep {
    pub name: String,
    pub step_type: StepType,
    /// The step's definition (for script steps, a `ScriptSpec`) as JSON.
    pub spec: serde_json::Value,
    /// Initial status of the step.
    pub status: RunStatus,
    /// Lease owner if the step starts running.
    pub owner: Option<String>,
    pub lease_until: Option<UnixMs>,
    /// One task per host with its initial status (normally `Waiting`; `AgentAbnormal` for
    /// hosts whose agent is not connected).
    pub tasks: Vec<(HostId, HostTaskStatus)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedJob {
    pub job_id: JobId,
    pub step_ids: Vec<StepId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub scope_id: ScopeId,
    pub name: String,
    pub job_type: JobType,
    pub launch_mode: LaunchMode,
    pub operator: String,
    pub status: RunStatus,
    pub created_at: UnixMs,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<UnixMs>,
    /// Number of hosts targeted by the first step (for history lists).
    pub host_count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    pub job_id: JobId,
    /// Position in the job, from 0.
    pub ordinal: u32,
    pub name: String,
    pub step_type: StepType,
    pub spec: serde_json::Value,
    pub status: RunStatus,
    /// The current attempt (bk-job's `execute_count`), from 0.
    pub attempt: u32,
    pub created_at: UnixMs,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<UnixMs>,
    pub owner: Option<String>,
    pub lease_until: Option<UnixMs>,
    pub host_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub scope_id: Option<ScopeId>,
    /// Jobs of any of these scopes (the scopes a caller may read); `Some(vec![])` matches none.
    pub scope_ids: Option<Vec<ScopeId>>,
    pub created_from: Option<UnixMs>,
    pub created_to: Option<UnixMs>,
    pub statuses: Vec<RunStatus>,
    pub operator: Option<String>,
    /// Substring of the name.
    pub name: Option<String>,
    /// Jobs that target any of these hosts.
    pub host_ids: Option<Vec<HostId>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTransition {
    pub job_id: JobId,
    pub from: Vec<RunStatus>,
    pub to: RunStatus,
    /// Sets `started_at` if it is not set yet.
    pub started_at: Option<UnixMs>,
    /// Sets `ended_at` (or clears it when a retry restarts the job: `Some(None)`).
    pub ended_at: Option<Option<UnixMs>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTransition {
    pub step_id: StepId,
    pub from: Vec<RunStatus>,
    pub to: RunStatus,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<Option<UnixMs>>,
    /// New lease owner and expiry (`Some(None)` releases the lease).
    pub owner: Option<Option<(String, UnixMs)>>,
}

/// One write batch of agent reports, applied in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskBatch {
    pub chunks: Vec<LogChunk>,
    pub updates: Vec<TaskUpdate>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    pub key: TaskKey,
    pub offset: u64,
    /// 0 stdout, 1 stderr, 2 agent.
    pub stream: u8,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskUpdate {
    /// Waiting -> Running.
    Started { key: TaskKey, at: UnixMs },
    /// Any non-terminal -> the given terminal status.
    Finished(TaskResult),
}

impl TaskUpdate {
    pub fn key(&self) -> TaskKey {
        match self {
            TaskUpdate::Started { key, .. } => *key,
            TaskUpdate::Finished(r) => r.key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    pub key: TaskKey,
    pub status: HostTaskStatus,
    pub exit_code: Option<i32>,
    pub started_at: Option<UnixMs>,
    pub ended_at: UnixMs,
    pub truncated: bool,
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// A short human reason for statuses that are not a script's own doing.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTask {
    pub key: TaskKey,
    pub job_id: JobId,
    pub status: HostTaskStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFilter {
    pub step_id: StepId,
    pub attempt: u32,
    pub statuses: Vec<HostTaskStatus>,
    /// Substring of the host's IPs.
    pub ip: Option<String>,
    /// Tasks whose stored log contains this text (matches within a chunk).
    pub keyword: Option<String>,
    /// Only the hosts of one result group.
    pub group: Option<GroupKey>,
    /// Only this host.
    pub host_id: Option<HostId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    pub step_id: StepId,
    pub attempt: u32,
    pub host_id: HostId,
    pub ip: String,
    pub hostname: String,
    pub status: HostTaskStatus,
    pub exit_code: Option<i32>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<UnixMs>,
    pub log_len: u64,
    pub truncated: bool,
    pub error: Option<String>,
}

/// How result groups are formed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By status, exit code and tag (bk-job's grouping); `digest` is `None` in every group.
    #[default]
    Status,
    /// Also by output digest: hosts whose output is identical.
    Output,
}

/// Stored as the error of a task that starts (and ends) as agent abnormal because its host's
/// agent was not connected when the step or its retry started.
pub const AGENT_NOT_CONNECTED: &str = "agent not connected when the job started";

/// What hosts in one result group share. As a [`TaskFilter`] group, a `digest` of `None`
/// matches any digest (groups formed with [`GroupBy::Status`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub status: HostTaskStatus,
    pub exit_code: Option<i32>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultGroup {
    #[serde(flatten)]
    pub key: GroupKey,
    pub host_count: u64,
    /// One host of the group, whose log shows what the group's output looks like.
    pub sample_host_id: HostId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSlice {
    pub offset: u64,
    pub data: Vec<u8>,
    /// Total bytes stored so far for the task.
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttempt {
    pub step_id: StepId,
    pub expected_attempt: u32,
    /// The status the step and its job take (the engine's decision).
    pub status: RunStatus,
    pub now: UnixMs,
    pub owner: String,
    pub lease_until: UnixMs,
    /// The new attempt's task rows: re-run hosts `Waiting` (or `AgentAbnormal`), carried
    /// successes `LastSuccess`.
    pub tasks: Vec<(HostId, HostTaskStatus)>,
}
