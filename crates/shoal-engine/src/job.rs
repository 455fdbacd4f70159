//! Jobs and their steps: [`decide`] takes a job's state and a [`Command`] and returns the
//! [`Decision`] (transitions to store, actions to perform) or a [`Rejection`].

use shoal_types::api::RetryMode;
use shoal_types::{HostId, HostTaskStatus, JobId, RunStatus, StepId};
use std::collections::HashSet;

/// A step as the engine needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepState {
    pub id: StepId,
    pub status: RunStatus,
    /// The current attempt, from 0.
    pub attempt: u32,
}

/// A job and its steps, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub id: JobId,
    pub status: RunStatus,
    pub steps: Vec<StepState>,
}

/// What happened, or what is asked of a job.
#[derive(Clone, Copy, Debug)]
pub enum Command<'a> {
    /// Results of a step's current attempt were stored; `counts` are its tasks by status.
    Progress {
        step_id: StepId,
        counts: &'a [(HostTaskStatus, u64)],
    },
    /// Stop the job: its running step stops, later steps never start.
    Terminate,
    /// Pick up a live job none of whose steps is live: a server stopped between ending one
    /// step and starting the next (or ending the job). Does what should have followed.
    Resume,
    /// Run an ended step again: `previous` are the hosts of its current attempt and how they
    /// ended; `connected` the hosts whose agent is connected now.
    Retry {
        step_id: StepId,
        mode: RetryMode,
        previous: &'a [(HostId, HostTaskStatus)],
        connected: &'a HashSet<HostId>,
    },
}

/// What the lease on a step does in a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    Keep,
    /// This server takes the lease (the step starts).
    Take,
    /// The lease is released (the step ended).
    Release,
}

/// A compare-and-set to store. When one does not apply (the state moved under us), the rest
/// of the decision is dropped: the next command decides again from the stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    Job {
        from: Vec<RunStatus>,
        to: RunStatus,
        /// Sets `ended_at` to now.
        end: bool,
    },
    Step {
        step_id: StepId,
        from: Vec<RunStatus>,
        to: RunStatus,
        /// Sets `started_at` to now.
        start: bool,
        /// Sets `ended_at` to now.
        end: bool,
        lease: Lease,
    },
    /// A new attempt of a step, in one transaction: the attempt number moves on from
    /// `expected_attempt`, the task rows are inserted, and the step and its job take `status`.
    Attempt {
        step_id: StepId,
        expected_attempt: u32,
        status: RunStatus,
        tasks: Vec<(HostId, HostTaskStatus)>,
    },
}

/// Work the server does once the transitions before it are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the attempt's waiting tasks to their hosts (hosts without an agent end as agent
    /// abnormal).
    Dispatch { step_id: StepId, attempt: u32 },
    /// Kill the attempt's running tasks; tasks not sent yet end as terminated.
    Stop { step_id: StepId, attempt: u32 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub transitions: Vec<Transition>,
    pub actions: Vec<Action>,
}

/// Why a command cannot apply to the job as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("step {0} is not part of the job")]
    UnknownStep(StepId),
    #[error("the job is already stopping")]
    AlreadyStopping,
    #[error("the job has ended ({0}); nothing to terminate")]
    Ended(RunStatus),
    #[error("the step is {0}; only an ended step can be retried")]
    NotRetryable(RunStatus),
    #[error("a later step of the job has run; only the job's last run step can be retried")]
    LaterStepRan,
    #[error("every host already succeeded; nothing to retry")]
    NothingToRetry,
}

/// Decides what `command` does to `job`.
pub fn decide(job: &JobState, command: Command<'_>) -> Result<Decision, Rejection> {
    match command {
        Command::Progress { step_id, counts } => progress(job, step_id, counts),
        Command::Terminate => terminate(job),
        Command::Resume => resume(job),
        Command::Retry {
            step_id,
            mode,
            previous,
            connected,
        } => retry(job, step_id, mode, previous, connected),
    }
}

fn find(job: &JobState, step_id: StepId) -> Result<(usize, &StepState), Rejection> {
    job.steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == step_id)
        .ok_or(Rejection::UnknownStep(step_id))
}

fn progress(
    job: &JobState,
    step_id: StepId,
    counts: &[(HostTaskStatus, u64)],
) -> Result<Decision, Rejection> {
    let (index, step) = find(job, step_id)?;
    let mut d = Decision::default();
    let Some(status) = settle_step(step.status, counts) else {
        return Ok(d);
    };
    d.transitions.push(Transition::Step {
        step_id,
        from: vec![RunStatus::Running, RunStatus::Stopping],
        to: status,
        start: false,
        end: true,
        lease: Lease::Release,
    });
    after_step(job, index, status, &mut d);
    Ok(d)
}

/// The job ends with `to`.
fn end_job(to: RunStatus) -> Transition {
    Transition::Job {
        from: RunStatus::LIVE.to_vec(),
        to,
        end: true,
    }
}

/// A blank step starts: this server takes its lease and dispatches its current attempt.
fn start_step(step: &StepState, d: &mut Decision) {
    d.transitions.push(Transition::Step {
        step_id: step.id,
        from: vec![RunStatus::Blank],
        to: RunStatus::Running,
        start: true,
        end: false,
        lease: Lease::Take,
    });
    d.actions.push(Action::Dispatch {
        step_id: step.id,
        attempt: step.attempt,
    });
}

