//! Transition tables: for each command against each relevant job state, the exact transitions
//! and actions (or the rejection) the engine returns.

use super::*;
use HostTaskStatus as H;
use RunStatus as R;

fn job(status: R, steps: &[(R, u32)]) -> JobState {
    JobState {
        id: 7,
        status,
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, &(status, attempt))| StepState {
                id: 100 + i as StepId,
                status,
                attempt,
            })
            .collect(),
    }
}

fn live() -> Vec<R> {
    R::LIVE.to_vec()
}

fn end_step(step_id: StepId, to: R) -> Transition {
    Transition::Step {
        step_id,
        from: vec![R::Running, R::Stopping],
        to,
        start: false,
        end: true,
        lease: Lease::Release,
    }
}

fn end_job(to: R) -> Transition {
    Transition::Job {
        from: live(),
        to,
        end: true,
    }
}

fn start_step(step_id: StepId) -> Transition {
    Transition::Step {
        step_id,
        from: vec![R::Blank],
        to: R::Running,
        start: true,
        end: false,
        lease: Lease::Take,
    }
}

fn progress(j: &JobState, step_id: StepId, counts: &[(H, u64)]) -> Decision {
    decide(j, Command::Progress { step_id, counts }).expect("progress is never rejected")
}

/// The step's status, its tasks by status, and the status it settles to.
type SettleCase<'a> = (R, &'a [(H, u64)], Option<R>);

#[test]
fn settling_steps() {
    let table: &[SettleCase] = &[
        (R::Running, &[(H::Success, 3)], Some(R::Success)),
        (
            R::Running,
            &[(H::Success, 2), (H::LastSuccess, 1)],
            Some(R::Success),
        ),
        (R::Running, &[(H::Success, 2), (H::Running, 1)], None),
        (R::Running, &[(H::Success, 2), (H::Waiting, 1)], None),
        (
            R::Running,
            &[(H::Success, 2), (H::Waiting, 0)],
            Some(R::Success),
        ),
        (
            R::Running,
            &[(H::Success, 2), (H::ScriptNonZeroExit, 1)],
            Some(R::Fail),
        ),
        (R::Running, &[(H::AgentAbnormal, 1)], Some(R::Fail)),
        (
            R::Stopping,
            &[(H::ScriptTerminated, 2), (H::Success, 1)],
            Some(R::StopSuccess),
        ),
        (R::Stopping, &[(H::Running, 1)], None),
        (R::Success, &[(H::Success, 1)], None),
        (R::Blank, &[(H::Success, 1)], None),
        (R::Running, &[], Some(R::Success)),
    ];
    for (current, counts, expected) in table {
        assert_eq!(
            settle_step(*current, counts),
            *expected,
            "{current:?} {counts:?}"
        );
    }
}

#[test]
fn jobs_follow_steps() {
    let table = [
        (R::Success, true, Some(R::Success)),
        (R::Success, false, None),
        (R::IgnoreError, false, None),
        (R::Skipped, true, Some(R::Success)),
        (R::Fail, false, Some(R::Fail)),
        (R::StopSuccess, true, Some(R::Terminated)),
        (R::StopSuccess, false, Some(R::Terminated)),
        (R::AbnormalState, false, Some(R::AbnormalState)),
    ];
    for (step, last, expected) in table {
        assert_eq!(job_after_step(step, last), expected, "{step:?} last={last}");
    }
}

#[test]
fn progress_of_a_step_still_running_changes_nothing() {
    let j = job(R::Running, &[(R::Running, 0)]);
    assert_eq!(
        progress(&j, 100, &[(H::Running, 1), (H::Success, 1)]),
        Decision::default()
    );
}

#[test]
fn the_last_step_ending_ends_the_job() {
    let table = [
        (R::Running, &[(H::Success, 2)][..], R::Success, R::Success),
        (R::Running, &[(H::ScriptFailed, 1)][..], R::Fail, R::Fail),
        (
            R::Stopping,
            &[(H::ScriptTerminated, 1)][..],
            R::StopSuccess,
            R::Terminated,
        ),
    ];
    for (step_status, counts, step_end, job_end) in table {
        let j = job(R::Running, &[(R::Success, 0), (step_status, 0)]);
        assert_eq!(
            progress(&j, 101, counts),
            Decision {
                transitions: vec![end_step(101, step_end), end_job(job_end)],
                actions: vec![],
            },
            "{step_status:?} {counts:?}"
        );
    }
}

