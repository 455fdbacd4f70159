//! Cases of [`JobStore`](crate::JobStore): creation (small and 10,000 hosts) and history
//! queries; transitions, leases and attempts in `runs`.

mod runs;

pub use runs::*;

use super::{all_tasks, key, new_job, one_step_job, result, script_step, waiting};
use crate::prelude::*;
use crate::{Error, JobFilter, JobTransition, Page, TaskBatch, TaskUpdate};
use shoal_types::{
    DEFAULT_SCOPE, HostId, HostTaskStatus, JobType, LaunchMode, RunStatus, StepType,
};

/// A job, its steps (in order, with specs) and their tasks read back as created.
pub async fn create_job_and_read_back(store: &dyn Store) {
    let mut first = script_step("first", waiting(&[11, 12, 13]));
    first.tasks.push((14, HostTaskStatus::AgentAbnormal));
    first.owner = Some("server-a".to_string());
    first.lease_until = Some(70_000);
    let mut second = script_step("second", waiting(&[11]));
    second.status = RunStatus::Blank;
    second.step_type = StepType::Confirm;
    second.spec = serde_json::json!({"message": "go?", "nested": [1, 2, {"x": null}]});
    let created = store
        .create_job(new_job("deploy", vec![first, second]))
        .await
        .expect("create_job");
    assert_eq!(created.step_ids.len(), 2);

    let job = store
        .get_job(created.job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!(job.id, created.job_id);
    assert_eq!(job.scope_id, DEFAULT_SCOPE);
    assert_eq!(job.name, "deploy");
    assert_eq!(
        (job.job_type, job.launch_mode),
        (JobType::Script, LaunchMode::Api)
    );
    assert_eq!(job.operator, "alice");
    assert_eq!(job.status, RunStatus::Running);
    assert_eq!(
        (job.created_at, job.started_at, job.ended_at),
        (10_000, Some(10_000), None)
    );
    assert_eq!(job.host_count, 4);

    let steps = store.get_steps(created.job_id).await.expect("get_steps");
    assert_eq!(
        steps.iter().map(|s| s.id).collect::<Vec<_>>(),
        created.step_ids
    );
    assert_eq!(
        steps.iter().map(|s| s.ordinal).collect::<Vec<_>>(),
        vec![0, 1]
    );
    let (s0, s1) = (&steps[0], &steps[1]);
    assert_eq!(
        (s0.name.as_str(), s0.step_type, s0.status),
        ("first", StepType::Script, RunStatus::Running)
    );
    assert_eq!(
        (s0.attempt, s0.host_count, s0.job_id),
        (0, 4, created.job_id)
    );
    assert_eq!(
        (s0.owner.as_deref(), s0.lease_until),
        (Some("server-a"), Some(70_000))
    );
    assert_eq!(s0.spec["language"], "shell");
    assert_eq!(
        (s1.status, s1.step_type, s1.host_count),
        (RunStatus::Blank, StepType::Confirm, 1)
    );
    assert_eq!(
        s1.spec,
        serde_json::json!({"message": "go?", "nested": [1, 2, {"x": null}]})
    );
    assert_eq!((s1.owner.clone(), s1.lease_until), (None, None));
    assert_eq!(
        store.get_step(s1.id).await.expect("get_step").as_ref(),
        Some(s1)
    );
    assert_eq!(store.get_step(9_999_999).await.expect("get_step"), None);
    assert_eq!(store.get_job(9_999_999).await.expect("get_job"), None);
    assert!(
        store
            .get_steps(9_999_999)
            .await
            .expect("get_steps")
            .is_empty()
    );

    let tasks = all_tasks(store, s0.id, 0).await;
    let got: Vec<(HostId, HostTaskStatus, u64)> = tasks
        .iter()
        .map(|t| (t.host_id, t.status, t.log_len))
        .collect();
    assert_eq!(
        got,
        vec![
            (11, HostTaskStatus::Waiting, 0),
            (12, HostTaskStatus::Waiting, 0),
            (13, HostTaskStatus::Waiting, 0),
            (14, HostTaskStatus::AgentAbnormal, 0),
        ]
    );
    assert!(
        tasks
            .iter()
            .all(|t| t.exit_code.is_none() && t.started_at.is_none() && !t.truncated)
    );
    // A host whose agent was not connected says so; the others have no error.
    let errors: Vec<Option<&str>> = tasks.iter().map(|t| t.error.as_deref()).collect();
    assert_eq!(
        errors,
        vec![None, None, None, Some(crate::AGENT_NOT_CONNECTED)]
    );

    // A job created without starting waits.
    let mut idle = new_job("later", vec![script_step("s", waiting(&[1]))]);
    idle.start = false;
    let idle = store.create_job(idle).await.expect("create_job");
    let job = store
        .get_job(idle.job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!((job.status, job.started_at), (RunStatus::Blank, None));

    // The same host twice in one step is a conflict, and nothing of the job is kept.
    let bad = store
        .create_job(new_job("bad", vec![script_step("s", waiting(&[1, 1]))]))
        .await;
    assert!(matches!(bad, Err(Error::Conflict(_))), "{bad:?}");
    let page = store
        .list_jobs(&JobFilter::default(), Page::first(10))
        .await
        .expect("list_jobs");
    assert_eq!(page.total, 2);
}

/// 10,000 tasks in one step fit (statements are chunked under bind limits), and one batch
/// finishing all of them applies.
pub async fn create_job_with_10000_tasks(store: &dyn Store) {
    let hosts: Vec<HostId> = (1..=10_000).collect();
    let (created, step_id) = one_step_job(store, &hosts).await;
    let counts = store.task_counts(step_id, 0).await.expect("task_counts");
    assert_eq!(counts, vec![(HostTaskStatus::Waiting, 10_000)]);
    let job = store
        .get_job(created.job_id)
        .await
        .expect("get_job")
        .expect("exists");
    assert_eq!(job.host_count, 10_000);

    let mut batch = TaskBatch::default();
    for h in &hosts {
        let k = key(step_id, 0, *h);
        batch.chunks.push(super::chunk(k, 0, b"done\n"));
        batch
            .updates
            .push(TaskUpdate::Started { key: k, at: 15_000 });
        batch.updates.push(TaskUpdate::Finished(result(
            k,
            HostTaskStatus::Success,
            Some(0),
        )));
    }
    store
        .apply_task_batch(&batch)
        .await
        .expect("apply_task_batch");
    let counts = store.task_counts(step_id, 0).await.expect("task_counts");
    assert_eq!(counts, vec![(HostTaskStatus::Success, 10_000)]);
    let groups = store
        .result_groups(step_id, 0, crate::GroupBy::Status)
        .await
        .expect("result_groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].host_count, 10_000);
    let page = store
        .list_tasks(
            &super::task_filter(step_id, 0),
            Page {
                start: 9_990,
                length: 100,
            },
        )
        .await
        .expect("list_tasks");
    assert_eq!((page.total, page.data.len()), (10_000, 10));
    assert_eq!(page.data[9].host_id, 10_000);
    assert_eq!(page.data[9].log_len, 5);
    assert_eq!(page.data[9].started_at, Some(15_000));
    assert!(
        store
            .open_tasks(&[step_id])
            .await
            .expect("open_tasks")
            .is_empty()
    );
}

/// `list_jobs` filters by scope, time, status, operator, name and target hosts; newest first.
pub async fn list_jobs_filters_and_pages(store: &dyn Store) {
    let other = store.create_scope("other", 1).await.expect("create_scope");
    let mut ids = Vec::new();
    for i in 0..5i64 {
        let mut job = new_job(
            &format!("Deploy-{i}"),
            vec![script_step("s", waiting(&[100 + i, 200]))],
        );
        job.now = 1_000 * (i + 1);
        job.operator = if i % 2 == 0 { "alice" } else { "bob" }.to_string();
        if i == 4 {
            job.scope_id = other.id;
            job.name = "backup".to_string();
        }
        ids.push(store.create_job(job).await.expect("create_job").job_id);
    }
    let t = JobTransition {
        job_id: ids[1],
        from: vec![RunStatus::Running],
        to: RunStatus::Fail,
        started_at: None,
        ended_at: Some(Some(9_000)),
    };
    assert!(store.transition_job(&t).await.expect("transition_job"));

    let list = |f: JobFilter, page: Page| async move {
        let p = store.list_jobs(&f, page).await.expect("list_jobs");
        (p.data.iter().map(|j| j.id).collect::<Vec<_>>(), p.total)
    };
    let all = JobFilter::default();
    assert_eq!(
        list(all.clone(), Page::first(10)).await,
        (ids.iter().rev().copied().collect(), 5)
    );
    assert_eq!(
        list(
            all.clone(),
            Page {
                start: 1,
                length: 2
            }
        )
        .await,
        (vec![ids[3], ids[2]], 5)
    );
    assert_eq!(
        list(
            JobFilter {
                scope_id: Some(DEFAULT_SCOPE),
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[3], ids[2], ids[1], ids[0]], 4)
    );
    assert_eq!(
        list(
            JobFilter {
                created_from: Some(2_000),
                created_to: Some(3_000),
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[2], ids[1]], 2)
    );
    assert_eq!(
        list(
            JobFilter {
                statuses: vec![RunStatus::Fail, RunStatus::Success],
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[1]], 1)
    );
    assert_eq!(
        list(
            JobFilter {
                operator: Some("bob".to_string()),
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[3], ids[1]], 2)
    );
    // Name: substring, ignoring case.
    assert_eq!(
        list(
            JobFilter {
                name: Some("deploy-3".to_string()),
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[3]], 1)
    );
    assert_eq!(
        list(
            JobFilter {
                host_ids: Some(vec![102, 104]),
                ..all.clone()
            },
            Page::first(10)
        )
        .await,
        (vec![ids[4], ids[2]], 2)
    );
    assert_eq!(
        list(
            JobFilter {
                host_ids: Some(vec![200]),
                ..all.clone()
            },
            Page::first(1)
        )
        .await,
        (vec![ids[4]], 5)
    );
    assert_eq!(
        list(
            JobFilter {
                host_ids: Some(vec![]),
                ..all
            },
            Page::first(10)
        )
        .await,
        (vec![], 0)
    );
}

/// `list_jobs` with `scope_ids` keeps jobs of any listed scope (an empty list none), in the
/// total as in the page, newest first.
pub async fn list_jobs_by_scope_ids(store: &dyn Store) {
    let ops = store.create_scope("ops", 1).await.expect("create_scope").id;
    let dev = store.create_scope("dev", 1).await.expect("create_scope").id;
    let mut ids = Vec::new();
    for (i, scope_id) in [DEFAULT_SCOPE, ops, dev, ops].into_iter().enumerate() {
        let mut job = new_job(&format!("job-{i}"), vec![script_step("s", waiting(&[1]))]);
        job.scope_id = scope_id;
        job.now = 1_000 * (i as i64 + 1);
        ids.push(store.create_job(job).await.expect("create_job").job_id);
    }
    let list = |f: JobFilter, page: Page| async move {
        let p = store.list_jobs(&f, page).await.expect("list_jobs");
        (p.data.iter().map(|j| j.id).collect::<Vec<_>>(), p.total)
    };
    let only = |scope_ids: Vec<i64>| JobFilter {
        scope_ids: Some(scope_ids),
        ..JobFilter::default()
    };
    assert_eq!(
        list(only(vec![ops]), Page::first(10)).await,
        (vec![ids[3], ids[1]], 2)
    );
    assert_eq!(
        list(only(vec![DEFAULT_SCOPE, dev]), Page::first(10)).await,
        (vec![ids[2], ids[0]], 2)
    );
    assert_eq!(list(only(vec![]), Page::first(10)).await, (vec![], 0));
    assert_eq!(
        list(
            only(vec![ops, dev]),
            Page {
                start: 1,
                length: 1
            }
        )
        .await,
        (vec![ids[2]], 3)
    );
    let both = JobFilter {
        scope_id: Some(DEFAULT_SCOPE),
        ..only(vec![ops])
    };
    assert_eq!(list(both, Page::first(10)).await, (vec![], 0));
}
