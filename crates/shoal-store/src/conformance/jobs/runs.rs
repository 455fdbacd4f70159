//! Cases for running jobs and steps: compare-and-set transitions, leases, new attempts.

use crate::conformance::{
    add_host, all_tasks, key, labels, new_job, one_step_job, result, script_step, waiting,
};
use crate::prelude::*;
use crate::{Error, JobTransition, NewAttempt, StepTransition, TaskBatch, TaskUpdate};
use shoal_types::{DEFAULT_SCOPE, HostId, HostTaskStatus, RunStatus};

/// Job and step transitions are compare-and-set; timestamps and leases change as asked.
pub async fn transitions_are_compare_and_set(store: &dyn Store) {
    let mut job = new_job("j", vec![script_step("s", waiting(&[1]))]);
    job.start = false;
    job.steps[0].status = RunStatus::Blank;
    let created = store.create_job(job).await.expect("create_job");
    let (job_id, step_id) = (created.job_id, created.step_ids[0]);

    let start = JobTransition {
        job_id,
        from: vec![RunStatus::Blank],
        to: RunStatus::Running,
        started_at: Some(11_000),
        ended_at: None,
    };
    assert!(store.transition_job(&start).await.expect("transition"));
    assert!(
        !store.transition_job(&start).await.expect("transition"),
        "not blank any more"
    );
    let no_from = JobTransition {
        from: vec![],
        ..start.clone()
    };
    assert!(!store.transition_job(&no_from).await.expect("transition"));
    let missing = JobTransition {
        job_id: 9_999_999,
        ..start.clone()
    };
    assert!(!store.transition_job(&missing).await.expect("transition"));

    let end = JobTransition {
        job_id,
        from: vec![RunStatus::Running, RunStatus::Stopping],
        to: RunStatus::Success,
        started_at: Some(99_000),
        ended_at: Some(Some(12_000)),
    };
    assert!(store.transition_job(&end).await.expect("transition"));
    let got = store
        .get_job(job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!(got.status, RunStatus::Success);
    assert_eq!(got.started_at, Some(11_000), "started_at is set once");
    assert_eq!(got.ended_at, Some(12_000));
    let restart = JobTransition {
        job_id,
        from: vec![RunStatus::Success],
        to: RunStatus::Running,
        started_at: None,
        ended_at: Some(None),
    };
    assert!(store.transition_job(&restart).await.expect("transition"));
    let got = store
        .get_job(job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!(
        (got.status, got.started_at, got.ended_at),
        (RunStatus::Running, Some(11_000), None)
    );

    let run = StepTransition {
        step_id,
        from: vec![RunStatus::Blank],
        to: RunStatus::Running,
        started_at: Some(11_500),
        ended_at: None,
        owner: Some(Some(("server-a".to_string(), 50_000))),
    };
    assert!(store.transition_step(&run).await.expect("transition"));
    assert!(!store.transition_step(&run).await.expect("transition"));
    let step = store
        .get_step(step_id)
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(
        (step.status, step.started_at, step.ended_at),
        (RunStatus::Running, Some(11_500), None)
    );
    assert_eq!(
        (step.owner.as_deref(), step.lease_until),
        (Some("server-a"), Some(50_000))
    );

    // Without `owner` the lease stays; `Some(None)` releases it.
    let stop = StepTransition {
        step_id,
        from: vec![RunStatus::Running],
        to: RunStatus::Stopping,
        started_at: None,
        ended_at: None,
        owner: None,
    };
    assert!(store.transition_step(&stop).await.expect("transition"));
    let step = store
        .get_step(step_id)
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(
        (step.status, step.owner.as_deref()),
        (RunStatus::Stopping, Some("server-a"))
    );
    let done = StepTransition {
        step_id,
        from: vec![RunStatus::Stopping],
        to: RunStatus::StopSuccess,
        started_at: None,
        ended_at: Some(Some(13_000)),
        owner: Some(None),
    };
    assert!(store.transition_step(&done).await.expect("transition"));
    let step = store
        .get_step(step_id)
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(
        (step.status, step.ended_at),
        (RunStatus::StopSuccess, Some(13_000))
    );
    assert_eq!(
        (step.owner, step.lease_until, step.started_at),
        (None, None, Some(11_500))
    );
}

/// Running and stopping steps are claimed when free, kept by their owner while the lease
/// lasts, renewed by the owner, and taken over once the lease has ended.
pub async fn claim_and_renew_leases(store: &dyn Store) {
    let mut steps = vec![
        script_step("running", waiting(&[1])),
        script_step("stopping", waiting(&[1])),
        script_step("blank", waiting(&[1])),
        script_step("owned", waiting(&[1])),
    ];
    steps[1].status = RunStatus::Stopping;
    steps[2].status = RunStatus::Blank;
    steps[3].owner = Some("b".to_string());
    steps[3].lease_until = Some(30_000);
    let created = store
        .create_job(new_job("j", steps))
        .await
        .expect("create_job");
    let ids = created.step_ids.clone();
    let mut done = new_job("finished", vec![script_step("s", waiting(&[1]))]);
    done.steps[0].status = RunStatus::Success;
    store.create_job(done).await.expect("create_job");

    let claim = |owner: &'static str, now: i64, until: i64| async move {
        let steps = store
            .claim_steps(owner, now, until)
            .await
            .expect("claim_steps");
        for s in &steps {
            assert_eq!(
                (s.owner.as_deref(), s.lease_until),
                (Some(owner), Some(until))
            );
        }
        steps.iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(claim("a", 20_000, 40_000).await, vec![ids[0], ids[1]]);
    assert_eq!(
        claim("c", 25_000, 45_000).await,
        Vec::<i64>::new(),
        "leases still held"
    );
    assert_eq!(
        claim("b", 25_000, 45_000).await,
        vec![ids[3]],
        "an owner re-claims its own"
    );

    assert_eq!(store.renew_leases("a", 60_000).await.expect("renew"), 2);
    assert_eq!(
        store.renew_leases("nobody", 60_000).await.expect("renew"),
        0
    );
    let step = store
        .get_step(ids[0])
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(step.lease_until, Some(60_000));

    // b's lease (45_000) ends; a's (60_000) does not.
    assert_eq!(claim("c", 50_000, 80_000).await, vec![ids[3]]);
    assert_eq!(
        claim("c", 60_001, 90_000).await,
        vec![ids[0], ids[1], ids[3]]
    );
    let blank = store
        .get_step(ids[2])
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(blank.owner, None);
}

/// `start_attempt` fences on the expected attempt, adds the new attempt's tasks, and sets
/// the step and job running again; earlier attempts keep their rows.
pub async fn start_attempt_checks_expected_attempt(store: &dyn Store) {
    let h = add_host(store, DEFAULT_SCOPE, "a", &["10.0.0.1"], labels(&[]))
        .await
        .id;
    let (created, step_id) = one_step_job(store, &[h, 2]).await;
    let mut batch = TaskBatch::default();
    batch.updates.push(TaskUpdate::Finished(result(
        key(step_id, 0, h),
        HostTaskStatus::Failed,
        Some(1),
    )));
    batch.updates.push(TaskUpdate::Finished(result(
        key(step_id, 0, 2),
        HostTaskStatus::Success,
        Some(0),
    )));
    store.apply_task_batch(&batch).await.expect("apply");
    let step_end = StepTransition {
        step_id,
        from: vec![RunStatus::Running],
        to: RunStatus::Fail,
        started_at: None,
        ended_at: Some(Some(30_000)),
        owner: Some(None),
    };
    assert!(store.transition_step(&step_end).await.expect("transition"));
    let job_end = JobTransition {
        job_id: created.job_id,
        from: vec![RunStatus::Running],
        to: RunStatus::Fail,
        started_at: None,
        ended_at: Some(Some(30_000)),
    };
    assert!(store.transition_job(&job_end).await.expect("transition"));

    let mut attempt = NewAttempt {
        status: RunStatus::Running,
        step_id,
        expected_attempt: 1,
        now: 40_000,
        owner: "server-a".to_string(),
        lease_until: 70_000,
        tasks: vec![
            (h, HostTaskStatus::Waiting),
            (2, HostTaskStatus::LastSuccess),
        ],
    };
    let wrong = store.start_attempt(&attempt).await;
    assert!(matches!(wrong, Err(Error::Conflict(_))), "{wrong:?}");
    let missing = store
        .start_attempt(&NewAttempt {
            step_id: 9_999_999,
            ..attempt.clone()
        })
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

    attempt.expected_attempt = 0;
    store.start_attempt(&attempt).await.expect("start_attempt");
    let again = store.start_attempt(&attempt).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    let step = store
        .get_step(step_id)
        .await
        .expect("get_step")
        .expect("exists");
    assert_eq!(
        (step.attempt, step.status, step.ended_at),
        (1, RunStatus::Running, None)
    );
    assert_eq!(
        (step.owner.as_deref(), step.lease_until),
        (Some("server-a"), Some(70_000))
    );
    let job = store
        .get_job(created.job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!(
        (job.status, job.ended_at, job.started_at),
        (RunStatus::Running, None, Some(10_000))
    );

    let new_rows = all_tasks(store, step_id, 1).await;
    let got: Vec<(HostId, HostTaskStatus)> =
        new_rows.iter().map(|t| (t.host_id, t.status)).collect();
    assert_eq!(
        got,
        vec![
            (h, HostTaskStatus::Waiting),
            (2, HostTaskStatus::LastSuccess)
        ]
    );
    assert_eq!(new_rows[0].ip, "10.0.0.1");
    let old_rows = all_tasks(store, step_id, 0).await;
    let got: Vec<(HostId, HostTaskStatus)> =
        old_rows.iter().map(|t| (t.host_id, t.status)).collect();
    assert_eq!(
        got,
        vec![(h, HostTaskStatus::Failed), (2, HostTaskStatus::Success)]
    );
    let counts = store.task_counts(step_id, 1).await.expect("task_counts");
    assert_eq!(
        counts,
        vec![
            (HostTaskStatus::LastSuccess, 1),
            (HostTaskStatus::Waiting, 1)
        ]
    );
    let open = store.open_tasks(&[step_id]).await.expect("open_tasks");
    assert_eq!(
        open.iter().map(|t| t.key).collect::<Vec<_>>(),
        vec![key(step_id, 1, h)]
    );
}

/// A live job none of whose steps is live is stalled; a job with a live step, or an ended
/// job, is not. Oldest first, at most the limit.
pub async fn stalled_jobs_have_no_live_step(store: &dyn Store) {
    let step = |status| {
        let mut s = script_step("s", waiting(&[]));
        s.status = status;
        s
    };
    let job = |steps| async move { store.create_job(new_job("j", steps)).await.expect("job") };
    let between = job(vec![step(RunStatus::Success), step(RunStatus::Blank)]).await;
    let running = job(vec![step(RunStatus::Success), step(RunStatus::Running)]).await;
    let ended = job(vec![step(RunStatus::Fail), step(RunStatus::Blank)]).await;
    let stopping = job(vec![step(RunStatus::Stopping)]).await;
    let after_stop = job(vec![step(RunStatus::StopSuccess)]).await;
    // `ended` has ended its job too; `after_stop`'s job is still live.
    let end = JobTransition {
        job_id: ended.job_id,
        from: RunStatus::LIVE.to_vec(),
        to: RunStatus::Fail,
        started_at: None,
        ended_at: Some(Some(20_000)),
    };
    assert!(store.transition_job(&end).await.expect("transition"));
    let _ = (running, stopping);
    assert_eq!(
        store.stalled_jobs(10).await.expect("stalled"),
        vec![between.job_id, after_stop.job_id]
    );
    assert_eq!(
        store.stalled_jobs(1).await.expect("stalled"),
        vec![between.job_id]
    );
}