#[test]
fn a_successful_step_starts_the_next() {
    let j = job(R::Running, &[(R::Running, 0), (R::Blank, 0), (R::Blank, 0)]);
    assert_eq!(
        progress(&j, 100, &[(H::Success, 3)]),
        Decision {
            transitions: vec![end_step(100, R::Success), start_step(101)],
            actions: vec![Action::Dispatch {
                step_id: 101,
                attempt: 0
            }],
        }
    );
    // A retried step that succeeds goes on with the step after it.
    let j = job(R::Running, &[(R::Running, 2), (R::Blank, 0)]);
    assert_eq!(
        progress(&j, 100, &[(H::Success, 1), (H::LastSuccess, 1)]).actions,
        vec![Action::Dispatch {
            step_id: 101,
            attempt: 0
        }]
    );
}

#[test]
fn a_failed_step_ends_the_job_and_later_steps_never_start() {
    let j = job(R::Running, &[(R::Running, 0), (R::Blank, 0)]);
    assert_eq!(
        progress(&j, 100, &[(H::Success, 1), (H::ScriptNonZeroExit, 1)]),
        Decision {
            transitions: vec![end_step(100, R::Fail), end_job(R::Fail)],
            actions: vec![],
        }
    );
}

#[test]
fn a_terminate_between_steps_ends_the_job() {
    let j = job(R::Stopping, &[(R::Running, 0), (R::Blank, 0)]);
    assert_eq!(
        progress(&j, 100, &[(H::Success, 1)]).transitions,
        vec![end_step(100, R::Success), end_job(R::Terminated)]
    );
}

#[test]
fn progress_of_an_unknown_step_is_rejected() {
    let j = job(R::Running, &[(R::Running, 0)]);
    assert_eq!(
        decide(
            &j,
            Command::Progress {
                step_id: 9,
                counts: &[]
            }
        ),
        Err(Rejection::UnknownStep(9))
    );
}

#[test]
fn terminating() {
    // The running step stops; later steps stay blank.
    let j = job(
        R::Running,
        &[(R::Success, 0), (R::Running, 1), (R::Blank, 0)],
    );
    assert_eq!(
        decide(&j, Command::Terminate),
        Ok(Decision {
            transitions: vec![
                Transition::Job {
                    from: live(),
                    to: R::Stopping,
                    end: false
                },
                Transition::Step {
                    step_id: 101,
                    from: vec![R::Running],
                    to: R::Stopping,
                    start: false,
                    end: false,
                    lease: Lease::Keep,
                },
            ],
            actions: vec![Action::Stop {
                step_id: 101,
                attempt: 1
            }],
        })
    );
    // A job with no step started ends at once.
    let j = job(R::Blank, &[(R::Blank, 0)]);
    assert_eq!(
        decide(&j, Command::Terminate),
        Ok(Decision {
            transitions: vec![end_job(R::Terminated)],
            actions: vec![],
        })
    );
    let table = [
        (R::Stopping, Rejection::AlreadyStopping),
        (R::Success, Rejection::Ended(R::Success)),
        (R::Fail, Rejection::Ended(R::Fail)),
        (R::Terminated, Rejection::Ended(R::Terminated)),
    ];
    for (status, rejection) in table {
        let j = job(status, &[(R::Success, 0)]);
        assert_eq!(decide(&j, Command::Terminate), Err(rejection), "{status:?}");
    }
}

fn retry(
    j: &JobState,
    step_id: StepId,
    mode: RetryMode,
    previous: &[(HostId, H)],
    connected: &[HostId],
) -> Result<Decision, Rejection> {
    let connected: HashSet<HostId> = connected.iter().copied().collect();
    decide(
        j,
        Command::Retry {
            step_id,
            mode,
            previous,
            connected: &connected,
        },
    )
}

