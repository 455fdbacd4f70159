//! Pins what a partial delivery means, on real agents in network namespaces, on SQLite and on
//! PostgreSQL: `shoal push` of a present and a missing source delivers the present file, ends
//! every target as 203 (source file not found) naming the missing path, fails the job and
//! exits non-zero; the failed row names its destination; `shoal job retry --wait` re-runs the
//! targets and they succeed once the file exists, with the file summary (not an exit code).
//! Also: empty directories of a directory push are recreated with their mode, a pushed local
//! file keeps its mode, and the upload rows read right after the job ends count every byte
//! the source served.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::files_api::{host_source, transfer};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::{HostTaskStatus, RunStatus};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::time::Duration;

const ONLINE: Duration = Duration::from_secs(30);
const DONE: Duration = Duration::from_secs(60);

/// Runs the `shoal` CLI against the sandbox's server.
fn shoal(sb: &Sandbox, args: &[&str]) -> Output {
    Command::new(&sb.bins().shoal)
        .args(["--server", &sb.api_url(), "--token", sb.admin_token()])
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The job id from the CLI's `job N started: ...` line.
fn job_id(stderr: &str) -> i64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("job ") && l.contains(" started: "))
        .unwrap_or_else(|| panic!("no start line in {stderr}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn partial_delivery(database_url: Option<String>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions {
        database_url,
        ..SandboxOptions::with_agents(3)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(3, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();
    sb.host_sh(
        0,
        "mkdir -p /tmp/src && echo present > /tmp/src/present.txt",
    )
    .unwrap();

    let present = format!("id={}:/tmp/src/present.txt", ids[0]);
    let missing = format!("id={}:/tmp/src/missing.txt", ids[0]);
    let to = format!("id={},{}", ids[1], ids[2]);
    let out = shoal(
        &sb,
        &["push", &present, &missing, "--to", &to, "--dir", "/tmp/dst"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("2 target hosts"), "{stderr}");
    assert!(!stdout.contains(" success "), "{stdout}");
    assert!(
        stdout.contains(":/tmp/src/missing.txt -> /tmp/dst/missing.txt: "),
        "the failed file names its source and destination: {stdout}"
    );
    let job = job_id(&stderr);

    let view = api.job(job).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    let step = view.steps[0].step.id;
    for row in api.step_hosts(step).await.unwrap() {
        assert_eq!(row.status, HostTaskStatus::SourceNotFound, "{row:?}");
        let reason = row.error.unwrap_or_default();
        assert!(reason.contains("/tmp/src/missing.txt"), "{reason}");
    }
    for t in 1..3 {
        assert_eq!(
            sb.host_sh(t, "cat /tmp/dst/present.txt").unwrap(),
            "present\n",
            "host {t} keeps the file that arrived"
        );
    }
    let rows = api.step_files(step, Some("download")).await.unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r.status.code() == 5).collect();
    assert_eq!(failed.len(), 2, "{rows:?}");
    for r in &failed {
        assert_eq!(r.key.dest_path, "/tmp/dst/missing.txt", "{r:?}");
        assert_eq!(r.bytes_done, 0, "{r:?}");
    }
    assert!(
        rows.iter()
            .filter(|r| r.key.source_path.ends_with("present.txt"))
            .all(|r| r.status.code() == 4),
        "{rows:?}"
    );

    // Retry once the file exists: both targets run again and succeed; the report is the
    // file summary, not a script's exit code.
    sb.host_sh(0, "echo found > /tmp/src/missing.txt").unwrap();
    let out = shoal(&sb, &["job", "retry", &job.to_string(), "--wait"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("re-running 2 hosts"), "{stderr}");
    assert!(!stdout.contains("exit 0"), "{stdout}");
    assert!(stdout.starts_with("HOST  IP"), "{stdout}");
    assert_eq!(stdout.matches(" success ").count(), 2, "{stdout}");
    for t in 1..3 {
        assert_eq!(
            sb.host_sh(t, "cat /tmp/dst/missing.txt").unwrap(),
            "found\n"
        );
    }

    // A directory push recreates its empty directories with their mode; the upload row read
    // right after the end counts every byte the (only) source served to the (only) target.
    sb.host_sh(
        0,
        "set -e; mkdir -p /tmp/tree/full/empty /tmp/tree/empty
         head -c 3000000 /dev/urandom > /tmp/tree/full/f.bin
         chmod 750 /tmp/tree/full/empty; chmod 700 /tmp/tree/empty",
    )
    .unwrap();
    let req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/tree/"])],
        &ids[1..2],
        "/tmp/dirs",
        60,
    );
    let resp = api.transfer(&req).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, DONE).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Success, "{view:?}");
    assert_eq!(
        sb.host_sh(
            1,
            "stat -c '%F %a' /tmp/dirs/tree/empty /tmp/dirs/tree/full/empty"
        )
        .unwrap(),
        "directory 700\ndirectory 750\n"
    );
    let uploads = api
        .step_files(resp.step_instance_id, Some("upload"))
        .await
        .unwrap();
    let big = uploads
        .iter()
        .find(|r| r.key.source_path == "/tmp/tree/full/f.bin")
        .unwrap_or_else(|| panic!("{uploads:?}"));
    assert_eq!(big.bytes_done, 3_000_000, "{big:?}");
    assert_eq!(
        uploads.len(),
        1,
        "empty directories are not served: {uploads:?}"
    );

    // A pushed local file keeps its mode.
    let local = sb.dir().join("tool.sh");
    std::fs::write(&local, "#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o750)).unwrap();
    let to = format!("id={}", ids[1]);
    let out = shoal(
        &sb,
        &[
            "push",
            local.to_str().unwrap(),
            "--to",
            &to,
            "--dir",
            "/tmp/tools",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 target host"), "{stderr}");
    assert!(!stderr.contains("1 target hosts"), "{stderr}");
    assert_eq!(
        sb.host_sh(1, "stat -c %a /tmp/tools/tool.sh").unwrap(),
        "750\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_delivery_fails_and_retry_completes_on_sqlite() {
    partial_delivery(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_delivery_fails_and_retry_completes_on_postgres() {
    let url = shoal_testkit::pg::PgCluster::shared()
        .create_database("shoal_files_partial")
        .unwrap();
    partial_delivery(Some(url)).await;
}
