//! Passive domain data shared by every Shoal crate: ids, the bk-job status codes, script
//! languages, label selectors and host facts.
//!
//! This crate owns no behaviour beyond pure helpers (parsing, classification). It must not know
//! about storage, the network, the async runtime or the console.

pub mod access;
pub mod api;
pub mod files;
mod selector;
mod status;

pub use selector::{LabelSelector, SelectorError, SelectorTerm};
pub use status::{AgentStatus, FileStatus, HostTaskStatus, RunStatus};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Database ids are 64-bit integers, as in bk-job's API.
pub type HostId = i64;
pub type JobId = i64;
pub type StepId = i64;
pub type ScopeId = i64;

/// The scope every installation starts with (bk-job's "business"). Migrations create it.
pub const DEFAULT_SCOPE: ScopeId = 1;

/// Labels attached to a host: from the agent's config and edited through the API.
pub type Labels = BTreeMap<String, String>;

/// Milliseconds since the Unix epoch; every timestamp in Shoal uses it (bk-job's API does too).
pub type UnixMs = i64;

/// The identity of one execution of one step on one host. `attempt` is bk-job's `execute_count`,
/// starting at 0 and incremented by every retry; each attempt keeps its own log and result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskKey {
    pub step_id: StepId,
    pub attempt: u32,
    pub host_id: HostId,
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.step_id, self.attempt, self.host_id)
    }
}

/// Script languages, numbered as bk-job's `script_language`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Shell,
    Bat,
    Perl,
    Python,
    Powershell,
}

impl Language {
    pub const ALL: [Language; 5] = [
        Language::Shell,
        Language::Bat,
        Language::Perl,
        Language::Python,
        Language::Powershell,
    ];

    pub fn code(self) -> i32 {
        match self {
            Language::Shell => 1,
            Language::Bat => 2,
            Language::Perl => 3,
            Language::Python => 4,
            Language::Powershell => 5,
        }
    }

    pub fn from_code(code: i32) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Shell => "shell",
            Language::Bat => "bat",
            Language::Perl => "perl",
            Language::Python => "python",
            Language::Powershell => "powershell",
        }
    }

    /// Accepts a name (`shell`, `bash`, `sh`, `python`, `python3`, `perl`, `powershell`, `pwsh`,
    /// `bat`) or a bk-job numeric code.
    pub fn parse(s: &str) -> Option<Language> {
        let s = s.trim().to_ascii_lowercase();
        if let Ok(code) = s.parse::<i32>() {
            return Language::from_code(code);
        }
        match s.as_str() {
            "shell" | "bash" | "sh" => Some(Language::Shell),
            "bat" | "cmd" => Some(Language::Bat),
            "perl" => Some(Language::Perl),
            "python" | "python3" => Some(Language::Python),
            "powershell" | "pwsh" => Some(Language::Powershell),
            _ => None,
        }
    }
}

/// Facts an agent reports about its host when it connects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    /// Non-loopback addresses, the preferred one first.
    pub ips: Vec<String>,
    pub os: String,
    pub os_version: String,
    pub arch: String,
    pub agent_version: String,
    /// How the agent contains a task's processes: `"cgroup"` (a cgroup v2 per task: terminate
    /// and timeout kill everything the script started) or `"pgroup"` (its process group only:
    /// descendants that start a new session survive). `None` when the agent did not report it
    /// (older agents, simulated ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
}

/// Job types, numbered as bk-job's task type.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    Plan,
    Script,
    File,
}

impl JobType {
    pub fn code(self) -> i32 {
        match self {
            JobType::Plan => 0,
            JobType::Script => 1,
            JobType::File => 2,
        }
    }
    pub fn from_code(code: i32) -> Option<JobType> {
        [JobType::Plan, JobType::Script, JobType::File]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// How a job was launched, numbered as bk-job's launch mode.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchMode {
    Web,
    Api,
    Cron,
}

impl LaunchMode {
    pub fn code(self) -> i32 {
        match self {
            LaunchMode::Web => 1,
            LaunchMode::Api => 2,
            LaunchMode::Cron => 3,
        }
    }
    /// The name the audit trail records as a request's origin.
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchMode::Web => "web",
            LaunchMode::Api => "api",
            LaunchMode::Cron => "cron",
        }
    }

    pub fn from_code(code: i32) -> Option<LaunchMode> {
        [LaunchMode::Web, LaunchMode::Api, LaunchMode::Cron]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// Step types, numbered as bk-job's step type.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    Script,
    File,
    Confirm,
}

