//! Step and job state: progress events, settling steps whose hosts have all ended (rules in
//! `shoal-engine`), leases on running steps, the sweeper that ends tasks of agents that did not
//! come back, and recovery of in-flight work at start.

use crate::active::{OpenTask, Payload, RunningStep};
use crate::app::App;
use crate::clock::now_ms;
use shoal_engine::JobNext;
use shoal_store::{AgentStatusChange, JobTransition, LIVE_RUN_STATUSES, StepTransition};
use shoal_types::api::{JobEvent, StatusCount};
use shoal_types::{AgentStatus, HostTaskStatus, RunStatus, ScriptSpec, StepId, StepType};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why open file tasks end when the server restarts during their transfer.
pub const FILE_STEP_RESTARTED: &str = "the server restarted during the transfer; retry the step";

/// Progress events per step are coalesced to at most one per this many ms.
const PROGRESS_EVERY_MS: i64 = 200;

/// Called after results of `step_id` were stored: publishes coalesced progress and settles the
/// step if every host has ended.
pub async fn progress(app: &App, step_id: StepId) {
    let Some(step) = app.active.step(step_id) else {
        return;
    };
    let counts = match app.store.task_counts(step_id, step.attempt).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(step_id, error = %e, "reading task counts failed");
            return;
        }
    };
    let settled = shoal_engine::settle_step(step.status, &counts);
    if settled.is_none()
        && app
            .active
            .progress_due(step_id, now_ms(), PROGRESS_EVERY_MS)
    {
        publish_step(app, step_id, &step, step.status, &counts);
    }
    if let Some(status) = settled {
        finish_step(app, step_id, &step, status, &counts).await;
    }
}

fn publish_step(
    app: &App,
    step_id: StepId,
    step: &RunningStep,
    status: RunStatus,
    counts: &[(HostTaskStatus, u64)],
) {
    app.events.publish(JobEvent::Step {
        job_id: step.job_id,
        step_id,
        attempt: step.attempt,
        status,
        counts: counts
            .iter()
            .map(|(s, n)| StatusCount {
                status: *s,
                count: *n,
            })
            .collect(),
    });
}

