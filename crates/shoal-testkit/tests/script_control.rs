//! Pins how the agent controls a running script on real hosts: a script past its timeout ends
//! as 102 (script timeout) within seconds; terminating a job ends its running hosts as 103
//! (script terminated), the step as 11 (stopped) and the job as 8 (terminated), and the script's
//! processes are really gone; a script runs as the requested OS account, and an account that does
//! not exist ends the host as 311 (user does not exist). A terminate that finds the host
//! disconnected kills the script once its agent is back.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::{Api, shell};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::api::ExecuteScriptResponse;
use shoal_types::{HostTaskStatus, RunStatus};
use std::time::{Duration, Instant};

const ONLINE: Duration = Duration::from_secs(30);
const JOB: Duration = Duration::from_secs(30);

async fn sandbox(n: usize) -> (Sandbox, Vec<i64>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions::with_agents(n))
        .await
        .unwrap();
    sb.wait_hosts_online(n, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    (sb, ids)
}

/// Starts `script` on `ids` (timeout 600 s) and waits until it runs on every host.
async fn running(api: &Api, script: &str, ids: &[i64]) -> ExecuteScriptResponse {
    let resp = api.execute(&shell(script, ids, 600)).await.unwrap();
    api.wait_tasks(resp.step_instance_id, ids, JOB, |s| {
        s == HostTaskStatus::Running
    })
    .await
    .unwrap();
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_past_its_timeout_ends_as_script_timeout() {
    let (sb, ids) = sandbox(2).await;
    let api = sb.api();
    let started = Instant::now();
    let resp = api.execute(&shell("sleep 30", &ids, 2)).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "timeout took {took:?}");
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    for row in api.step_hosts(resp.step_instance_id).await.unwrap() {
        assert_eq!(row.status, HostTaskStatus::ScriptTimeout, "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_stops_running_scripts_for_real() {
    let (sb, ids) = sandbox(3).await;
    let api = sb.api();
    // A sleep length nobody else uses, so `pgrep` finds only ours (hosts share one pid space).
    let secs = 3000 + std::process::id() % 1000;
    let resp = running(&api, &format!("echo started; sleep {secs}"), &ids).await;
    let step = resp.step_instance_id;

    api.terminate(resp.job_instance_id).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Terminated, "{view:?}");
    assert_eq!(
        view.steps[0].step.status,
        RunStatus::StopSuccess,
        "{view:?}"
    );
    for row in api.step_hosts(step).await.unwrap() {
        assert_eq!(row.status, HostTaskStatus::ScriptTerminated, "{row:?}");
    }

    // `slee[p]` so the pattern does not match the checking shell itself.
    let check = format!("if pgrep -f 'slee[p] {secs}'; then exit 1; fi; echo clean");
    let follow = api.execute(&shell(&check, &ids, 60)).await.unwrap();
    let view = api.wait_job(follow.job_instance_id, JOB).await.unwrap();
    let rows = api.step_hosts(follow.step_instance_id).await.unwrap();
    assert_eq!(
        view.job.status,
        RunStatus::Success,
        "sleep survived: {rows:?}"
    );
}

/// A `Kill` the server could not deliver (the host had no session when the job was terminated)
/// reaches the agent when it reconnects: the script dies then, not at its own end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_missed_while_disconnected_is_sent_on_reconnection() {
    require_root().unwrap();
    // Heartbeats every second: the server drops the silent session within seconds; the grace
    // is long enough that the task waits for its agent instead of ending as agent abnormal.
    let sb = Sandbox::start(SandboxOptions {
        agent_lost_grace_secs: 300,
        heartbeat_secs: Some(1),
        ..SandboxOptions::with_agents(1)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(1, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();
    let secs = 4000 + std::process::id() % 1000;
    let resp = running(&api, &format!("sleep {secs}"), &ids).await;
    let step = resp.step_instance_id;

    sb.link_down(0).unwrap();
    let deadline = Instant::now() + ONLINE;
    while api.summary().await.unwrap().online > 0 {
        assert!(
            Instant::now() < deadline,
            "the server kept the silent session"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.terminate(resp.job_instance_id).await.unwrap();
    sb.link_up(0).unwrap();

    let view = api
        .wait_job(resp.job_instance_id, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(view.job.status, RunStatus::Terminated, "{view:?}");
    for row in api.step_hosts(step).await.unwrap() {
        assert_eq!(row.status, HostTaskStatus::ScriptTerminated, "{row:?}");
    }
}

/// Creates the `shoaltest` account once on this machine (every sandbox host shares /etc/passwd).
fn ensure_test_user() {
    let exists = std::process::Command::new("id")
        .arg("shoaltest")
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let out = std::process::Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", "shoaltest"])
            .output()
            .unwrap();
        // Another test binary may have created it meanwhile.
        assert!(
            out.status.success() || String::from_utf8_lossy(&out.stderr).contains("exists"),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_as_the_requested_account() {
    let (sb, ids) = sandbox(1).await;
    ensure_test_user();
    let api = sb.api();

    let mut req = shell("id -un", &ids, 60);
    req.account = Some("shoaltest".into());
    let resp = api.execute(&req).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    let log = api.log(resp.step_instance_id, ids[0]).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Success, "{view:?} {log:?}");
    assert_eq!(log.content.trim(), "shoaltest");

    let mut req = shell("id -un", &ids, 60);
    req.account = Some("no-such-user-shoal".into());
    let resp = api.execute(&req).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    assert_eq!(rows[0].status, HostTaskStatus::UserNotExist, "{rows:?}");
}