impl StepType {
    pub fn code(self) -> i32 {
        match self {
            StepType::Script => 1,
            StepType::File => 2,
            StepType::Confirm => 3,
        }
    }
    pub fn from_code(code: i32) -> Option<StepType> {
        [StepType::Script, StepType::File, StepType::Confirm]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// Everything an agent needs to run one script step on its host. Stored with the step (as JSON)
/// and sent to each agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSpec {
    pub language: Language,
    pub content: String,
    /// Parameters, already split into argv words.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// OS account to run as; empty means the agent's own account.
    #[serde(default)]
    pub account: String,
    /// Run with a login-like environment (HOME, USER, SHELL, PATH from the account; shells run
    /// as login shells) instead of the agent's environment.
    #[serde(default)]
    pub login_env: bool,
    /// Working directory; empty means the account's home directory, or `/`.
    #[serde(default)]
    pub workdir: String,
    pub timeout_secs: u32,
}

/// A step's definition, typed by kind. Stored as the step's `step_type` plus the inner spec as
/// JSON; [`StepSpec::from_stored`] reads it back and refuses kinds it cannot run (there is no
/// wildcard that treats an unknown kind as a script). Approval and SQL steps join as variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepSpec {
    Script(ScriptSpec),
    File(files::FileSpec),
}

/// Why a stored step spec cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("steps of type {0:?} cannot run yet")]
    Unsupported(StepType),
    #[error("the stored {kind:?} spec is unreadable: {error}")]
    Unreadable {
        kind: StepType,
        error: serde_json::Error,
    },
}

impl StepSpec {
    pub fn step_type(&self) -> StepType {
        match self {
            StepSpec::Script(_) => StepType::Script,
            StepSpec::File(_) => StepType::File,
        }
    }

    /// The inner spec as stored with the step.
    pub fn to_stored(&self) -> serde_json::Value {
        let value = match self {
            StepSpec::Script(s) => serde_json::to_value(s),
            StepSpec::File(f) => serde_json::to_value(f),
        };
        // Both specs are plain structs of strings, numbers and lists: they always serialize.
        value.unwrap_or(serde_json::Value::Null)
    }

    pub fn from_stored(kind: StepType, spec: &serde_json::Value) -> Result<StepSpec, SpecError> {
        let unreadable = |error| SpecError::Unreadable { kind, error };
        match kind {
            StepType::Script => serde_json::from_value(spec.clone())
                .map(StepSpec::Script)
                .map_err(unreadable),
            StepType::File => serde_json::from_value(spec.clone())
                .map(StepSpec::File)
                .map_err(unreadable),
            StepType::Confirm => Err(SpecError::Unsupported(kind)),
        }
    }
}

/// Bounds enforced on script requests.
pub mod limits {
    /// bk-job's timeout range: 1 s to 3 days.
    pub const TIMEOUT_MIN_SECS: u32 = 1;
    pub const TIMEOUT_MAX_SECS: u32 = 259_200;
    pub const TIMEOUT_DEFAULT_SECS: u32 = 7_200;
    /// Largest script body accepted.
    pub const SCRIPT_MAX_BYTES: usize = 5 * 1024 * 1024;
    /// Largest parameter string accepted (bk-job: 64K).
    pub const PARAMS_MAX_BYTES: usize = 64 * 1024;
    pub const NAME_MAX_CHARS: usize = 512;
    /// Default per-host per-step output cap.
    pub const OUTPUT_CAP_DEFAULT: u64 = 5 * 1024 * 1024;

    /// The text stored right after the first `cap` bytes of a task's output when there was
    /// more (by the agent, and by the server for an agent that did not).
    pub fn truncation_marker(cap: u64) -> Vec<u8> {
        format!("\n[shoal-agent: output truncated at {cap} bytes]\n").into_bytes()
    }
    /// Largest page a list endpoint returns (bk-job: 1000).
    pub const PAGE_MAX: u32 = 1000;
    /// Largest tag a script can set (bk-job: 256).
    pub const TAG_MAX_BYTES: usize = 256;
}
