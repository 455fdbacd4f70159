//! A job of two script steps, end to end: the server runs in this process (so the test can
//! launch through the launcher before plans exist) and real agents run in the sandbox's
//! namespaces, over the real protocol. Pins the engine's sequencing: step 2 starts only after
//! step 1 succeeded on every host, a failed step ends the job with later steps never started,
//! a retry of the failed step goes on with the next one, a file step can follow a script step,
//! a later step's host that is offline ends as agent abnormal while the others run, and a
//! terminate stops the job.

use crate::app::App;
use crate::auth::Caller;
use crate::launch::{self, Request, StepRequest};
use crate::{Options, run_with};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
use shoal_types::api::{RetryMode, Targets};
use shoal_types::files::{DirMode, DuplicateMode, FileSource, FileSpec};
use shoal_types::{
    HostId, JobId, JobType, Language, LaunchMode, RunStatus, ScriptSpec, StepSpec, TaskKey,
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn caller() -> Caller {
    Caller::test_admin("two-steps")
}

fn step(name: &str, script: &str, hosts: &[HostId]) -> StepRequest {
    StepRequest {
        name: name.into(),
        spec: StepSpec::Script(ScriptSpec {
            language: Language::Shell,
            content: script.into(),
            args: vec![],
            env: vec![],
            account: String::new(),
            login_env: false,
            workdir: String::new(),
            timeout_secs: 60,
        }),
        targets: Targets {
            host_ids: hosts.to_vec(),
            ..Default::default()
        },
    }
}

async fn launch_job(app: &App, name: &str, steps: Vec<StepRequest>) -> launch::Launched {
    let request = Request {
        caller: caller(),
        origin: LaunchMode::Api,
        scope_id: shoal_types::DEFAULT_SCOPE,
        name: name.into(),
        job_type: JobType::Script,
        steps,
    };
    launch::launch(app, request).await.expect("launch")
}

/// Waits until the job is no longer live; its final status.
async fn job_end(app: &App, job_id: JobId) -> RunStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let job = app.store.get_job(job_id).await.expect("job").expect("job");
        if !RunStatus::LIVE.contains(&job.status) {
            return job.status;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn step_statuses(app: &App, job_id: JobId) -> Vec<RunStatus> {
    let mut steps = app.store.get_steps(job_id).await.expect("steps");
    steps.sort_by_key(|s| s.ordinal);
    steps.iter().map(|s| s.status).collect()
}

async fn log(app: &App, step_id: i64, attempt: u32, host_id: HostId) -> String {
    let key = TaskKey {
        step_id,
        attempt,
        host_id,
    };
    let slice = app.store.read_log(key, 0, 1 << 20).await.expect("log");
    String::from_utf8_lossy(&slice.data).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_two_script_steps_is_sequenced_by_the_engine_on_sqlite() {
    two_steps(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_two_script_steps_is_sequenced_by_the_engine_on_postgres() {
    let url = shoal_testkit::pg::PgCluster::shared()
        .create_database("shoal_two_steps")
        .expect("database");
    two_steps(Some(url)).await;
}

async fn two_steps(database_url: Option<String>) {
    let mut sb = Sandbox::start(SandboxOptions {
        agents: 2,
        external_server: true,
        database_url,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let spec = sb.server_spec().clone();
    let opts = Options {
        data_dir: spec.data_dir.clone(),
        database_url: spec.database_url.clone(),
        listen: spec.listen,
        agent_listen: spec.agent_listen,
        agent_names: vec![spec.agent_listen.ip().to_string()],
        agent_lost_grace: Duration::from_secs(spec.agent_lost_grace_secs),
        ..Options::default()
    };
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stopped = stop.clone();
    let server = tokio::spawn(run_with(
        opts,
        async move { stopped.cancelled().await },
        move |app| {
            let _ = tx.send(app);
        },
    ));
    let app = rx.await.expect("the server started");
    sb.attach().await.expect("agents");
    sb.wait_hosts_online(2, Duration::from_secs(60))
        .await
        .expect("agents online");
    let hosts = sb.host_ids().await.expect("host ids");

    // Step 2 reads what step 1 wrote on the same host (each host has its own /tmp): it can
    // only say "one" if step 1 ended there first.
    let job = launch_job(
        &app,
        "two steps",
        vec![
            step("write", "echo one > /tmp/two-steps", &hosts),
            step("read", "cat /tmp/two-steps; echo two", &hosts),
        ],
    )
    .await;
    assert_eq!(job.step_ids.len(), 2);
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Success);
    assert_eq!(
        step_statuses(&app, job.job_id).await,
        [RunStatus::Success, RunStatus::Success]
    );
    let steps = app.store.get_steps(job.job_id).await.expect("steps");
    let (first, second) = (&steps[0], &steps[1]);
    assert!(
        second.started_at >= first.ended_at,
        "step 2 started {:?} before step 1 ended {:?}",
        second.started_at,
        first.ended_at
    );
    for &h in &hosts {
        assert_eq!(log(&app, job.step_ids[1], 0, h).await, "one\ntwo\n");
    }

    // A failed step ends the job; the next step never starts.
    let flag = "/tmp/two-steps-fix";
    let failing = format!("test -e {flag} || exit 3");
    let job = launch_job(
        &app,
        "fails first",
        vec![
            step("check", &failing, &hosts),
            step("after", "echo after", &hosts),
        ],
    )
    .await;
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Fail);
    assert_eq!(
        step_statuses(&app, job.job_id).await,
        [RunStatus::Fail, RunStatus::Blank]
    );
    assert_eq!(log(&app, job.step_ids[1], 0, hosts[0]).await, "");

    // Retrying the failed step (now fixed on every host) goes on with the next step.
    let fix = launch_job(
        &app,
        "fix",
        vec![step("fix", &format!("touch {flag}"), &hosts)],
    )
    .await;
    assert_eq!(job_end(&app, fix.job_id).await, RunStatus::Success);
    let retried = launch::retry(
        &app,
        &caller(),
        LaunchMode::Api,
        job.step_ids[0],
        RetryMode::Failed,
    )
    .await
    .expect("retry");
    assert_eq!(retried.attempt, 1);
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Success);
    assert_eq!(
        step_statuses(&app, job.job_id).await,
        [RunStatus::Success, RunStatus::Success]
    );
    assert_eq!(log(&app, job.step_ids[1], 0, hosts[1]).await, "after\n");
    // The job is over: a later step has run, so the first can no longer be retried.
    let again = launch::retry(
        &app,
        &caller(),
        LaunchMode::Api,
        job.step_ids[0],
        RetryMode::All,
    )
    .await;
    assert!(
        matches!(again, Err(launch::Error::State(_))),
        "{:?}",
        again.err()
    );

    // A file step in the middle starts like any later step: it carries what step 1 wrote on
    // host 0 to host 1, where step 3 reads it.
    let file = StepRequest {
        name: "carry".into(),
        spec: StepSpec::File(FileSpec {
            sources: vec![FileSource::Host {
                host_ids: vec![hosts[0]],
                paths: vec!["/tmp/seed.txt".into()],
                account: String::new(),
            }],
            target_dir: "/tmp/got/".into(),
            account: String::new(),
            dir_mode: DirMode::Force,
            duplicate: DuplicateMode::Overwrite,
            upload_limit_mbps: None,
            download_limit_mbps: None,
            timeout_secs: 60,
            peer_to_peer: true,
        }),
        targets: Targets {
            host_ids: vec![hosts[1]],
            ..Default::default()
        },
    };
    let job = launch_job(
        &app,
        "script, file, script",
        vec![
            step("seed", "echo payload > /tmp/seed.txt", &hosts[..1]),
            file,
            step("use", "cat /tmp/got/seed.txt", &hosts[1..]),
        ],
    )
    .await;
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Success);
    assert_eq!(log(&app, job.step_ids[2], 0, hosts[1]).await, "payload\n");

    // A terminate stops the running step; the next one never starts.
    let job = launch_job(
        &app,
        "terminated",
        vec![
            step("sleep", "sleep 60", &hosts),
            step("never", "echo never", &hosts),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = app
            .store
            .task_counts(job.step_ids[0], 0)
            .await
            .expect("counts");
        let running = counts
            .iter()
            .any(|(s, n)| *s == shoal_types::HostTaskStatus::Running && *n == hosts.len() as u64);
        if running {
            break;
        }
        assert!(Instant::now() < deadline, "the sleep never ran: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    launch::terminate(&app, &caller(), LaunchMode::Api, job.job_id)
        .await
        .expect("terminate");
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Terminated);
    assert_eq!(
        step_statuses(&app, job.job_id).await,
        [RunStatus::StopSuccess, RunStatus::Blank]
    );

    // One of two hosts is offline when a later step starts: that host ends as agent abnormal
    // with the reason, the other runs, and the job fails.
    sb.kill_agent(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .registry
        .connected_among(&hosts[1..])
        .contains(&hosts[1])
    {
        assert!(Instant::now() < deadline, "agent 1 still connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = launch_job(
        &app,
        "one host away",
        vec![
            step("first", "true", &hosts[..1]),
            step("both", "echo here", &hosts),
        ],
    )
    .await;
    assert_eq!(job_end(&app, job.job_id).await, RunStatus::Fail);
    assert_eq!(
        step_statuses(&app, job.job_id).await,
        [RunStatus::Success, RunStatus::Fail]
    );
    let mut counts = app
        .store
        .task_counts(job.step_ids[1], 0)
        .await
        .expect("counts");
    counts.sort_by_key(|(s, _)| s.code());
    assert_eq!(
        counts,
        [
            (shoal_types::HostTaskStatus::AgentAbnormal, 1),
            (shoal_types::HostTaskStatus::Success, 1)
        ]
    );
    assert_eq!(log(&app, job.step_ids[1], 0, hosts[0]).await, "here\n");

    stop.cancel();
    server.await.expect("join").expect("server");
}
