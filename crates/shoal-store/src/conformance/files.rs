//! Cases for per-file transfer rows: batched inserts with conflicts, idempotent and monotonic
//! progress, frozen terminal rows, listing with host addresses, paging and counts.

use super::{add_host, labels, one_step_job};
use crate::prelude::*;
use crate::{
    Error, FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD, FileProgress, FileStatus, FileTaskFilter,
    FileTaskKey, FileTaskRow, NewFileTask, Page,
};
use shoal_types::{DEFAULT_SCOPE, HostId, StepId};

pub fn file_key(
    step_id: StepId,
    mode: u8,
    host_id: HostId,
    source_host_id: Option<HostId>,
    path: &str,
) -> FileTaskKey {
    FileTaskKey {
        step_id,
        attempt: 0,
        mode,
        host_id,
        source_host_id,
        source_path: path.to_string(),
        dest_path: format!("/dst{path}"),
    }
}

pub fn new_file(key: FileTaskKey, size: u64) -> NewFileTask {
    NewFileTask {
        key,
        size,
        status: FileStatus::Waiting,
        error: None,
    }
}

pub fn file_progress(
    key: &FileTaskKey,
    status: FileStatus,
    bytes_done: u64,
    at: i64,
) -> FileProgress {
    FileProgress {
        key: key.clone(),
        status,
        bytes_done,
        speed: bytes_done / 2,
        error: None,
        at,
    }
}

pub fn file_filter(step_id: StepId, attempt: u32) -> FileTaskFilter {
    FileTaskFilter {
        step_id,
        attempt,
        mode: None,
        host_id: None,
        statuses: Vec::new(),
    }
}

/// Every file row of one attempt of a step, in list order.
pub async fn all_files(store: &dyn Store, step_id: StepId, attempt: u32) -> Vec<FileTaskRow> {
    store
        .list_file_tasks(&file_filter(step_id, attempt), Page::first(10_000))
        .await
        .expect("list_file_tasks")
        .data
}

/// The row of one key.
async fn file_row(store: &dyn Store, key: &FileTaskKey) -> FileTaskRow {
    all_files(store, key.step_id, key.attempt)
        .await
        .into_iter()
        .find(|r| &r.key == key)
        .expect("file task row")
}

async fn progress(store: &dyn Store, progress: &[FileProgress]) {
    store
        .apply_file_progress(progress)
        .await
        .expect("apply_file_progress");
}

