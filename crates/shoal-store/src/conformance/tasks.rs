//! Cases of [`TaskStore`](crate::TaskStore): idempotent batches, byte-exact logs, first
//! results win; groups, counts, task lists and open tasks in `results`.

mod results;

pub use results::*;

use super::{all_tasks, apply, chunk, finished, key, one_step_job, read_all, result};
use crate::prelude::*;
use crate::{Error, TaskBatch, TaskUpdate};
use shoal_types::{HostTaskStatus, TaskKey};

/// Bytes 0..n of a recognisable, non-repeating pattern.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Applying the same batch twice changes nothing.
pub async fn apply_task_batch_is_idempotent(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1, 2]).await;
    let (k1, k2) = (key(step, 0, 1), key(step, 0, 2));
    let mut r1 = result(k1, HostTaskStatus::ScriptNonZeroExit, Some(3));
    r1.digest = Some("d1".to_string());
    r1.tag = Some("tag".to_string());
    r1.truncated = true;
    r1.error = Some("exit 3".to_string());
    let batch = TaskBatch {
        chunks: vec![
            chunk(k1, 0, b"out-1\n"),
            chunk(k2, 0, b"out-2\n"),
            chunk(k1, 6, b"more\n"),
        ],
        updates: vec![
            TaskUpdate::Started {
                key: k1,
                at: 15_000,
            },
            TaskUpdate::Started {
                key: k2,
                at: 15_500,
            },
            finished(r1),
        ],
    };
    apply(store, &batch).await;
    let once = all_tasks(store, step, 0).await;
    apply(store, &batch).await;
    let twice = all_tasks(store, step, 0).await;
    assert_eq!(once, twice);
    assert_eq!(read_all(store, k1).await, b"out-1\nmore\n");
    assert_eq!(read_all(store, k2).await, b"out-2\n");

    let t1 = &twice[0];
    assert_eq!(
        (t1.status, t1.exit_code),
        (HostTaskStatus::ScriptNonZeroExit, Some(3))
    );
    assert_eq!(
        (t1.digest.as_deref(), t1.tag.as_deref()),
        (Some("d1"), Some("tag"))
    );
    assert_eq!((t1.truncated, t1.error.as_deref()), (true, Some("exit 3")));
    assert_eq!(
        (t1.started_at, t1.ended_at, t1.log_len),
        (Some(15_000), Some(21_000), 11)
    );
    let t2 = &twice[1];
    assert_eq!(
        (t2.status, t2.started_at, t2.log_len),
        (HostTaskStatus::Running, Some(15_500), 6)
    );
    apply(store, &TaskBatch::default()).await;
}

/// Chunks re-sent with other boundaries, overlapping what is stored, add each byte once;
/// a chunk past the stored end (a gap) is dropped; unknown tasks are ignored.
pub async fn overlapping_chunks_keep_bytes_once(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1]).await;
    let k = key(step, 0, 1);
    let data = pattern(120);
    let cut = |size: usize, from: usize, to: usize| {
        let mut out = Vec::new();
        let mut at = from;
        while at < to {
            let end = (at + size).min(to);
            out.push(chunk(k, at as u64, &data[at..end]));
            at = end;
        }
        out
    };
    // Bytes 0..40 in chunks of 4.
    apply(
        store,
        &TaskBatch {
            chunks: cut(4, 0, 40),
            updates: vec![],
        },
    )
    .await;
    // A gap: bytes 50..60 cannot be placed yet.
    apply(
        store,
        &TaskBatch {
            chunks: cut(10, 50, 60),
            updates: vec![],
        },
    )
    .await;
    assert_eq!(read_all(store, k).await, &data[..40]);
    // Re-sent from 30 in chunks of 7 (overlapping 30..40), up to 70.
    apply(
        store,
        &TaskBatch {
            chunks: cut(7, 30, 70),
            updates: vec![],
        },
    )
    .await;
    // Everything again in chunks of 9, then 3, within one batch each.
    apply(
        store,
        &TaskBatch {
            chunks: cut(9, 0, 100),
            updates: vec![],
        },
    )
    .await;
    apply(
        store,
        &TaskBatch {
            chunks: cut(3, 0, 100),
            updates: vec![],
        },
    )
    .await;
    assert_eq!(read_all(store, k).await, &data[..100]);
    let rows = all_tasks(store, step, 0).await;
    assert_eq!(rows[0].log_len, 100);
    // Chunks ending exactly at the stored end, then new ones, in one batch.
    let mut chunks = cut(4, 0, 100);
    chunks.extend(cut(5, 100, 120));
    apply(
        store,
        &TaskBatch {
            chunks,
            updates: vec![],
        },
    )
    .await;
    assert_eq!(read_all(store, k).await, data);

    // Chunks for a task that does not exist are dropped without error.
    let ghost = key(step, 5, 1);
    apply(
        store,
        &TaskBatch {
            chunks: vec![chunk(ghost, 0, b"x")],
            updates: vec![],
        },
    )
    .await;
    let missing = store.read_log(ghost, 0, 10).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

