//! Step and job state, carried out: progress events, settling steps whose hosts have all ended
//! (every decision is `shoal-engine`'s: this module stores its transitions and performs its
//! actions), leases on running steps, the sweeper that ends tasks of agents that did not
//! come back, and recovery of in-flight work at start.

use crate::active::{Payload, RunningStep, TaskSlot};
use crate::app::App;
use crate::clock::now_ms;
use shoal_engine::{Action, Command, Decision, JobState, Lease, StepState, Transition};
use shoal_store::{AgentStatusChange, JobTransition, NewAttempt, StepTransition};
use shoal_types::api::{JobEvent, StatusCount};
use shoal_types::{AgentStatus, HostTaskStatus, JobId, RunStatus, StepId, StepSpec};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why open file tasks end when the server restarts during their transfer.
pub const FILE_STEP_RESTARTED: &str = "the server restarted during the transfer; retry the step";

/// Progress events per step are coalesced to at most one per this many ms.
const PROGRESS_EVERY_MS: i64 = 200;

/// Called after results of `step_id` were stored: publishes coalesced progress, and when
/// every host has ended asks the engine what follows (the step ends; the next step starts or
/// the job ends) and carries it out.
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
    // The cheap check first: the job is read only when the step may settle.
    if shoal_engine::settle_step(step.status, &counts).is_none() {
        if app
            .active
            .progress_due(step_id, now_ms(), PROGRESS_EVERY_MS)
        {
            publish_step(
                app,
                step.job_id,
                step_id,
                step.attempt,
                step.status,
                &counts,
            );
        }
        return;
    }
    let settled = async {
        let state = job_state(app, step.job_id).await?;
        match shoal_engine::decide(
            &state,
            Command::Progress {
                step_id,
                counts: &counts,
            },
        ) {
            Ok(decision) => execute_with(app, &state, decision, &counts).await,
            Err(e) => {
                tracing::warn!(step_id, error = %e, "a step's progress does not apply");
                Ok(())
            }
        }
    };
    if let Err(e) = settled.await {
        tracing::warn!(step_id, error = %e, "settling a step failed; will retry on the next report or sweep");
    }
}