/// Rows are listed in key order with both hosts' addresses; filters and paging count right;
/// a key inserted twice (also with no source host, also within one batch) is a conflict that
/// inserts nothing.
pub async fn file_tasks_insert_list_and_conflict(store: &dyn Store) {
    let a = add_host(store, DEFAULT_SCOPE, "src", &["10.0.0.1"], labels(&[]))
        .await
        .id;
    let b = add_host(store, DEFAULT_SCOPE, "dst", &["10.0.0.2"], labels(&[]))
        .await
        .id;
    let (_, step) = one_step_job(store, &[b]).await;
    let mut failed = new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/b c[1]"), 5);
    failed.status = FileStatus::Failed;
    failed.error = Some("no such file".to_string());
    let rows = vec![
        new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/z"), 10),
        new_file(file_key(step, FILE_MODE_DOWNLOAD, b, None, "/upload"), 20),
        failed,
        new_file(file_key(step, FILE_MODE_UPLOAD, a, Some(a), "/z"), 10),
        new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/a"), 30),
        new_file(file_key(step, FILE_MODE_DOWNLOAD, 999, Some(a), "/a"), 30),
    ];
    store.insert_file_tasks(&rows).await.expect("insert");
    store.insert_file_tasks(&[]).await.expect("insert nothing");

    let all = all_files(store, step, 0).await;
    let got: Vec<(u8, HostId, Option<HostId>, &str)> = all
        .iter()
        .map(|r| {
            (
                r.key.mode,
                r.key.host_id,
                r.key.source_host_id,
                r.key.source_path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (FILE_MODE_UPLOAD, a, Some(a), "/z"),
            (FILE_MODE_DOWNLOAD, b, None, "/upload"),
            (FILE_MODE_DOWNLOAD, b, Some(a), "/a"),
            (FILE_MODE_DOWNLOAD, b, Some(a), "/b c[1]"),
            (FILE_MODE_DOWNLOAD, b, Some(a), "/z"),
            (FILE_MODE_DOWNLOAD, 999, Some(a), "/a"),
        ]
    );
    let upload_row = &all[1];
    assert_eq!(
        (upload_row.ip.as_str(), upload_row.hostname.as_str()),
        ("10.0.0.2", "dst")
    );
    assert_eq!(
        (upload_row.source_ip.as_deref(), upload_row.size),
        (None, 20)
    );
    let from_a = &all[2];
    assert_eq!(
        (
            from_a.source_ip.as_deref(),
            from_a.source_hostname.as_deref()
        ),
        (Some("10.0.0.1"), Some("src"))
    );
    assert_eq!(from_a.key.dest_path, "/dst/a");
    assert_eq!(
        (
            from_a.status,
            from_a.bytes_done,
            from_a.speed,
            from_a.started_at
        ),
        (FileStatus::Waiting, 0, 0, None)
    );
    let failed_row = &all[3];
    assert_eq!(
        (failed_row.status, failed_row.error.as_deref()),
        (FileStatus::Failed, Some("no such file"))
    );
    assert_eq!((all[5].ip.as_str(), all[5].hostname.as_str()), ("", ""));

    // Filters and paging.
    let mut filter = file_filter(step, 0);
    filter.mode = Some(FILE_MODE_DOWNLOAD);
    let page = store
        .list_file_tasks(
            &filter,
            Page {
                start: 1,
                length: 2,
            },
        )
        .await
        .expect("list");
    assert_eq!((page.total, page.start, page.length), (5, 1, 2));
    assert_eq!(page.data, all[2..4].to_vec());
    filter.host_id = Some(b);
    filter.statuses = vec![FileStatus::Waiting];
    let page = store
        .list_file_tasks(&filter, Page::first(10))
        .await
        .expect("list");
    assert_eq!(page.total, 3);
    assert_eq!(
        page.data,
        vec![all[1].clone(), all[2].clone(), all[4].clone()]
    );
    let other_attempt = store
        .list_file_tasks(&file_filter(step, 1), Page::first(10))
        .await
        .expect("list");
    assert_eq!((other_attempt.total, other_attempt.data.len()), (0, 0));

    // Conflicts: an existing key (with and without a source host), or a key twice in a batch.
    for batch in [
        vec![
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/new"), 1),
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/z"), 1),
        ],
        vec![
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, Some(a), "/new"), 1),
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, None, "/upload"), 1),
        ],
        vec![
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, None, "/twice"), 1),
            new_file(file_key(step, FILE_MODE_DOWNLOAD, b, None, "/twice"), 1),
        ],
    ] {
        let err = store.insert_file_tasks(&batch).await;
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
    }
    assert_eq!(
        all_files(store, step, 0).await,
        all,
        "conflicts insert nothing"
    );
}