#[test]
fn retrying() {
    let previous = [
        (1, H::Success),
        (2, H::ScriptNonZeroExit),
        (3, H::LastSuccess),
        (4, H::AgentAbnormal),
    ];
    let j = job(R::Fail, &[(R::Fail, 0), (R::Blank, 0)]);
    // Failed hosts only; a host without its agent starts as agent abnormal.
    assert_eq!(
        retry(&j, 100, RetryMode::Failed, &previous, &[1, 2, 3]),
        Ok(Decision {
            transitions: vec![Transition::Attempt {
                step_id: 100,
                expected_attempt: 0,
                status: R::Running,
                tasks: vec![
                    (1, H::LastSuccess),
                    (2, H::Waiting),
                    (3, H::LastSuccess),
                    (4, H::AgentAbnormal)
                ],
            }],
            actions: vec![Action::Dispatch {
                step_id: 100,
                attempt: 1
            }],
        })
    );
    let Ok(all) = retry(&j, 100, RetryMode::All, &previous, &[1, 2, 3, 4]) else {
        panic!("retry all is accepted");
    };
    let Transition::Attempt { tasks, .. } = &all.transitions[0] else {
        panic!("an attempt");
    };
    assert!(tasks.iter().all(|(_, s)| *s == H::Waiting));

    let table = [
        (
            job(R::Running, &[(R::Running, 0)]),
            100,
            Rejection::NotRetryable(R::Running),
        ),
        (
            job(R::Fail, &[(R::Success, 0), (R::Fail, 0)]),
            100,
            Rejection::LaterStepRan,
        ),
        (job(R::Fail, &[(R::Fail, 0)]), 5, Rejection::UnknownStep(5)),
    ];
    for (j, step_id, rejection) in table {
        assert_eq!(
            retry(&j, step_id, RetryMode::All, &previous, &[]),
            Err(rejection.clone()),
            "{rejection}"
        );
    }
    let j = job(R::Success, &[(R::Success, 0)]);
    assert_eq!(
        retry(&j, 100, RetryMode::Failed, &[(1, H::Success)], &[1]),
        Err(Rejection::NothingToRetry)
    );
}

#[test]
fn resuming_a_stalled_job_does_what_should_have_followed() {
    let resume = |j: &JobState| decide(j, Command::Resume).expect("resume is never rejected");
    // Step 1 ended successfully, step 2 never started: it starts now.
    let j = job(R::Running, &[(R::Success, 0), (R::Blank, 0)]);
    assert_eq!(
        resume(&j),
        Decision {
            transitions: vec![start_step(101)],
            actions: vec![Action::Dispatch {
                step_id: 101,
                attempt: 0
            }],
        }
    );
    let table = [
        // The last step ended: the job ends as it says.
        (
            job(R::Running, &[(R::Success, 0), (R::Success, 0)]),
            R::Success,
        ),
        (job(R::Running, &[(R::Success, 0), (R::Fail, 1)]), R::Fail),
        (job(R::Running, &[(R::Fail, 0), (R::Blank, 0)]), R::Fail),
        (
            job(R::Stopping, &[(R::StopSuccess, 0), (R::Blank, 0)]),
            R::Terminated,
        ),
        // A terminate between two steps.
        (
            job(R::Stopping, &[(R::Success, 0), (R::Blank, 0)]),
            R::Terminated,
        ),
        (job(R::Stopping, &[(R::Blank, 0)]), R::Terminated),
    ];
    for (j, end) in table {
        assert_eq!(
            resume(&j),
            Decision {
                transitions: vec![end_job(end)],
                actions: vec![],
            },
            "{j:?}"
        );
    }
    // Nothing to do while a step is live (its owner settles it) or once the job ended.
    for j in [
        job(R::Running, &[(R::Success, 0), (R::Running, 0)]),
        job(R::Stopping, &[(R::Stopping, 0)]),
        job(R::Success, &[(R::Success, 0)]),
    ] {
        assert_eq!(resume(&j), Decision::default(), "{j:?}");
    }
    // A job created without starting starts its first step.
    let j = job(R::Blank, &[(R::Blank, 0), (R::Blank, 0)]);
    assert_eq!(resume(&j).transitions, vec![start_step(100)]);
}
