//! The rules of job and step state, as pure functions: given what is stored, decide the next
//! status and what to do. No IO, no async runtime, no storage types: the server reads state,
//! asks the engine, and performs the actions it returns.
//!
//! Status numbering and transitions follow bk-job (`RunStatusEnum`, `JobListener`): a job starts
//! from Blank, a terminate request moves a running step to Stopping and then StopSuccess once no
//! host is running, and a step's end decides its job's end.

use shoal_types::{HostId, HostTaskStatus, RunStatus, api::RetryMode};

/// What a step's tasks say about the step, given the step's current status.
///
/// Returns the terminal status the step should move to, or `None` while any host is still
/// waiting or running.
pub fn settle_step(current: RunStatus, counts: &[(HostTaskStatus, u64)]) -> Option<RunStatus> {
    if current.is_terminal() {
        return None;
    }
    let live = counts.iter().any(|(s, n)| *n > 0 && !s.is_terminal());
    if live {
        return None;
    }
    if current == RunStatus::Stopping {
        return Some(RunStatus::StopSuccess);
    }
    let failed = counts.iter().any(|(s, n)| *n > 0 && !s.is_success());
    Some(if failed {
        RunStatus::Fail
    } else {
        RunStatus::Success
    })
}

/// What happens to a job when one of its steps reaches a terminal status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobNext {
    /// Start the step after this one.
    NextStep,
    /// The job ends with this status.
    Finish(RunStatus),
}

pub fn job_after_step(step_status: RunStatus, is_last_step: bool) -> JobNext {
    match step_status {
        RunStatus::Success | RunStatus::Skipped | RunStatus::IgnoreError if !is_last_step => {
            JobNext::NextStep
        }
        RunStatus::Success | RunStatus::Skipped | RunStatus::IgnoreError => {
            JobNext::Finish(RunStatus::Success)
        }
        RunStatus::StopSuccess | RunStatus::Terminated => JobNext::Finish(RunStatus::Terminated),
        RunStatus::AbnormalState => JobNext::Finish(RunStatus::AbnormalState),
        RunStatus::Abandoned => JobNext::Finish(RunStatus::Abandoned),
        RunStatus::ConfirmTerminated => JobNext::Finish(RunStatus::ConfirmTerminated),
        _ => JobNext::Finish(RunStatus::Fail),
    }
}

/// Whether a step in `status` can be asked to terminate.
pub fn can_terminate(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Blank | RunStatus::Running | RunStatus::WaitingUser
    )
}

/// Whether a step in `status` can be retried (it must have ended).
pub fn can_retry(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Fail | RunStatus::StopSuccess | RunStatus::Success | RunStatus::AbnormalState
    )
}

/// The task rows of a new attempt: hosts to re-run start `Waiting`; under `RetryMode::Failed`,
/// hosts that succeeded carry over as `LastSuccess` and are not run again.
pub fn retry_plan(
    mode: RetryMode,
    previous: &[(HostId, HostTaskStatus)],
) -> Vec<(HostId, HostTaskStatus)> {
    previous
        .iter()
        .map(|&(host, status)| {
            let carry = mode == RetryMode::Failed && status.is_success();
            (
                host,
                if carry {
                    HostTaskStatus::LastSuccess
                } else {
                    HostTaskStatus::Waiting
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostTaskStatus as H;
    use RunStatus as R;

    fn check_settle(current: R, counts: &[(H, u64)], expected: Option<R>) {
        assert_eq!(
            settle_step(current, counts),
            expected,
            "{current:?} {counts:?}"
        );
    }

    #[test]
    fn settling_steps() {
        check_settle(R::Running, &[(H::Success, 3)], Some(R::Success));
        check_settle(
            R::Running,
            &[(H::Success, 2), (H::LastSuccess, 1)],
            Some(R::Success),
        );
        check_settle(R::Running, &[(H::Success, 2), (H::Running, 1)], None);
        check_settle(R::Running, &[(H::Success, 2), (H::Waiting, 1)], None);
        check_settle(
            R::Running,
            &[(H::Success, 2), (H::Waiting, 0)],
            Some(R::Success),
        );
        check_settle(
            R::Running,
            &[(H::Success, 2), (H::ScriptNonZeroExit, 1)],
            Some(R::Fail),
        );
        check_settle(R::Running, &[(H::AgentAbnormal, 1)], Some(R::Fail));
        check_settle(
            R::Stopping,
            &[(H::ScriptTerminated, 2), (H::Success, 1)],
            Some(R::StopSuccess),
        );
        check_settle(R::Stopping, &[(H::Running, 1)], None);
        check_settle(R::Success, &[(H::Success, 1)], None);
        check_settle(R::Running, &[], Some(R::Success));
    }

    #[test]
    fn jobs_follow_steps() {
        assert_eq!(
            job_after_step(R::Success, true),
            JobNext::Finish(R::Success)
        );
        assert_eq!(job_after_step(R::Success, false), JobNext::NextStep);
        assert_eq!(job_after_step(R::IgnoreError, false), JobNext::NextStep);
        assert_eq!(job_after_step(R::Fail, false), JobNext::Finish(R::Fail));
        assert_eq!(
            job_after_step(R::StopSuccess, true),
            JobNext::Finish(R::Terminated)
        );
    }

    #[test]
    fn retries() {
        let prev = [
            (1, H::Success),
            (2, H::ScriptNonZeroExit),
            (3, H::LastSuccess),
            (4, H::AgentAbnormal),
        ];
        assert_eq!(
            retry_plan(RetryMode::Failed, &prev),
            vec![
                (1, H::LastSuccess),
                (2, H::Waiting),
                (3, H::LastSuccess),
                (4, H::Waiting)
            ]
        );
        assert!(
            retry_plan(RetryMode::All, &prev)
                .iter()
                .all(|(_, s)| *s == H::Waiting)
        );
        assert!(can_retry(R::Fail) && !can_retry(R::Running));
        assert!(can_terminate(R::Running) && !can_terminate(R::Success));
    }
}
