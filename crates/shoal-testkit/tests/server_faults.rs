//! Pins what the server does when its own resources fail under a running job: with the data
//! directory on a small filesystem that fills up mid-job, results stop being stored (agents
//! keep them in their spool), and once space returns the server stores them by itself, with no
//! restart: the job completes with every host's whole output, none lost or doubled.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::{HostTaskStatus, RunStatus};
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

const ONLINE: Duration = Duration::from_secs(30);

/// Writes zeros into `path` until its filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 256 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stores_results_again_once_a_full_disk_has_room() {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions {
        data_dir_size: Some("48m".into()),
        ..SandboxOptions::with_agents(2)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(2, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();

    // Output keeps coming for a while: 40 lines of 64 KiB over ~8 s per host.
    let script = "for i in $(seq 1 40); do head -c 65535 /dev/zero | tr '\\0' x; echo; \
                  sleep 0.2; done; echo finished";
    let resp = api.execute(&shell(script, &ids, 300)).await.unwrap();
    let step = resp.step_instance_id;
    api.wait_tasks(step, &ids, ONLINE, |s| s == HostTaskStatus::Running)
        .await
        .unwrap();

    let filler = sb.data_dir().join("filler");
    fill(&filler);
    // Long enough for the writer to meet the full disk more than once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = std::fs::read_to_string(sb.server_log()).unwrap_or_default();
    assert!(
        log.contains("storing task results failed"),
        "the disk never filled up under the writer"
    );
    std::fs::remove_file(&filler).unwrap();

    let view = api
        .wait_job(resp.job_instance_id, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(view.job.status, RunStatus::Success, "{view:?}");
    for id in &ids {
        let log = api.log(step, *id).await.unwrap();
        assert_eq!(log.content.len(), 40 * 65536 + "finished\n".len());
        assert!(log.content.ends_with("finished\n"));
    }
}

/// Every entry below `dir` with its mode bits, for the ones others may read.
fn readable_by_others(dir: &Path, out: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    if meta.permissions().mode() & 0o077 != 0 {
        out.push(format!(
            "{} {:o}",
            dir.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            readable_by_others(&entry.unwrap().path(), out);
        }
    }
}

// The data directory holds scripts, outputs and environment values: nobody but its owner may
// read it. The sandbox creates it 0755 (as an earlier version did), so the server must fix it
// at start, with a warning, and create everything after that private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private() {
    let mut sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.start_sim_fleet(1, &[]).unwrap();
    let hosts = sb.wait_hosts_online(1, ONLINE).await.unwrap();
    let api = sb.api();
    let resp = api
        .execute(&shell("echo secret-output", &[hosts[0].id], 60))
        .await
        .unwrap();
    api.wait_job(resp.job_instance_id, ONLINE).await.unwrap();

    let data = sb.data_dir();
    for name in [
        "shoal.db",
        "shoal.db-wal",
        "admin.token",
        "ca.pem",
        "server.id",
    ] {
        assert!(data.join(name).exists(), "{name} is missing");
    }
    let mut open = Vec::new();
    readable_by_others(data, &mut open);
    assert!(open.is_empty(), "readable by other users: {open:?}");
    let log = std::fs::read_to_string(sb.server_log()).unwrap();
    assert!(
        log.contains("the data directory was readable by other users"),
        "{log}"
    );
}
