//! Pins crash safety of the server on both backends: `kill -9` of the server during a 1,000-host
//! job (once right after the job is accepted, while it is dispatched; once as soon as the first
//! host results are stored, while results are applied), then a restart, and the job still
//! completes with exactly 1,000 host results: none lost, none left waiting or running,
//! none doubled (each host's stored output is as long as in an undisturbed run).

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::{Api, JobView, shell};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
use shoal_types::api::TaskRow;
use shoal_types::{HostId, HostTaskStatus, RunStatus};
use std::collections::BTreeMap;
use std::time::Duration;

const HOSTS: usize = 1000;
const SCRIPT: &str = "echo crash-test";

async fn run_job(api: &Api, ids: &[HostId]) -> (i64, i64) {
    let resp = api.execute(&shell(SCRIPT, ids, 120)).await.unwrap();
    assert_eq!(resp.host_count, HOSTS as u64);
    (resp.job_instance_id, resp.step_instance_id)
}

async fn kill_server_during_a_1000_host_job(database_url: Option<String>) {
    let mut sb = Sandbox::start(SandboxOptions {
        database_url,
        agent_lost_grace_secs: 20,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    sb.start_sim_fleet(HOSTS, &[]).unwrap();
    let hosts = sb
        .wait_hosts_online(HOSTS, Duration::from_secs(90))
        .await
        .unwrap();
    let ids: Vec<HostId> = hosts.iter().map(|h| h.id).collect();
    let api = sb.api();

    // An undisturbed run gives each host's output length.
    let (job, step) = run_job(&api, &ids).await;
    api.wait_job(job, Duration::from_secs(60)).await.unwrap();
    let undisturbed: BTreeMap<HostId, u64> = api
        .step_hosts(step)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.host_id, r.log_len))
        .collect();
    assert_eq!(undisturbed.len(), HOSTS);

    assert!(
        undisturbed.values().all(|&n| n > 0),
        "the simulated executor printed nothing, so doubled output would go unseen"
    );

    for when in [KillAt::RightAfterAccept, KillAt::FirstResults] {
        let (job, step) = run_job(&sb.api(), &ids).await;
        if when == KillAt::FirstResults {
            wait_first_results(&sb.api(), job).await;
        }
        sb.kill_server();
        sb.restart_server().await.unwrap();
        let api = sb.api();
        let at_restart = api.job(job).await.unwrap();
        eprintln!(
            "{when:?}: at restart finished={} counts={:?}",
            at_restart.finished, at_restart.steps[0].counts
        );
        let view = api.wait_job(job, Duration::from_secs(120)).await.unwrap();
        check_exactly_once(&api, step, &view, &undisturbed, when).await;
    }

    // Nothing is left running anywhere.
    let running: shoal_types::api::Paged<shoal_types::api::Job> =
        sb.api().get("/api/v1/jobs?status=2").await.unwrap();
    assert_eq!(running.total, 0, "{running:?}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillAt {
    /// As soon as the POST returns: dispatch is under way.
    RightAfterAccept,
    /// As soon as the first host results are stored: results are being applied.
    FirstResults,
}

async fn wait_first_results(api: &Api, job: i64) {
    for _ in 0..5000 {
        let view = api.job(job).await.unwrap();
        let done: u64 = view.steps[0]
            .counts
            .iter()
            .filter(|c| c.status.is_terminal())
            .map(|c| c.count)
            .sum();
        if done > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no host result within seconds");
}

async fn check_exactly_once(
    api: &Api,
    step: i64,
    view: &JobView,
    undisturbed: &BTreeMap<HostId, u64>,
    when: KillAt,
) {
    let rows: Vec<TaskRow> = api.step_hosts(step).await.unwrap();
    assert_eq!(rows.len(), HOSTS, "{when:?}: host rows");
    let mut by_host: BTreeMap<HostId, &TaskRow> = BTreeMap::new();
    for row in &rows {
        assert!(
            by_host.insert(row.host_id, row).is_none(),
            "{when:?}: host {} appears twice",
            row.host_id
        );
    }
    let mut statuses: BTreeMap<i32, u64> = BTreeMap::new();
    for row in &rows {
        *statuses.entry(row.status.code()).or_default() += 1;
    }
    assert_eq!(
        statuses,
        BTreeMap::from([(HostTaskStatus::Success.code(), HOSTS as u64)]),
        "{when:?}: host statuses after the crash (code -> count)"
    );
    for row in &rows {
        assert_eq!(
            Some(&row.log_len),
            undisturbed.get(&row.host_id),
            "{when:?}: host {}: output lost or doubled",
            row.host_id
        );
    }
    let counted: u64 = view.steps[0].counts.iter().map(|c| c.count).sum();
    assert_eq!(
        counted, HOSTS as u64,
        "{when:?}: {:?}",
        view.steps[0].counts
    );
    assert_eq!(
        view.job.status,
        RunStatus::Success,
        "{when:?}: {:?}",
        view.job
    );
    assert!(view.steps[0].step.status.is_terminal());
}

/// The two backends run one after the other: two 1,000-host fleets at once would only measure
/// how two cores cope.
fn serially(test: impl std::future::Future<Output = ()>) {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

#[test]
fn server_killed_mid_job_on_sqlite() {
    serially(kill_server_during_a_1000_host_job(None));
}

#[test]
fn server_killed_mid_job_on_postgres() {
    serially(async {
        let url = shoal_testkit::pg::PgCluster::shared()
            .create_database("shoal_crash_test")
            .unwrap();
        kill_server_during_a_1000_host_job(Some(url)).await;
    });
}