/// A terminal task keeps its first result, whether the second arrives in a later batch or
/// in the same one; a `Started` after the end changes nothing.
pub async fn finished_keeps_first_result(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1, 2, 3]).await;
    let (k1, k2, k3) = (key(step, 0, 1), key(step, 0, 2), key(step, 0, 3));
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![finished(result(k1, HostTaskStatus::Success, Some(0)))],
        },
    )
    .await;
    let mut late = result(k1, HostTaskStatus::Failed, Some(9));
    late.ended_at = 99_000;
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![
                finished(late),
                TaskUpdate::Started {
                    key: k1,
                    at: 98_000,
                },
                finished(result(k2, HostTaskStatus::TaskTimeout, None)),
                finished(result(k2, HostTaskStatus::Success, Some(0))),
                finished(result(k3, HostTaskStatus::AgentAbnormal, None)),
                TaskUpdate::Started {
                    key: k3,
                    at: 98_000,
                },
            ],
        },
    )
    .await;
    let rows = all_tasks(store, step, 0).await;
    let got: Vec<(HostTaskStatus, Option<i32>, Option<i64>)> = rows
        .iter()
        .map(|t| (t.status, t.exit_code, t.ended_at))
        .collect();
    assert_eq!(
        got,
        vec![
            (HostTaskStatus::Success, Some(0), Some(21_000)),
            (HostTaskStatus::TaskTimeout, None, Some(21_000)),
            (HostTaskStatus::AgentAbnormal, None, Some(21_000)),
        ]
    );
    // Logs still append to a finished task.
    apply(
        store,
        &TaskBatch {
            chunks: vec![chunk(k1, 0, b"tail")],
            updates: vec![],
        },
    )
    .await;
    assert_eq!(read_all(store, k1).await, b"tail");
}

/// `Started` moves waiting to running only and keeps the first start time; tasks created in a
/// terminal status (agent abnormal) stay as they are.
pub async fn started_moves_waiting_only(store: &dyn Store) {
    let mut step = super::script_step("s", vec![(1, HostTaskStatus::Waiting)]);
    step.tasks.push((2, HostTaskStatus::AgentAbnormal));
    let created = store
        .create_job(super::new_job("j", vec![step]))
        .await
        .expect("create_job");
    let step = created.step_ids[0];
    let (k1, k2) = (key(step, 0, 1), key(step, 0, 2));
    let started = |k: TaskKey, at: i64| TaskUpdate::Started { key: k, at };
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![started(k1, 15_000), started(k2, 15_000)],
        },
    )
    .await;
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![started(k1, 16_000)],
        },
    )
    .await;
    let rows = all_tasks(store, step, 0).await;
    assert_eq!(
        (rows[0].status, rows[0].started_at),
        (HostTaskStatus::Running, Some(15_000))
    );
    assert_eq!(
        (rows[1].status, rows[1].started_at),
        (HostTaskStatus::AgentAbnormal, None)
    );

    // A result without a start time keeps the recorded one.
    let mut r = result(k1, HostTaskStatus::Success, Some(0));
    r.started_at = None;
    apply(
        store,
        &TaskBatch {
            chunks: vec![],
            updates: vec![finished(r)],
        },
    )
    .await;
    let rows = all_tasks(store, step, 0).await;
    assert_eq!(
        (rows[0].status, rows[0].started_at),
        (HostTaskStatus::Success, Some(15_000))
    );
}

/// Log bytes are stored as bytes: every byte value and invalid UTF-8 round-trip.
pub async fn binary_logs_round_trip(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1]).await;
    let k = key(step, 0, 1);
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3, 0x28, b'\n', 0xe2, 0x82]);
    let mut stderr = chunk(k, 200, &data[200..]);
    stderr.stream = 1;
    apply(
        store,
        &TaskBatch {
            chunks: vec![chunk(k, 0, &data[..200]), stderr],
            updates: vec![],
        },
    )
    .await;
    assert_eq!(read_all(store, k).await, data);
    let slice = store.read_log(k, 254, 4).await.expect("read_log");
    assert_eq!(slice.data, vec![254, 255, 0xff, 0xfe]);
}

/// `read_log` returns at most `limit` bytes from `offset`, cutting chunks as needed, with the
/// total stored so far.
pub async fn read_log_slices(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1, 2]).await;
    let k = key(step, 0, 1);
    let data = pattern(50);
    let chunks = [(0, 10), (10, 25), (25, 26), (26, 50)]
        .iter()
        .map(|(a, b)| chunk(k, *a as u64, &data[*a..*b]))
        .collect();
    apply(
        store,
        &TaskBatch {
            chunks,
            updates: vec![],
        },
    )
    .await;

    for (offset, limit) in [
        (0, 50),
        (0, 10),
        (3, 5),
        (9, 2),
        (12, 14),
        (25, 1),
        (24, 100),
        (49, 1),
    ] {
        let slice = store.read_log(k, offset, limit).await.expect("read_log");
        let end = (offset + limit).min(50) as usize;
        assert_eq!(
            slice.data,
            &data[offset as usize..end],
            "offset {offset} limit {limit}"
        );
        assert_eq!((slice.offset, slice.total), (offset, 50));
    }
    let past = store.read_log(k, 50, 10).await.expect("read_log");
    assert_eq!((past.data.len(), past.total), (0, 50));
    let far = store.read_log(k, 500, 10).await.expect("read_log");
    assert_eq!((far.data.len(), far.total), (0, 50));
    let none = store.read_log(k, 5, 0).await.expect("read_log");
    assert_eq!(none.data.len(), 0);
    let empty = store
        .read_log(key(step, 0, 2), 0, 10)
        .await
        .expect("read_log");
    assert_eq!((empty.data.len(), empty.total), (0, 0));
    let missing = store.read_log(key(step, 0, 3), 0, 10).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}
