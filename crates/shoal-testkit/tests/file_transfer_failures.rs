//! Pins how file distribution behaves when things go wrong, on real agents in network
//! namespaces: a source host killed mid-transfer fails its targets with a clear reason and
//! leaves nothing half-written; a target whose link is cut and restored resumes and ends with
//! the right content; chunks corrupted in a serving peer's cache are refused and fetched
//! elsewhere; a full target disk fails that target with "no space" and no partial file; a
//! terminated transfer stops at once and leaves nothing half-written; and per-host download
//! and upload limits hold within 20%.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::Api;
use shoal_testkit::files_api::{host_source, transfer};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::api::FileTransferRequest;
use shoal_types::{HostId, HostTaskStatus, JobId, StepId};
use std::time::{Duration, Instant};

const ONLINE: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

async fn sandbox(n: usize) -> (Sandbox, Vec<HostId>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions {
        agent_lost_grace_secs: 20,
        heartbeat_secs: Some(1),
        ..SandboxOptions::with_agents(n)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(n, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    (sb, ids)
}

async fn start(api: &Api, req: &FileTransferRequest) -> (JobId, StepId) {
    let resp = api.transfer(req).await.unwrap();
    (resp.job_instance_id, resp.step_instance_id)
}

async fn statuses(api: &Api, step: StepId) -> Vec<(HostId, HostTaskStatus, String)> {
    api.step_hosts(step)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.host_id, r.status, r.error.unwrap_or_default()))
        .collect()
}

