//! Pins that a task's processes live in its own cgroup and die with it, on real hosts (which
//! the API's host records say: `containment` is `cgroup`): after a terminate and after a
//! timeout no process of a script's tree remains — children, grandchildren, a double fork,
//! `nohup`, a TERM-ignoring process and three `setsid` escapes (`setsid cmd &`, `setsid -f`, a
//! daemonizing double fork); an agent stopped with SIGTERM kills its running tasks' trees; an
//! agent killed with SIGKILL leaves them running, and its next start kills them and removes
//! their cgroups.
//!
//! Processes are found by a unique marker in their command line through /proc (the sandbox's
//! hosts share the test's pid space); the tree and the scan are the executor unit tests'.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, cgroup_dir, require_root};
use shoal_types::{HostTaskStatus, RunStatus};
use std::time::{Duration, Instant};

#[path = "../../shoal-agent/src/escape_tree.rs"]
mod escape_tree;
use escape_tree::alive_with;

const ONLINE: Duration = Duration::from_secs(30);
const JOB: Duration = Duration::from_secs(60);
/// Generous bounds for things that normally take milliseconds, so a loaded machine is no
/// failure; the tests wait for conditions, not for time.
const SETTLE: Duration = Duration::from_secs(60);

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let began = Instant::now();
    while !ok() {
        assert!(began.elapsed() < SETTLE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until all nine processes of the tree run.
async fn tree_runs(marker: &str) {
    until(&format!("the whole tree {marker} runs"), || {
        alive_with(marker).len() == escape_tree::PROCESSES
    })
    .await;
}

async fn sandbox() -> (Sandbox, Vec<i64>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions::with_agents(1))
        .await
        .unwrap();
    sb.wait_hosts_online(1, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    (sb, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_and_timeout_leave_no_process_of_the_tree() {
    let (sb, ids) = sandbox().await;
    let api = sb.api();
    let hosts = api.hosts().await.unwrap();
    assert_eq!(hosts[0].containment.as_deref(), Some("cgroup"), "{hosts:?}");

    let m = escape_tree::marker(20_000_000, 1);
    let resp = api
        .execute(&shell(&escape_tree::script(&m), &ids, 600))
        .await
        .unwrap();
    tree_runs(&m).await;
    api.terminate(resp.job_instance_id).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Terminated, "{view:?}");
    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    assert_eq!(rows[0].status, HostTaskStatus::ScriptTerminated, "{rows:?}");
    assert_eq!(alive_with(&m), Vec::<i32>::new(), "survivors of terminate");

    let m = escape_tree::marker(20_000_000, 2);
    let resp = api
        .execute(&shell(&escape_tree::script(&m), &ids, 3))
        .await
        .unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    assert_eq!(rows[0].status, HostTaskStatus::ScriptTimeout, "{rows:?}");
    let log = api.log(resp.step_instance_id, ids[0]).await.unwrap();
    assert_eq!(
        log.content, "started\n",
        "the tree was up before the timeout"
    );
    assert_eq!(
        alive_with(&m),
        Vec::<i32>::new(),
        "survivors of the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_kills_its_tasks_and_a_killed_one_does_at_restart() {
    let (mut sb, ids) = sandbox().await;
    let api = sb.api();

    // SIGTERM: the agent kills its running tasks' trees before it exits.
    let m = escape_tree::marker(20_000_000, 3);
    api.execute(&shell(&escape_tree::script(&m), &ids, 600))
        .await
        .unwrap();
    tree_runs(&m).await;
    sb.stop_agent(0);
    assert_eq!(alive_with(&m), Vec::<i32>::new(), "survivors of agent stop");

    // SIGKILL: the tree outlives the agent in its cgroup, until the agent starts again.
    sb.start_agent(0).unwrap();
    sb.wait_hosts_online(1, ONLINE).await.unwrap();
    let m = escape_tree::marker(20_000_000, 4);
    api.execute(&shell(&escape_tree::script(&m), &ids, 600))
        .await
        .unwrap();
    tree_runs(&m).await;
    let cgroup = cgroup_dir(&alive_with(&m)[0].to_string()).unwrap();
    assert!(
        cgroup.to_string_lossy().contains("/shoal-agent-"),
        "{cgroup:?}"
    );
    sb.kill_agent(0);
    assert_eq!(
        alive_with(&m).len(),
        escape_tree::PROCESSES,
        "SIGKILL leaves the tree running"
    );
    sb.start_agent(0).unwrap();
    until("the restarted agent kills the leftover tree", || {
        alive_with(&m).is_empty()
    })
    .await;
    until("the leftover cgroup is removed", || !cgroup.exists()).await;
    sb.wait_hosts_online(1, ONLINE).await.unwrap();
}