async fn finish_step(
    app: &App,
    step_id: StepId,
    step: &RunningStep,
    status: RunStatus,
    counts: &[(HostTaskStatus, u64)],
) {
    let now = now_ms();
    let t = StepTransition {
        step_id,
        from: vec![RunStatus::Running, RunStatus::Stopping],
        to: status,
        started_at: None,
        ended_at: Some(Some(now)),
        owner: Some(None),
    };
    match app.store.transition_step(&t).await {
        Ok(true) => {}
        Ok(false) => {
            app.active.remove_step(step_id);
            crate::transfer::step_ended(app, step_id, step.attempt).await;
            return;
        }
        Err(e) => {
            tracing::warn!(step_id, error = %e, "finishing a step failed; will retry on the next report or sweep");
            return;
        }
    }
    app.active.remove_step(step_id);
    crate::transfer::step_ended(app, step_id, step.attempt).await;
    publish_step(app, step_id, step, status, counts);
    let took = (now - step.started_ms).max(0) as f64 / 1000.0;
    metrics::histogram!("shoal_step_completion_seconds").record(took);
    metrics::gauge!("shoal_steps_running").decrement(1.0);
    // Jobs have one step until plans arrive; the engine already knows multi-step rules.
    let job_status = match shoal_engine::job_after_step(status, true) {
        JobNext::Finish(s) => s,
        JobNext::NextStep => RunStatus::Success,
    };
    let jt = JobTransition {
        job_id: step.job_id,
        from: LIVE_RUN_STATUSES.to_vec(),
        to: job_status,
        started_at: None,
        ended_at: Some(Some(now)),
    };
    match app.store.transition_job(&jt).await {
        Ok(true) => {
            metrics::gauge!("shoal_jobs_running").decrement(1.0);
            app.events.publish(JobEvent::Job {
                job_id: step.job_id,
                status: job_status,
            });
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(job_id = step.job_id, error = %e, "finishing a job failed"),
    }
}

/// Takes over running steps whose lease is free (all of them after a restart of this server),
/// and rebuilds the in-memory index of their open tasks.
pub async fn recover(app: &App) -> anyhow::Result<()> {
    let now = now_ms();
    let steps = app
        .store
        .claim_steps(&app.server_id, now, now + app.lease_ms())
        .await?;
    if steps.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut file_steps = Vec::new();
    for step in &steps {
        let payload = match step.step_type {
            // File steps are not resumed: their open tasks end below, asking for a retry.
            StepType::File => {
                file_steps.push((step.id, step.attempt, step.spec.clone()));
                Payload::File(None)
            }
            _ => match serde_json::from_value::<ScriptSpec>(step.spec.clone()) {
                Ok(s) => Payload::Script(Arc::new(s)),
                Err(e) => {
                    tracing::error!(step_id = step.id, error = %e, "a running step has an unreadable spec; leaving it");
                    continue;
                }
            },
        };
        ids.push(step.id);
        app.active.add_step(
            step.id,
            RunningStep {
                job_id: step.job_id,
                attempt: step.attempt,
                status: step.status,
                payload,
                started_ms: step.started_at.unwrap_or(now),
                last_event_ms: 0,
            },
        );
        metrics::gauge!("shoal_steps_running").increment(1.0);
        metrics::gauge!("shoal_jobs_running").increment(1.0);
    }
    let open = app.store.open_tasks(&ids).await?;
    let n = open.len();
    let mut interrupted = Vec::new();
    for t in &open {
        if file_steps.iter().any(|(id, _, _)| *id == t.key.step_id) {
            interrupted.push(t.key);
        }
    }
    app.active.add_tasks(open.into_iter().map(|t| {
        let sent = t.status == HostTaskStatus::Running;
        (
            t.key,
            OpenTask {
                job_id: t.job_id,
                sent,
            },
        )
    }));
    if !interrupted.is_empty() {
        tracing::info!(
            tasks = interrupted.len(),
            "ending file tasks interrupted by the restart"
        );
        for key in &interrupted {
            app.active.remove_task(key);
        }
        app.writer
            .settle(
                interrupted.clone(),
                HostTaskStatus::FileSystemError,
                FILE_STEP_RESTARTED,
            )
            .await;
    }
    // Sources and targets drop the interrupted attempts' state when they come back.
    for (step_id, attempt, spec) in &file_steps {
        let mut hosts: Vec<_> = interrupted
            .iter()
            .filter(|k| k.step_id == *step_id)
            .map(|k| k.host_id)
            .collect();
        if let Ok(spec) = serde_json::from_value::<shoal_types::files::FileSpec>(spec.clone()) {
            for s in spec.sources {
                if let shoal_types::files::FileSource::Host { host_ids, .. } = s {
                    hosts.extend(host_ids);
                }
            }
        }
        hosts.sort_unstable();
        hosts.dedup();
        crate::transfer::release(app, &hosts, *step_id, *attempt);
    }
    tracing::info!(steps = ids.len(), open_tasks = n, "recovered running steps");
    for id in ids {
        progress(app, id).await;
    }
    Ok(())
}

/// Background duties, once a second-ish: renew leases, end tasks of agents gone longer than the
/// grace period, flag agents whose heartbeats are late, settle steps left unsettled by an error.
pub async fn sweep_loop(app: App, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_renew = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if last_renew.elapsed() >= Duration::from_millis((app.lease_ms() / 3) as u64) {
            last_renew = std::time::Instant::now();
            if let Err(e) = app
                .store
                .renew_leases(&app.server_id, now_ms() + app.lease_ms())
                .await
            {
                tracing::warn!(error = %e, "renewing step leases failed");
            }
            for step_id in app.active.step_ids() {
                progress(&app, step_id).await;
            }
        }
        sweep_lost_agents(&app).await;
        sweep_late_heartbeats(&app).await;
    }
}

/// After a server restart agents come back on their own back-off (at most 30 s between tries),
/// so hosts not seen since start get at least this long before their tasks are given up.
const STARTUP_GRACE: Duration = Duration::from_secs(35);

async fn sweep_lost_agents(app: &App) {
    let grace = app.opts.agent_lost_grace;
    let mut lost = Vec::new();
    for host_id in app.active.hosts_with_tasks() {
        let Some((away, seen)) = app.registry.disconnected_for(host_id) else {
            continue;
        };
        let limit = if seen {
            grace
        } else {
            grace.max(STARTUP_GRACE)
        };
        if away >= limit {
            lost.extend(
                app.active
                    .tasks_of_host(host_id)
                    .into_iter()
                    .map(|(k, _)| k),
            );
        }
    }
    if lost.is_empty() {
        return;
    }
    for key in &lost {
        // Remove now so the next sweep does not settle them twice while the writer works.
        app.active.remove_task(key);
    }
    let reason = format!(
        "the agent was disconnected for more than {} s",
        grace.as_secs()
    );
    app.writer.settle_lost(lost, &reason).await;
}

async fn sweep_late_heartbeats(app: &App) {
    let late_ms = i64::from(app.opts.heartbeat_secs) * 2000;
    let now = now_ms();
    let mut changes = Vec::new();
    for (host_id, h) in app.registry.sessions() {
        let late = now - h.last_frame.load(Ordering::Relaxed) > late_ms;
        if late != h.abnormal.load(Ordering::Relaxed) {
            h.abnormal.store(late, Ordering::Relaxed);
            let status = if late {
                AgentStatus::Abnormal
            } else {
                AgentStatus::Online
            };
            changes.push(AgentStatusChange {
                host_id,
                status,
                generation: Some(h.generation),
            });
        }
    }
    if !changes.is_empty()
        && let Err(e) = app.store.set_agent_status(&changes, now).await
    {
        tracing::warn!(error = %e, "recording agent status failed");
    }
}
