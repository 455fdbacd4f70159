//! Status codes, numbered exactly as bk-job's (`RunStatusEnum`, `ExecuteObjectTaskStatusEnum`) so
//! that a bk-job-compatible API is a renaming, not a remodelling.

use serde::{Deserialize, Serialize};

macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn code(self) -> i32 {
                match self { $($name::$variant => $code,)* }
            }

            pub fn from_code(code: i32) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// A short English description, as shown in the CLI.
            pub fn text(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = i32::deserialize(d)?;
                $name::from_code(code)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown {} code {code}", stringify!($name))))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.text())
            }
        }

        /// On the wire an integer code; the description lists every code with its meaning.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::api::openapi::coded_schema(
                    stringify!($name),
                    $name::ALL.iter().map(|v| (v.code(), v.text())),
                )
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

coded_enum! {
    /// Job and step run status (bk-job §2.5.1).
    RunStatus {
        Blank = 1 => "waiting",
        Running = 2 => "running",
        Success = 3 => "success",
        Fail = 4 => "failed",
        Skipped = 5 => "skipped",
        IgnoreError = 6 => "ignored error",
        WaitingUser = 7 => "waiting for user",
        Terminated = 8 => "terminated",
        AbnormalState = 9 => "abnormal",
        Stopping = 10 => "stopping",
        StopSuccess = 11 => "stopped",
        ConfirmTerminated = 13 => "confirmation rejected",
        Abandoned = 14 => "abandoned",
        RollingWaiting = 15 => "rolling batch waiting",
    }
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Success
                | RunStatus::Fail
                | RunStatus::Skipped
                | RunStatus::IgnoreError
                | RunStatus::Terminated
                | RunStatus::AbnormalState
                | RunStatus::StopSuccess
                | RunStatus::ConfirmTerminated
                | RunStatus::Abandoned
        )
    }
}

coded_enum! {
    /// Per-host task status (bk-job §2.5.3).
    HostTaskStatus {
        Unknown = 0 => "unknown error",
        AgentAbnormal = 1 => "agent abnormal",
        InvalidHost = 2 => "invalid host",
        LastSuccess = 3 => "succeeded in an earlier attempt",
        Waiting = 5 => "waiting",
        Running = 7 => "running",
        Success = 9 => "success",
        Failed = 11 => "failed",
        SubmitFailed = 12 => "submit failed",
        TaskTimeout = 13 => "task timeout",
        AgentNotInstalled = 18 => "agent not installed",
        ScriptFailed = 101 => "script execution failed",
        ScriptTimeout = 102 => "script timeout",
        ScriptTerminated = 103 => "script terminated",
        ScriptNonZeroExit = 104 => "script exit code non-zero",
        FileFailed = 202 => "file transfer failed",
        SourceNotFound = 203 => "source file not found",
        FileSystemError = 301 => "file task system error",
        FileTimeout = 303 => "file task timeout",
        UserNotExist = 311 => "user does not exist",
        TaskError = 399 => "task execution error",
    }
}

impl HostTaskStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, HostTaskStatus::Waiting | HostTaskStatus::Running)
    }

    /// Whether the host counts as a success of its step.
    pub fn is_success(self) -> bool {
        matches!(self, HostTaskStatus::Success | HostTaskStatus::LastSuccess)
    }
}

coded_enum! {
    /// Status of one file transfer, numbered as bk-job's file logs (§2.4.5).
    FileStatus {
        Waiting = 1 => "waiting",
        Uploading = 2 => "uploading",
        Downloading = 3 => "downloading",
        Success = 4 => "success",
        Failed = 5 => "failed",
    }
}

impl FileStatus {
    /// Success and failure are final: a row in either never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, FileStatus::Success | FileStatus::Failed)
    }
}

/// Connection state of a host's agent, as the inventory shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Connected and heartbeating.
    Online,
    /// Not connected.
    Offline,
    /// Connected but not heartbeating in time, or reporting a fault.
    Abnormal,
}

impl AgentStatus {
    pub fn code(self) -> i32 {
        match self {
            AgentStatus::Offline => 0,
            AgentStatus::Online => 1,
            AgentStatus::Abnormal => 2,
        }
    }
    pub fn from_code(code: i32) -> Option<AgentStatus> {
        match code {
            0 => Some(AgentStatus::Offline),
            1 => Some(AgentStatus::Online),
            2 => Some(AgentStatus::Abnormal),
            _ => None,
        }
    }
    pub fn parse(s: &str) -> Option<AgentStatus> {
        match s {
            "online" => Some(AgentStatus::Online),
            "offline" => Some(AgentStatus::Offline),
            "abnormal" => Some(AgentStatus::Abnormal),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Offline => "offline",
            AgentStatus::Abnormal => "abnormal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_serialize_as_numbers() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::from_code(s.code()), Some(*s));
        }
        for s in HostTaskStatus::ALL {
            assert_eq!(HostTaskStatus::from_code(s.code()), Some(*s));
        }
        assert_eq!(
            serde_json::to_string(&RunStatus::StopSuccess).unwrap(),
            "11"
        );
        assert_eq!(
            serde_json::from_str::<HostTaskStatus>("104").unwrap(),
            HostTaskStatus::ScriptNonZeroExit
        );
        assert!(serde_json::from_str::<RunStatus>("12").is_err());
    }

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

    #[test]
    fn terminality() {
        let running = [
            RunStatus::Blank,
            RunStatus::Running,
            RunStatus::Stopping,
            RunStatus::WaitingUser,
        ];
        for s in RunStatus::ALL {
            assert_eq!(
                s.is_terminal(),
                !running.contains(s) && *s != RunStatus::RollingWaiting,
                "{s:?}"
            );
        }
        assert!(!HostTaskStatus::Running.is_terminal());
        assert!(HostTaskStatus::AgentAbnormal.is_terminal());
        assert!(HostTaskStatus::LastSuccess.is_success());
        assert!(!HostTaskStatus::ScriptNonZeroExit.is_success());
    }
}
