//! Pins what happens to a running job when a host fails under it: an agent killed mid-script
//! ends that host as 1 (agent abnormal) within the server's `--agent-lost-grace` plus a few
//! seconds while the other hosts finish normally; a host whose link is cut for ~3 s and restored
//! mid-run still ends with every output line stored exactly once, in order.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::{HostTaskStatus, RunStatus};
use std::time::{Duration, Instant};

const ONLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_ends_its_host_as_agent_abnormal_within_grace() {
    require_root().unwrap();
    let grace = 3;
    let mut sb = Sandbox::start(SandboxOptions {
        agent_lost_grace_secs: grace,
        ..SandboxOptions::with_agents(3)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(3, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();

    let script = r#"if [ "$(hostname)" = host-0 ]; then sleep 20; else sleep 4; echo done; fi"#;
    let resp = api.execute(&shell(script, &ids, 120)).await.unwrap();
    let step = resp.step_instance_id;
    api.wait_tasks(step, &ids[..1], ONLINE, |s| s == HostTaskStatus::Running)
        .await
        .unwrap();

    sb.kill_agent(0);
    let killed = Instant::now();
    let rows = api
        .wait_tasks(step, &ids[..1], Duration::from_secs(grace + 10), |s| {
            s.is_terminal()
        })
        .await
        .unwrap();
    let took = killed.elapsed();
    assert_eq!(rows[0].status, HostTaskStatus::AgentAbnormal, "{rows:?}");
    assert!(
        took <= Duration::from_secs(grace + 5),
        "agent abnormal only after {took:?}"
    );

    let view = api
        .wait_job(resp.job_instance_id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    let rows = api.step_hosts(step).await.unwrap();
    for id in &ids[1..] {
        let row = rows.iter().find(|r| r.host_id == *id).unwrap();
        assert_eq!(row.status, HostTaskStatus::Success, "{row:?}");
        let log = api.log(step, *id).await.unwrap();
        assert_eq!(log.content, "done\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_mid_run_loses_and_doubles_no_output() {
    require_root().unwrap();
    // Heartbeats every second, so the server may well drop the silent session during the cut
    // and the agent has to reconnect and resend; the grace covers the cut either way.
    let sb = Sandbox::start(SandboxOptions {
        agent_lost_grace_secs: 20,
        heartbeat_secs: Some(1),
        ..SandboxOptions::with_agents(2)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(2, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();

    let lines = 12;
    let script = format!("for i in $(seq 1 {lines}); do echo \"line $i\"; sleep 0.5; done");
    let resp = api.execute(&shell(&script, &ids, 120)).await.unwrap();
    let step = resp.step_instance_id;
    api.wait_tasks(step, &ids, ONLINE, |s| s == HostTaskStatus::Running)
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    sb.link_down(0).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sb.link_up(0).unwrap();

    let view = api
        .wait_job(resp.job_instance_id, Duration::from_secs(60))
        .await
        .unwrap();
    let want: String = (1..=lines).map(|i| format!("line {i}\n")).collect();
    for id in &ids {
        let log = api.log(step, *id).await.unwrap();
        assert_eq!(log.content, want, "host {id}");
    }
    assert_eq!(view.job.status, RunStatus::Success, "{view:?}");
}
