//! The status a host gets for how its task ended on the agent (bk-job's per-host statuses).

use shoal_proto::{End, Outcome};
use shoal_types::HostTaskStatus;

/// A host's result for one task, as decided from the agent's [`Outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostResult {
    pub status: HostTaskStatus,
    pub exit_code: Option<i32>,
    /// Why it failed, in words, where the status alone does not say.
    pub error: Option<String>,
}

pub fn host_result(outcome: &Outcome) -> HostResult {
    let (status, exit_code, error) = match &outcome.end {
        End::Exited { code: 0 } => (HostTaskStatus::Success, Some(0), None),
        End::Exited { code } => (HostTaskStatus::ScriptNonZeroExit, Some(*code), None),
        End::Signaled { signal } => (
            HostTaskStatus::ScriptFailed,
            None,
            Some(format!("killed by signal {signal}")),
        ),
        End::TimedOut => (
            HostTaskStatus::ScriptTimeout,
            None,
            Some("timed out".into()),
        ),
        End::Killed => (
            HostTaskStatus::ScriptTerminated,
            None,
            Some("terminated".into()),
        ),
        End::UserNotFound { account } => (
            HostTaskStatus::UserNotExist,
            None,
            Some(format!("account {account:?} does not exist on the host")),
        ),
        End::StartFailed { reason } => (HostTaskStatus::ScriptFailed, None, Some(reason.clone())),
        End::FileFailed { code, message } => (code.host_status(), None, Some(message.clone())),
    };
    HostResult {
        status,
        exit_code,
        error,
    }
}

#[cfg(test)]
mod tests {
    // Pins bk-job's per-host status for every way a task can end.
    use super::*;
    use HostTaskStatus as H;

    fn outcome(end: End) -> Outcome {
        Outcome {
            end,
            started_at: Some(1),
            ended_at: 2,
            output_len: 0,
            truncated: false,
            digest: String::new(),
            tag: None,
        }
    }

    #[test]
    fn every_end_has_its_host_status() {
        let table = [
            (End::Exited { code: 0 }, H::Success, Some(0), None),
            (End::Exited { code: 3 }, H::ScriptNonZeroExit, Some(3), None),
            (
                End::Signaled { signal: 9 },
                H::ScriptFailed,
                None,
                Some("killed by signal 9"),
            ),
            (End::TimedOut, H::ScriptTimeout, None, Some("timed out")),
            (End::Killed, H::ScriptTerminated, None, Some("terminated")),
            (
                End::UserNotFound {
                    account: "app".into(),
                },
                H::UserNotExist,
                None,
                Some("account \"app\" does not exist on the host"),
            ),
            (
                End::StartFailed {
                    reason: "no shell".into(),
                },
                H::ScriptFailed,
                None,
                Some("no shell"),
            ),
        ];
        for (end, status, exit_code, error) in table {
            let got = host_result(&outcome(end.clone()));
            assert_eq!(
                got,
                HostResult {
                    status,
                    exit_code,
                    error: error.map(str::to_string)
                },
                "{end:?}"
            );
        }
    }
}
