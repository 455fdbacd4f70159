//! Pins recovery from a full disk: with the database on a small filesystem that fills up,
//! writes fail cleanly (nothing stored is lost), and once space returns the store writes again
//! by itself, without a restart. Before the fix, the single write connection kept a transaction
//! depth of 1 after SQLite rolled back on its own, and every later write failed with
//! "attempted to call begin_with at non-zero transaction depth".
//!
//! Needs root (it mounts a 4 MiB tmpfs), like the sandbox tests.

use shoal_store::TaskBatch;
use shoal_store::conformance::{chunk, key, new_job, script_step};
use shoal_store::prelude::*;
use shoal_store_sqlite::SqliteStore;
use shoal_types::HostTaskStatus;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("temp dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount")
            .success();
        assert!(
            ok,
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        SmallFs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: a pool connection may still be closing when a failed assertion unwinds.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// A batch of `n` log chunks of 64 KiB for one task, from `offset`.
fn log_batch(step: i64, offset: u64, n: u64) -> TaskBatch {
    let data = vec![b'x'; 64 * 1024];
    let mut batch = TaskBatch::default();
    for i in 0..n {
        let at = offset + i * data.len() as u64;
        batch.chunks.push(chunk(key(step, 0, 1), at, &data));
    }
    batch
}

#[tokio::test]
async fn writes_recover_after_a_full_disk() {
    let fs = SmallFs::mount("4m");
    let store = SqliteStore::open(&fs.path().join("shoal.db"))
        .await
        .expect("open");
    let created = store
        .create_job(new_job(
            "before",
            vec![script_step("s", vec![(1, HostTaskStatus::Running)])],
        ))
        .await
        .expect("create_job");
    let step = created.step_ids[0];

    fill(&fs.path().join("filler"));
    // Output keeps arriving while the disk is full: the writes fail, cleanly.
    let mut failed = 0;
    let mut offset = 0;
    for _ in 0..20 {
        match store.apply_task_batch(&log_batch(step, offset, 8)).await {
            Ok(()) => offset += 8 * 64 * 1024,
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0, "a full disk must make some write fail");

    std::fs::remove_file(fs.path().join("filler")).expect("free the disk");
    // Space is back: the same store writes again, without being reopened.
    let after = store
        .create_job(new_job(
            "after",
            vec![script_step("s", vec![(1, HostTaskStatus::Running)])],
        ))
        .await
        .expect("create_job after the disk was freed");
    store
        .apply_task_batch(&log_batch(after.step_ids[0], 0, 2))
        .await
        .expect("apply_task_batch after the disk was freed");
    let log = store
        .read_log(key(after.step_ids[0], 0, 1), 0, 1 << 20)
        .await
        .expect("read_log");
    assert_eq!(log.data.len(), 2 * 64 * 1024);
    // What was stored before the disk filled is intact.
    assert!(
        store
            .get_job(created.job_id)
            .await
            .expect("get_job")
            .is_some()
    );
    store.close().await;
}
