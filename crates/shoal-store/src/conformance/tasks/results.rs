//! Cases for results: groups, counts, filtered task lists, open tasks.

use crate::conformance::{
    add_host, apply, chunk, finished, key, labels, one_step_job, result, task_filter,
};
use crate::prelude::*;
use crate::{GroupBy, GroupKey, Page, TaskBatch, TaskFilter, TaskUpdate};
use shoal_types::{DEFAULT_SCOPE, HostId, HostTaskStatus, StepId, TaskKey};

fn group(
    status: HostTaskStatus,
    exit_code: Option<i32>,
    tag: Option<&str>,
    digest: Option<&str>,
) -> GroupKey {
    GroupKey {
        status,
        exit_code,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    }
}

/// Sets up one step over hosts 1..=7 with mixed results; returns the step.
async fn mixed_results(store: &dyn Store) -> StepId {
    let (_, step) = one_step_job(store, &[1, 2, 3, 4, 5, 6, 7]).await;
    let with = |h: HostId, status, code, tag: Option<&str>, digest: Option<&str>| {
        let mut r = result(key(step, 0, h), status, code);
        r.tag = tag.map(str::to_string);
        r.digest = digest.map(str::to_string);
        finished(r)
    };
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![
                with(1, HostTaskStatus::Success, Some(0), None, Some("aa")),
                with(2, HostTaskStatus::Success, Some(0), None, Some("aa")),
                with(3, HostTaskStatus::Success, Some(0), Some("t"), Some("aa")),
                with(
                    4,
                    HostTaskStatus::ScriptNonZeroExit,
                    Some(2),
                    None,
                    Some("bb"),
                ),
                with(5, HostTaskStatus::AgentAbnormal, None, None, None),
                with(7, HostTaskStatus::Success, Some(0), None, Some("cc")),
            ],
        },
    )
    .await;
    step
}

async fn groups_of(store: &dyn Store, step: StepId, by: GroupBy) -> Vec<(GroupKey, u64, HostId)> {
    store
        .result_groups(step, 0, by)
        .await
        .expect("result_groups")
        .into_iter()
        .map(|g| (g.key, g.host_count, g.sample_host_id))
        .collect()
}

/// Result groups split by status, exit code and tag (NULLs equal; bk-job's grouping), and on
/// request by output digest too; biggest first, with the lowest member as sample; counts
/// match; the group filter selects exactly a group's hosts, any digest when it has none.
pub async fn result_groups_and_counts(store: &dyn Store) {
    let step = mixed_results(store).await;
    assert_eq!(
        groups_of(store, step, GroupBy::Status).await,
        vec![
            (group(HostTaskStatus::Success, Some(0), None, None), 3, 1),
            (group(HostTaskStatus::AgentAbnormal, None, None, None), 1, 5),
            (group(HostTaskStatus::Waiting, None, None, None), 1, 6),
            (
                group(HostTaskStatus::Success, Some(0), Some("t"), None),
                1,
                3
            ),
            (
                group(HostTaskStatus::ScriptNonZeroExit, Some(2), None, None),
                1,
                4
            ),
        ]
    );
    assert_eq!(
        groups_of(store, step, GroupBy::Output).await,
        vec![
            (
                group(HostTaskStatus::Success, Some(0), None, Some("aa")),
                2,
                1
            ),
            (group(HostTaskStatus::AgentAbnormal, None, None, None), 1, 5),
            (group(HostTaskStatus::Waiting, None, None, None), 1, 6),
            (
                group(HostTaskStatus::Success, Some(0), None, Some("cc")),
                1,
                7
            ),
            (
                group(HostTaskStatus::Success, Some(0), Some("t"), Some("aa")),
                1,
                3
            ),
            (
                group(HostTaskStatus::ScriptNonZeroExit, Some(2), None, Some("bb")),
                1,
                4
            ),
        ]
    );
    for by in [GroupBy::Status, GroupBy::Output] {
        assert!(
            store
                .result_groups(step, 1, by)
                .await
                .expect("result_groups")
                .is_empty()
        );
    }

    let counts = store.task_counts(step, 0).await.expect("task_counts");
    assert_eq!(
        counts,
        vec![
            (HostTaskStatus::AgentAbnormal, 1),
            (HostTaskStatus::Waiting, 1),
            (HostTaskStatus::Success, 4),
            (HostTaskStatus::ScriptNonZeroExit, 1),
        ]
    );
    assert!(
        store
            .task_counts(step, 1)
            .await
            .expect("task_counts")
            .is_empty()
    );

    for (g, hosts) in [
        (
            group(HostTaskStatus::Success, Some(0), None, None),
            vec![1, 2, 7],
        ),
        (
            group(HostTaskStatus::Success, Some(0), None, Some("aa")),
            vec![1, 2],
        ),
        (
            group(HostTaskStatus::Success, Some(0), None, Some("cc")),
            vec![7],
        ),
        (
            group(HostTaskStatus::AgentAbnormal, None, None, None),
            vec![5],
        ),
        (group(HostTaskStatus::Waiting, None, None, None), vec![6]),
        (
            group(HostTaskStatus::Success, Some(0), Some("t"), None),
            vec![3],
        ),
        (
            group(HostTaskStatus::Success, Some(0), Some("t"), Some("aa")),
            vec![3],
        ),
        (
            group(HostTaskStatus::Success, Some(1), None, Some("aa")),
            vec![],
        ),
    ] {
        let filter = TaskFilter {
            group: Some(g.clone()),
            ..task_filter(step, 0)
        };
        let page = store
            .list_tasks(&filter, Page::first(10))
            .await
            .expect("list_tasks");
        let ids: Vec<HostId> = page.data.iter().map(|t| t.host_id).collect();
        assert_eq!(ids, hosts, "{g:?}");
        assert_eq!(page.total, hosts.len() as u64);
    }
}