/// The same progress twice changes nothing; bytes_done never decreases; a terminal row never
/// changes again; within a batch the first terminal report wins; unknown rows are ignored.
pub async fn file_progress_is_idempotent_and_monotonic(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[2]).await;
    let k1 = file_key(step, FILE_MODE_DOWNLOAD, 2, Some(1), "/one");
    let k2 = file_key(step, FILE_MODE_DOWNLOAD, 2, None, "/two");
    let k3 = file_key(step, FILE_MODE_UPLOAD, 1, Some(1), "/one");
    store
        .insert_file_tasks(&[
            new_file(k1.clone(), 100),
            new_file(k2.clone(), 100),
            new_file(k3.clone(), 100),
        ])
        .await
        .expect("insert");

    let batch = vec![
        file_progress(&k1, FileStatus::Downloading, 40, 20_000),
        file_progress(&k2, FileStatus::Downloading, 10, 20_500),
        file_progress(&k3, FileStatus::Uploading, 60, 20_100),
        file_progress(
            &file_key(step, FILE_MODE_DOWNLOAD, 7, None, "/ghost"),
            FileStatus::Success,
            1,
            1,
        ),
    ];
    progress(store, &batch).await;
    let once = all_files(store, step, 0).await;
    progress(store, &batch).await;
    let twice = all_files(store, step, 0).await;
    assert_eq!(once, twice, "same progress twice");
    assert_eq!(twice.len(), 3, "unknown rows are not created");
    assert_eq!(twice[2].key, k1, "no source host sorts first");
    let r1 = &twice[2];
    assert_eq!(
        (
            r1.status,
            r1.bytes_done,
            r1.speed,
            r1.started_at,
            r1.ended_at
        ),
        (FileStatus::Downloading, 40, 20, Some(20_000), None)
    );

    // Stale (smaller) progress keeps bytes_done and the first start time.
    progress(
        store,
        &[file_progress(&k1, FileStatus::Downloading, 15, 21_000)],
    )
    .await;
    let r1 = file_row(store, &k1).await;
    assert_eq!(
        (r1.bytes_done, r1.speed, r1.started_at),
        (40, 7, Some(20_000))
    );

    // In one batch: more bytes, success, then a late failure and more progress (dropped).
    let mut late_failure = file_progress(&k1, FileStatus::Failed, 0, 23_000);
    late_failure.error = Some("late".to_string());
    progress(
        store,
        &[
            file_progress(&k1, FileStatus::Downloading, 90, 21_500),
            file_progress(&k1, FileStatus::Success, 100, 22_000),
            late_failure.clone(),
            file_progress(&k1, FileStatus::Downloading, 5, 23_500),
        ],
    )
    .await;
    let done = all_files(store, step, 0).await;
    let r1 = file_row(store, &k1).await;
    assert_eq!(
        (
            r1.status,
            r1.bytes_done,
            r1.started_at,
            r1.ended_at,
            r1.error.as_deref()
        ),
        (FileStatus::Success, 100, Some(20_000), Some(22_000), None)
    );
    // Later batches cannot change a terminal row either.
    progress(store, &[late_failure]).await;
    progress(
        store,
        &[file_progress(&k1, FileStatus::Downloading, 500, 24_000)],
    )
    .await;
    assert_eq!(
        all_files(store, step, 0).await,
        done,
        "terminal rows are frozen"
    );

    // A failure keeps its error and the bytes done so far.
    let mut failure = file_progress(&k2, FileStatus::Failed, 0, 25_000);
    failure.error = Some("disk full".to_string());
    progress(store, &[failure]).await;
    let r2 = file_row(store, &k2).await;
    assert_eq!(
        (
            r2.status,
            r2.bytes_done,
            r2.error.as_deref(),
            r2.started_at,
            r2.ended_at
        ),
        (
            FileStatus::Failed,
            10,
            Some("disk full"),
            Some(20_500),
            Some(25_000)
        )
    );
    progress(store, &[]).await;
}

/// Thousands of rows go in and progress in one call each (multi-row statements); counts are of
/// the download side of one attempt only.
pub async fn file_tasks_in_bulk_and_counts(store: &dyn Store) {
    let (_, step) = one_step_job(store, &[1]).await;
    let n: usize = 2_500;
    let mut rows: Vec<NewFileTask> = (0..n)
        .map(|i| {
            new_file(
                file_key(
                    step,
                    FILE_MODE_DOWNLOAD,
                    10 + (i % 50) as i64,
                    Some(1),
                    &format!("/f/{i:05}"),
                ),
                1_000,
            )
        })
        .collect();
    rows.push(new_file(
        file_key(step, FILE_MODE_UPLOAD, 1, Some(1), "/f/00000"),
        1_000,
    ));
    let mut later = new_file(
        file_key(step, FILE_MODE_DOWNLOAD, 10, Some(1), "/f/00000"),
        1,
    );
    later.key.attempt = 1;
    rows.push(later);
    store.insert_file_tasks(&rows).await.expect("insert");

    let updates: Vec<FileProgress> = rows[..n]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let status = match i % 4 {
                0 => FileStatus::Waiting,
                1 => FileStatus::Downloading,
                2 => FileStatus::Success,
                _ => FileStatus::Failed,
            };
            file_progress(&r.key, status, 500, 30_000)
        })
        .chain(std::iter::once(file_progress(
            &rows[n].key,
            FileStatus::Success,
            1_000,
            30_000,
        )))
        .collect();
    progress(store, &updates).await;
    let counts = store.file_task_counts(step, 0).await.expect("counts");
    let quarter = (n / 4) as u64;
    assert_eq!(
        counts,
        vec![
            (FileStatus::Waiting, quarter),
            (FileStatus::Downloading, quarter),
            (FileStatus::Success, quarter),
            (FileStatus::Failed, quarter),
        ]
    );
    assert_eq!(
        store.file_task_counts(step, 1).await.expect("counts"),
        vec![(FileStatus::Waiting, 1)]
    );
    let all = store
        .list_file_tasks(
            &file_filter(step, 0),
            Page {
                start: 2_400,
                length: 1_000,
            },
        )
        .await
        .expect("list");
    assert_eq!((all.total, all.data.len()), (n as u64 + 1, 101));
    assert!(all.data.iter().all(|r| r.bytes_done == 500));
}