fn publish_step(
    app: &App,
    job_id: JobId,
    step_id: StepId,
    attempt: u32,
    status: RunStatus,
    counts: &[(HostTaskStatus, u64)],
) {
    app.events.publish(JobEvent::Step {
        job_id,
        step_id,
        attempt,
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

/// A job and its steps as the engine sees them, from the store.
pub async fn job_state(app: &App, job_id: JobId) -> shoal_store::Result<JobState> {
    let job = app
        .store
        .get_job(job_id)
        .await?
        .ok_or_else(|| shoal_store::Error::NotFound(format!("job {job_id}")))?;
    state_of(app, &job).await
}

/// The engine's view of a job already read, with its steps from the store.
pub async fn state_of(app: &App, job: &shoal_store::Job) -> shoal_store::Result<JobState> {
    let mut steps = app.store.get_steps(job.id).await?;
    steps.sort_by_key(|s| s.ordinal);
    Ok(JobState {
        id: job.id,
        status: job.status,
        steps: steps
            .iter()
            .map(|s| StepState {
                id: s.id,
                status: s.status,
                attempt: s.attempt,
            })
            .collect(),
    })
}

/// Carries out an engine decision taken on `state`: stores each transition (a compare-and-set;
/// when one does not apply the state moved under us and the rest is dropped), with its side
/// effects on memory, events and metrics, then performs the actions.
pub async fn execute(app: &App, state: &JobState, decision: Decision) -> shoal_store::Result<()> {
    execute_with(app, state, decision, &[]).await
}

async fn execute_with(
    app: &App,
    state: &JobState,
    decision: Decision,
    counts: &[(HostTaskStatus, u64)],
) -> shoal_store::Result<()> {
    let now = now_ms();
    let job_id = state.id;
    let attempt_of = |step_id: StepId| {
        state
            .steps
            .iter()
            .find(|s| s.id == step_id)
            .map_or(0, |s| s.attempt)
    };
    for transition in decision.transitions {
        match transition {
            Transition::Step {
                step_id,
                from,
                to,
                start,
                end,
                lease,
            } => {
                let t = StepTransition {
                    step_id,
                    from,
                    to,
                    started_at: start.then_some(now),
                    ended_at: end.then_some(Some(now)),
                    owner: match lease {
                        Lease::Keep => None,
                        Lease::Take => Some(Some((app.server_id.clone(), now + app.lease_ms()))),
                        Lease::Release => Some(None),
                    },
                };
                let applied = app.store.transition_step(&t).await?;
                if to.is_terminal() {
                    // Ended here or elsewhere: either way its in-memory state goes.
                    let running = app.active.step(step_id);
                    app.active.remove_step(step_id);
                    crate::transfer::step_ended(app, step_id, attempt_of(step_id)).await;
                    if applied {
                        publish_step(app, job_id, step_id, attempt_of(step_id), to, counts);
                        if let Some(r) = running {
                            let took = (now - r.started_ms).max(0) as f64 / 1000.0;
                            metrics::histogram!("shoal_step_completion_seconds").record(took);
                        }
                        metrics::gauge!("shoal_steps_running").decrement(1.0);
                    }
                } else if applied && to == RunStatus::Stopping {
                    app.active.set_step_status(step_id, RunStatus::Stopping);
                } else if applied && to == RunStatus::Running {
                    metrics::gauge!("shoal_steps_running").increment(1.0);
                }
                if !applied {
                    return Ok(());
                }
            }
            Transition::Job { from, to, end } => {
                let t = JobTransition {
                    job_id,
                    from,
                    to,
                    started_at: None,
                    ended_at: end.then_some(Some(now)),
                };
                if !app.store.transition_job(&t).await? {
                    return Ok(());
                }
                if to.is_terminal() {
                    metrics::gauge!("shoal_jobs_running").decrement(1.0);
                    app.events.publish(JobEvent::Job { job_id, status: to });
                }
            }
            Transition::Attempt {
                step_id,
                expected_attempt,
                status,
                tasks,
            } => {
                app.store
                    .start_attempt(&NewAttempt {
                        step_id,
                        expected_attempt,
                        status,
                        now,
                        owner: app.server_id.clone(),
                        lease_until: now + app.lease_ms(),
                        tasks,
                    })
                    .await?;
                metrics::gauge!("shoal_jobs_running").increment(1.0);
                metrics::gauge!("shoal_steps_running").increment(1.0);
                app.events.publish(JobEvent::Job { job_id, status });
            }
        }
    }
    for action in decision.actions {
        match action {
            Action::Dispatch { step_id, attempt } => {
                crate::launch::dispatch::start_stored(app, job_id, step_id, attempt).await?;
                Box::pin(progress(app, step_id)).await;
            }
            Action::Stop { step_id, attempt } => {
                crate::launch::dispatch::stop(app, step_id, attempt).await;
                Box::pin(progress(app, step_id)).await;
            }
        }
    }
    Ok(())
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
        let payload = match StepSpec::from_stored(step.step_type, &step.spec) {
            // File steps are not resumed: their open tasks end below, asking for a retry.
            Ok(StepSpec::File(spec)) => {
                file_steps.push((step.id, step.attempt, spec));
                Payload::File(None)
            }
            Ok(StepSpec::Script(spec)) => Payload::Script(Arc::new(spec)),
            Err(e) => {
                tracing::error!(step_id = step.id, error = %e, "a running step cannot be resumed; leaving it");
                continue;
            }
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
            TaskSlot {
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
        for s in &spec.sources {
            if let shoal_types::files::FileSource::Host { host_ids, .. } = s {
                hosts.extend(host_ids);
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

/// Stalled jobs carried on per pass of [`resume_stalled`].
const RESUME_BATCH: u32 = 1000;

/// Carries on live jobs none of whose steps is live: a server stopped (or a store call failed)
/// between ending one step and starting the next, or ending the job. The engine decides what
/// should have followed; transitions are compare-and-set, so a job some other server (or this
/// one) is moving on right now is moved on once. Returns how many jobs moved.
pub async fn resume_stalled(app: &App) -> shoal_store::Result<usize> {
    let mut moved = 0;
    for job_id in app.store.stalled_jobs(RESUME_BATCH).await? {
        let state = job_state(app, job_id).await?;
        let Ok(decision) = shoal_engine::decide(&state, Command::Resume) else {
            continue;
        };
        if decision.transitions.is_empty() {
            continue;
        }
        tracing::info!(job_id, "carrying on a job that stalled between steps");
        execute(app, &state, decision).await?;
        moved += 1;
    }
    Ok(moved)
}

/// Background duties, once a second-ish: renew leases, end tasks of agents gone longer than the
/// grace period, flag agents whose heartbeats are late, settle steps left unsettled by an error.
pub struct Sweeper {
    app: App,
}

impl Sweeper {
    pub fn new(app: App) -> Sweeper {
        Sweeper { app }
    }

    pub async fn run(self, cancel: CancellationToken) {
        sweep_loop(self.app, cancel).await
    }
}

async fn sweep_loop(app: App, shutdown: CancellationToken) {
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
            if let Err(e) = resume_stalled(&app).await {
                tracing::warn!(error = %e, "carrying on stalled jobs failed");
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