/// `list_tasks` joins host addresses and filters by status, IP substring and log keyword,
/// paging with a total.
pub async fn list_tasks_filters_and_pages(store: &dyn Store) {
    let a = add_host(
        store,
        DEFAULT_SCOPE,
        "a",
        &["10.0.0.1", "192.168.0.1"],
        labels(&[]),
    )
    .await
    .id;
    let b = add_host(store, DEFAULT_SCOPE, "b", &["10.0.0.2"], labels(&[]))
        .await
        .id;
    let c = add_host(store, DEFAULT_SCOPE, "c", &["10.0.1.3"], labels(&[]))
        .await
        .id;
    let (_, step) = one_step_job(store, &[a, b, c]).await;
    let (ka, kb, kc) = (key(step, 0, a), key(step, 0, b), key(step, 0, c));
    apply(
        store,
        &TaskBatch {
            chunks: vec![
                chunk(ka, 0, b"hello NEEDLE\n"),
                chunk(kb, 0, b"needle lower\n"),
                chunk(kc, 0, &[0xff, b'N', b'E', b'E', b'D', b'L', b'E', 0x00]),
            ],
            updates: vec![finished(result(kb, HostTaskStatus::Success, Some(0)))],
        },
    )
    .await;

    let ids = |page: crate::Paged<crate::TaskRow>| {
        (
            page.data.iter().map(|t| t.host_id).collect::<Vec<_>>(),
            page.total,
        )
    };
    let all = task_filter(step, 0);
    let page = store
        .list_tasks(&all, Page::first(10))
        .await
        .expect("list_tasks");
    assert_eq!(page.data[0].ip, "10.0.0.1");
    assert_eq!(page.data[0].hostname, "a");
    assert_eq!(page.data[0].log_len, 13);
    assert_eq!(ids(page), (vec![a, b, c], 3));
    let page = store
        .list_tasks(
            &all,
            Page {
                start: 1,
                length: 1,
            },
        )
        .await
        .expect("list_tasks");
    assert_eq!((page.start, page.length), (1, 1));
    assert_eq!(ids(page), (vec![b], 3));

    let f = TaskFilter {
        statuses: vec![HostTaskStatus::Waiting, HostTaskStatus::Running],
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![a, c], 2)
    );
    let f = TaskFilter {
        ip: Some("192.168".to_string()),
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![a], 1)
    );
    let f = TaskFilter {
        ip: Some("10.0.0.".to_string()),
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![a, b], 2)
    );
    let f = TaskFilter {
        host_id: Some(b),
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![b], 1)
    );
    // The keyword is matched as bytes, case-sensitively, also inside binary output.
    let f = TaskFilter {
        keyword: Some("NEEDLE".to_string()),
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![a, c], 2)
    );
    let f = TaskFilter {
        keyword: Some("needle".to_string()),
        statuses: vec![HostTaskStatus::Success],
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![b], 1)
    );
    let f = TaskFilter {
        keyword: Some("absent".to_string()),
        ..all.clone()
    };
    assert_eq!(
        ids(store.list_tasks(&f, Page::first(10)).await.expect("list")),
        (vec![], 0)
    );
    let other = TaskFilter { attempt: 1, ..all };
    assert_eq!(
        ids(store
            .list_tasks(&other, Page::first(10))
            .await
            .expect("list")),
        (vec![], 0)
    );
}

/// `open_tasks` lists the waiting and running tasks of the steps given, with their job.
pub async fn open_tasks_lists_non_terminal(store: &dyn Store) {
    let (job1, s1) = one_step_job(store, &[1, 2, 3]).await;
    let (job2, s2) = one_step_job(store, &[1]).await;
    let (_, s3) = one_step_job(store, &[7]).await;
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![
                TaskUpdate::Started {
                    key: key(s1, 0, 2),
                    at: 15_000,
                },
                finished(result(key(s1, 0, 3), HostTaskStatus::Success, Some(0))),
            ],
        },
    )
    .await;
    let open = store.open_tasks(&[s2, s1]).await.expect("open_tasks");
    let got: Vec<(TaskKey, i64, HostTaskStatus)> =
        open.iter().map(|t| (t.key, t.job_id, t.status)).collect();
    assert_eq!(
        got,
        vec![
            (key(s1, 0, 1), job1.job_id, HostTaskStatus::Waiting),
            (key(s1, 0, 2), job1.job_id, HostTaskStatus::Running),
            (key(s2, 0, 1), job2.job_id, HostTaskStatus::Waiting),
        ]
    );
    assert!(!open.iter().any(|t| t.key.step_id == s3));
    assert!(store.open_tasks(&[]).await.expect("open_tasks").is_empty());
}
