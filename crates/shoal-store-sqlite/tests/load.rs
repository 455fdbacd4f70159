//! Pins the SQLite backend's file handling and behaviour under load: data survives a reopen
//! (migrations apply once), concurrent writers never fail with `SQLITE_BUSY`, and a 10,000-host
//! job (creation, start and result reports in batches of a few hundred, with
//! logs) is stored well within the benchmark's budget.

use shoal_store::conformance::{chunk, key, new_job, result, script_step};
use shoal_store::prelude::*;
use shoal_store::{HostFilter, NewHost, Page, TaskBatch, TaskUpdate};
use shoal_store_sqlite::SqliteStore;
use shoal_types::{AgentStatus, DEFAULT_SCOPE, HostFacts, HostTaskStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn open() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("shoal.db"))
        .await
        .expect("open");
    (store, dir)
}

#[tokio::test]
async fn reopen_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shoal.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let scope = store.create_scope("ops", 1).await.expect("create_scope");
    store.close().await;
    drop(store);
    let store = SqliteStore::open(&path).await.expect("reopen");
    let scopes = store.list_scopes().await.expect("list_scopes");
    assert_eq!(scopes.len(), 2);
    assert_eq!(scopes[1], scope);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_fail() {
    let (store, _dir) = open().await;
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..40 {
                let host = store
                    .create_host(NewHost {
                        scope_id: DEFAULT_SCOPE,
                        agent_id: format!("agent-{w}-{i}"),
                        secret_hash: "h".to_string(),
                        facts: HostFacts::default(),
                        agent_labels: Default::default(),
                        now: 1,
                    })
                    .await
                    .expect("create_host under contention");
                store
                    .host_connected(host.id, &HostFacts::default(), &Default::default(), 2)
                    .await
                    .expect("host_connected under contention");
                store
                    .list_hosts(&HostFilter::default(), Page::first(10))
                    .await
                    .expect("read under contention");
            }
        }));
    }
    for h in handles {
        h.await.expect("writer task");
    }
    let counts = store.host_status_counts(None).await.expect("counts");
    assert!(counts.contains(&(AgentStatus::Online, 320)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_host_job_is_fast() {
    let (store, _dir) = open().await;
    let hosts: Vec<i64> = (1..=10_000).collect();
    let begin = Instant::now();
    let tasks = hosts
        .iter()
        .map(|h| (*h, HostTaskStatus::Waiting))
        .collect();
    let created = store
        .create_job(new_job("big", vec![script_step("s", tasks)]))
        .await
        .expect("create_job");
    let created_in = begin.elapsed();
    let step = created.step_ids[0];

    // Agents report start, a line of output, and their result, in batches of 300 reports.
    let mut updates = Vec::new();
    for h in &hosts {
        updates.push((
            Some(chunk(key(step, 0, *h), 0, b"hello from the host\n")),
            TaskUpdate::Started {
                key: key(step, 0, *h),
                at: 2,
            },
        ));
    }
    for h in &hosts {
        let r = result(key(step, 0, *h), HostTaskStatus::Success, Some(0));
        updates.push((None, TaskUpdate::Finished(r)));
    }
    for part in updates.chunks(300) {
        let mut batch = TaskBatch::default();
        for (c, u) in part {
            batch.chunks.extend(c.clone());
            batch.updates.push(u.clone());
        }
        store
            .apply_task_batch(&batch)
            .await
            .expect("apply_task_batch");
    }
    let counts = store.task_counts(step, 0).await.expect("task_counts");
    let total = begin.elapsed();
    assert_eq!(counts, vec![(HostTaskStatus::Success, 10_000)]);
    eprintln!("create_job: {created_in:?}, total: {total:?}");
    // Debug builds are several times slower than release; the benchmark runs release.
    assert!(
        total < Duration::from_secs(3),
        "10,000-host job took {total:?}"
    );
}