/// What follows step `index` ending with `status`: the next step starts, or the job ends.
fn after_step(job: &JobState, index: usize, status: RunStatus, d: &mut Decision) {
    let next = job.steps.get(index + 1);
    let mut end = job_after_step(status, next.is_none());
    if end.is_none() && job.status == RunStatus::Stopping {
        // A terminate that came between two steps ends the job instead.
        end = Some(RunStatus::Terminated);
    }
    match (end, next) {
        (Some(status), _) => d.transitions.push(end_job(status)),
        (None, Some(next)) => start_step(next, d),
        (None, None) => d.transitions.push(end_job(RunStatus::Success)),
    }
}

fn resume(job: &JobState) -> Result<Decision, Rejection> {
    let mut d = Decision::default();
    let step_live =
        |s: &StepState| RunStatus::LIVE.contains(&s.status) && s.status != RunStatus::Blank;
    if !RunStatus::LIVE.contains(&job.status) || job.steps.iter().any(step_live) {
        return Ok(d);
    }
    match job.steps.iter().rposition(|s| s.status != RunStatus::Blank) {
        Some(index) => after_step(job, index, job.steps[index].status, &mut d),
        // Nothing has run: the first step starts (a job created without starting it), unless
        // the job is being terminated.
        None => match job.steps.first() {
            Some(first) if job.status != RunStatus::Stopping => start_step(first, &mut d),
            _ => d.transitions.push(end_job(RunStatus::Terminated)),
        },
    }
    Ok(d)
}

fn terminate(job: &JobState) -> Result<Decision, Rejection> {
    if job.status == RunStatus::Stopping {
        return Err(Rejection::AlreadyStopping);
    }
    if !can_terminate(job.status) {
        return Err(Rejection::Ended(job.status));
    }
    let mut d = Decision::default();
    let running = job
        .steps
        .iter()
        .find(|s| matches!(s.status, RunStatus::Running | RunStatus::WaitingUser));
    match running {
        Some(step) => {
            d.transitions.push(Transition::Job {
                from: RunStatus::LIVE.to_vec(),
                to: RunStatus::Stopping,
                end: false,
            });
            d.transitions.push(Transition::Step {
                step_id: step.id,
                from: vec![step.status],
                to: RunStatus::Stopping,
                start: false,
                end: false,
                lease: Lease::Keep,
            });
            d.actions.push(Action::Stop {
                step_id: step.id,
                attempt: step.attempt,
            });
        }
        // No step is running (none has started): the job ends at once.
        None => d.transitions.push(end_job(RunStatus::Terminated)),
    }
    Ok(d)
}

fn retry(
    job: &JobState,
    step_id: StepId,
    mode: RetryMode,
    previous: &[(HostId, HostTaskStatus)],
    connected: &HashSet<HostId>,
) -> Result<Decision, Rejection> {
    let (index, step) = find(job, step_id)?;
    if !can_retry(step.status) {
        return Err(Rejection::NotRetryable(step.status));
    }
    if job.steps[index + 1..]
        .iter()
        .any(|s| s.status != RunStatus::Blank)
    {
        return Err(Rejection::LaterStepRan);
    }
    let mut tasks = retry_plan(mode, previous);
    if !tasks.iter().any(|(_, s)| *s == HostTaskStatus::Waiting) {
        return Err(Rejection::NothingToRetry);
    }
    for (host, status) in &mut tasks {
        if *status == HostTaskStatus::Waiting {
            *status = initial_status(connected.contains(host));
        }
    }
    Ok(Decision {
        transitions: vec![Transition::Attempt {
            step_id,
            expected_attempt: step.attempt,
            status: RunStatus::Running,
            tasks,
        }],
        actions: vec![Action::Dispatch {
            step_id,
            attempt: step.attempt + 1,
        }],
    })
}

/// The status a task starts in: waiting for its agent, or agent abnormal without one.
pub fn initial_status(connected: bool) -> HostTaskStatus {
    if connected {
        HostTaskStatus::Waiting
    } else {
        HostTaskStatus::AgentAbnormal
    }
}

/// What a step's tasks say about the step, given the step's current status: the terminal
/// status it moves to, or `None` while any host is still waiting or running.
pub fn settle_step(current: RunStatus, counts: &[(HostTaskStatus, u64)]) -> Option<RunStatus> {
    if !matches!(current, RunStatus::Running | RunStatus::Stopping) {
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

/// The job's end after one of its steps ended with `step_status`, or `None` when the next
/// step starts.
pub fn job_after_step(step_status: RunStatus, is_last_step: bool) -> Option<RunStatus> {
    match step_status {
        RunStatus::Success | RunStatus::Skipped | RunStatus::IgnoreError if !is_last_step => None,
        RunStatus::Success | RunStatus::Skipped | RunStatus::IgnoreError => {
            Some(RunStatus::Success)
        }
        RunStatus::StopSuccess | RunStatus::Terminated => Some(RunStatus::Terminated),
        RunStatus::AbnormalState => Some(RunStatus::AbnormalState),
        RunStatus::Abandoned => Some(RunStatus::Abandoned),
        RunStatus::ConfirmTerminated => Some(RunStatus::ConfirmTerminated),
        _ => Some(RunStatus::Fail),
    }
}

fn can_terminate(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Blank | RunStatus::Running | RunStatus::WaitingUser
    )
}

fn can_retry(status: RunStatus) -> bool {
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
mod tests;