/// Waits until a download row of `step` has moved at least `bytes`.
async fn wait_bytes(api: &Api, step: StepId, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = api.step_files(step, Some("download")).await.unwrap();
        if rows.iter().any(|r| r.bytes_done >= bytes) {
            return;
        }
        assert!(Instant::now() < deadline, "no progress: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn leftovers(sb: &Sandbox, i: usize, dir: &str) -> String {
    sb.host_sh(i, &format!("ls -A '{dir}' 2>/dev/null || true"))
        .unwrap()
}

fn sha(sb: &Sandbox, i: usize, path: &str) -> String {
    sb.host_sh(i, &format!("sha256sum '{path}' | cut -d' ' -f1"))
        .unwrap()
        .trim()
        .to_owned()
}

fn make_file(sb: &Sandbox, i: usize, path: &str, mib: u64) {
    sb.host_sh(
        i,
        &format!("mkdir -p \"$(dirname '{path}')\" && head -c {mib}M /dev/urandom > '{path}'"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_killed_mid_transfer_fails_targets_cleanly() {
    let (mut sb, ids) = sandbox(3).await;
    let api = sb.api();
    make_file(&sb, 0, "/tmp/src/big.bin", 48);
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/big.bin"])],
        &ids[1..3],
        "/tmp/dst",
        120,
    );
    req.upload_speed_limit = Some(4);
    let (job, step) = start(&api, &req).await;
    wait_bytes(&api, step, 4 * MIB).await;
    sb.kill_agent(0);
    let view = api.wait_job(job, Duration::from_secs(90)).await.unwrap();
    assert!(view.job.status.is_terminal(), "{view:?}");
    for (host, status, error) in statuses(&api, step).await {
        assert_eq!(status, HostTaskStatus::FileFailed, "host {host}: {error}");
        assert!(!error.is_empty(), "host {host} failed without a reason");
    }
    for t in 1..3 {
        assert_eq!(
            leftovers(&sb, t, "/tmp/dst"),
            "",
            "host {t} kept a partial file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_resumes_and_corrupt_cached_chunks_are_refused() {
    let (sb, ids) = sandbox(3).await;
    let api = sb.api();
    make_file(&sb, 0, "/tmp/src/big.bin", 32);
    let want = sha(&sb, 0, "/tmp/src/big.bin");

    // Host 1's link goes down for 4 s mid-transfer (download limited so it is mid-way).
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/big.bin"])],
        &ids[1..2],
        "/tmp/dst",
        120,
    );
    req.download_speed_limit = Some(4);
    let (job, step) = start(&api, &req).await;
    wait_bytes(&api, step, 8 * MIB).await;
    sb.link_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    sb.link_up(1).unwrap();
    api.wait_job(job, Duration::from_secs(90)).await.unwrap();
    let st = statuses(&api, step).await;
    assert_eq!(st[0].1, HostTaskStatus::Success, "{st:?}");
    assert_eq!(sha(&sb, 1, "/tmp/dst/big.bin"), want);
    assert_eq!(
        leftovers(&sb, 1, "/tmp/dst"),
        "big.bin\n",
        "no temp file left"
    );
    // Resumed, not restarted: the source served little more than one copy.
    let served: u64 = api
        .step_files(step, Some("upload"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.bytes_done)
        .sum();
    assert!(served <= 32 * MIB * 13 / 10, "source served {served} bytes");

    // Mid-way, every chunk file in host 1's cache is overwritten with garbage. Host 1 serves
    // host 2 from that cache and assembles its own file from it: each corrupt chunk is caught
    // (the server side verifies before sending, the assembly verifies on reading), dropped,
    // and fetched again from a good holder; both hosts end with the right content.
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/big.bin"])],
        &ids[1..3],
        "/tmp/dst2",
        120,
    );
    req.download_speed_limit = Some(8);
    let (job, step) = start(&api, &req).await;
    let cache = sb.dir().join("agent-1").join("chunks");
    let deadline = Instant::now() + Duration::from_secs(30);
    while walk(&cache).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "nothing cached under {}",
            cache.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = step;
    let mut corrupted = 0;
    for entry in walk(&cache) {
        if std::fs::write(&entry, b"garbage").is_ok() {
            corrupted += 1;
        }
    }
    assert!(
        corrupted > 0,
        "no cached chunk found under {}",
        cache.display()
    );
    api.wait_job(job, Duration::from_secs(90)).await.unwrap();
    let st = statuses(&api, step).await;
    assert!(
        st.iter().all(|(_, s, _)| *s == HostTaskStatus::Success),
        "{st:?}"
    );
    for t in 1..3 {
        assert_eq!(sha(&sb, t, "/tmp/dst2/big.bin"), want, "host {t}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_only_that_target() {
    let (sb, ids) = sandbox(3).await;
    let api = sb.api();
    make_file(&sb, 0, "/tmp/src/f.bin", 6);
    for t in 1..3 {
        sb.host_sh(t, "mkdir -p /tmp/small").unwrap();
    }
    sb.host_sh(2, "mount -t tmpfs -o size=2m tmpfs /tmp/small")
        .unwrap();
    let req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/f.bin"])],
        &ids[1..3],
        "/tmp/small",
        60,
    );
    let (job, step) = start(&api, &req).await;
    api.wait_job(job, Duration::from_secs(60)).await.unwrap();
    let st = statuses(&api, step).await;
    let of = |h: HostId| st.iter().find(|(id, _, _)| *id == h).unwrap().clone();
    assert_eq!(of(ids[1]).1, HostTaskStatus::Success, "{st:?}");
    let (_, status, error) = of(ids[2]);
    assert_eq!(status, HostTaskStatus::FileFailed, "{st:?}");
    assert!(
        error.to_lowercase().contains("space"),
        "the reason names the full disk: {error}"
    );
    assert_eq!(leftovers(&sb, 2, "/tmp/small"), "", "no partial file");
}

/// Transfer time of one `mib` MiB file from host 0 to host 1 under `limit`, measured from the
/// download row's start to its end.
async fn timed(
    sb: &Sandbox,
    ids: &[HostId],
    mib: u64,
    f: impl Fn(&mut FileTransferRequest),
) -> f64 {
    let api = sb.api();
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/limit.bin"])],
        &ids[1..2],
        &format!("/tmp/limit-{}", rand_suffix()),
        120,
    );
    f(&mut req);
    let (job, step) = start(&api, &req).await;
    api.wait_job(job, Duration::from_secs(120)).await.unwrap();
    let rows = api.step_files(step, Some("download")).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r.status.code(), 4, "{r:?}");
    assert_eq!(r.size, mib * MIB);
    let (a, b) = (r.started_at.unwrap(), r.ended_at.unwrap());
    (b - a) as f64 / 1000.0
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_limits_hold_within_20_percent() {
    let (sb, ids) = sandbox(2).await;
    let mib = 16;
    make_file(&sb, 0, "/tmp/src/limit.bin", mib);
    // 16 MiB at 2 MB/s: 8 s expected, each way.
    let down = timed(&sb, &ids, mib, |r| r.download_speed_limit = Some(2)).await;
    let up = timed(&sb, &ids, mib, |r| r.upload_speed_limit = Some(2)).await;
    for (what, took) in [("download", down), ("upload", up)] {
        assert!(
            (6.4..=9.6).contains(&took),
            "{what} limit of 2 MB/s moved 16 MiB in {took:.2} s (expected 8 s ± 20%)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_stops_a_transfer_and_leaves_nothing() {
    let (sb, ids) = sandbox(2).await;
    let api = sb.api();
    make_file(&sb, 0, "/tmp/src/slow.bin", 16);
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/slow.bin"])],
        &ids[1..2],
        "/tmp/dst",
        120,
    );
    req.download_speed_limit = Some(1);
    let (job, step) = start(&api, &req).await;
    wait_bytes(&api, step, 2 * MIB).await;
    let asked = Instant::now();
    api.terminate(job).await.unwrap();
    let view = api.wait_job(job, Duration::from_secs(30)).await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "terminate took {:?}",
        asked.elapsed()
    );
    assert_eq!(
        view.job.status,
        shoal_types::RunStatus::Terminated,
        "{view:?}"
    );
    let st = statuses(&api, step).await;
    assert_eq!(st[0].1, HostTaskStatus::ScriptTerminated, "{st:?}");
    assert_eq!(leftovers(&sb, 1, "/tmp/dst"), "", "no partial or temp file");
    let rows = api.step_files(step, Some("download")).await.unwrap();
    assert!(rows.iter().all(|r| r.status.code() == 5), "{rows:?}");
}
