//! Dispatch: the only code that hands task messages (`Run`, `Fetch`, `Kill`) to agent sessions.
//! A step's attempt starts here (script steps are sent at once, file steps once their plan is
//! ready, by `transfer`), stops here, and is re-sent here to an agent that comes back.

use crate::active::{Payload, RunningStep, TaskSlot};
use crate::app::App;
use crate::clock::now_ms;
use shoal_proto::ServerMsg;
use shoal_types::{HostId, HostTaskStatus, JobId, RunStatus, StepId, StepSpec, TaskKey};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// An attempt to start whose task rows are stored.
pub struct Start {
    pub job_id: JobId,
    pub step_id: StepId,
    pub attempt: u32,
    pub spec: StepSpec,
    /// When the attempt started (Unix ms).
    pub now: i64,
    /// Waiting tasks whose agent is connected, in host order.
    pub keys: Vec<TaskKey>,
    /// When the request that started it was accepted (first-dispatch metrics).
    pub accepted: Option<Instant>,
}

/// Starts an attempt: registers the running step and its tasks, then sends scripts at once;
/// file steps scan and plan first (`transfer::begin`) and send when the plan is ready.
pub async fn start(app: &App, s: Start) {
    let payload = match &s.spec {
        StepSpec::Script(spec) => Payload::Script(Arc::new(spec.clone())),
        StepSpec::File(_) => Payload::File(None),
    };
    app.active.add_step(
        s.step_id,
        RunningStep {
            job_id: s.job_id,
            attempt: s.attempt,
            status: RunStatus::Running,
            payload,
            started_ms: s.now,
            last_event_ms: 0,
        },
    );
    register(app, s.job_id, &s.keys);
    match s.spec {
        StepSpec::Script(_) => send(app, &s.keys, s.accepted),
        StepSpec::File(spec) => {
            let begin = crate::transfer::Begin {
                step_id: s.step_id,
                attempt: s.attempt,
                keys: s.keys,
            };
            crate::transfer::begin(app, begin, spec).await;
        }
    }
}

/// Starts an attempt whose step and task rows are stored but not in memory (a later step of a
/// job, or a retry): reads its spec and waiting tasks; tasks of hosts without an agent end as
/// agent abnormal.
pub async fn start_stored(
    app: &App,
    job_id: JobId,
    step_id: StepId,
    attempt: u32,
) -> shoal_store::Result<()> {
    let step = app
        .store
        .get_step(step_id)
        .await?
        .ok_or_else(|| shoal_store::Error::NotFound(format!("step {step_id}")))?;
    let waiting: Vec<TaskKey> = app
        .store
        .open_tasks(&[step_id])
        .await?
        .into_iter()
        .filter(|t| t.key.attempt == attempt && t.status == HostTaskStatus::Waiting)
        .map(|t| t.key)
        .collect();
    let spec = match StepSpec::from_stored(step.step_type, &step.spec) {
        Ok(spec) => spec,
        Err(e) => {
            tracing::error!(step_id, error = %e, "a step cannot start");
            app.writer
                .settle(waiting, HostTaskStatus::ScriptFailed, &e.to_string())
                .await;
            return Ok(());
        }
    };
    let hosts: Vec<HostId> = waiting.iter().map(|k| k.host_id).collect();
    let connected = app.registry.connected_among(&hosts);
    let (keys, away): (Vec<TaskKey>, Vec<TaskKey>) = waiting
        .into_iter()
        .partition(|k| connected.contains(&k.host_id));
    start(
        app,
        Start {
            job_id,
            step_id,
            attempt,
            spec,
            now: now_ms(),
            keys,
            accepted: None,
        },
    )
    .await;
    app.writer
        .settle_lost(away, shoal_store::AGENT_NOT_CONNECTED)
        .await;
    Ok(())
}

/// Stops an attempt: running tasks are killed on their hosts, tasks never sent end as
/// terminated. (A disconnected agent's task ends as agent abnormal after the grace period.)
pub async fn stop(app: &App, step_id: StepId, attempt: u32) {
    app.active.set_step_status(step_id, RunStatus::Stopping);
    let mut unsent = Vec::new();
    for (key, task) in app.active.tasks_of_step(step_id, attempt) {
        if task.sent {
            kill(app, key);
        } else {
            unsent.push(key);
        }
    }
    for key in &unsent {
        app.active.remove_task(key);
    }
    app.writer
        .settle(
            unsent,
            HostTaskStatus::ScriptTerminated,
            "terminated before it started",
        )
        .await;
}

/// Asks a task's agent to kill it.
pub fn kill(app: &App, key: TaskKey) {
    app.registry.send(key.host_id, ServerMsg::Kill { key });
}

/// Registers open tasks (not sent yet) in the in-memory index.
pub fn register(app: &App, job_id: JobId, keys: &[TaskKey]) {
    app.active.add_tasks(keys.iter().map(|k| {
        (
            *k,
            TaskSlot {
                job_id,
                sent: false,
            },
        )
    }));
}

/// Hands the tasks' messages (`Run`, `Fetch`) to their agents' sessions and marks them sent.
/// A task whose session vanished in between stays open and unsent: it is sent when the agent
/// reconnects ([`resend`]), or ends as agent abnormal after the grace period.
pub fn send(app: &App, keys: &[TaskKey], accepted: Option<Instant>) {
    let mut first = true;
    for key in keys {
        let Some(msg) = app.active.run_message(*key, app.opts.output_cap) else {
            continue;
        };
        if app.registry.send(key.host_id, msg) {
            app.active.mark_sent(*key);
            if first {
                first = false;
                if let Some(t) = accepted {
                    metrics::histogram!("shoal_dispatch_first_seconds")
                        .record(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    if let Some(t) = accepted {
        metrics::histogram!("shoal_dispatch_all_seconds").record(t.elapsed().as_secs_f64());
    }
}

/// After an agent (re)connects: tasks it still knows report on their own (those of a stopping
/// step get their `Kill` again: one sent while the host had no session, or lost with a dropped
/// one, would never arrive); tasks never handed to it are sent now; tasks it was running but no
/// longer knows were lost with its process and end as agent abnormal. A file task for an agent
/// that came back without file distribution ends as agent abnormal too.
pub async fn resend(app: &App, host_id: HostId, peer_capable: bool, known: &[TaskKey]) {
    let known: HashSet<TaskKey> = known.iter().copied().collect();
    let mut lost = Vec::new();
    let mut too_old = Vec::new();
    for (key, task) in app.active.tasks_of_host(host_id) {
        if known.contains(&key) {
            let stopping = app
                .active
                .step(key.step_id)
                .is_some_and(|s| s.attempt == key.attempt && s.status == RunStatus::Stopping);
            if stopping {
                kill(app, key);
            }
            continue;
        }
        if task.sent {
            lost.push(key);
            continue;
        }
        let Some(msg) = app.active.run_message(key, app.opts.output_cap) else {
            continue;
        };
        if matches!(msg, ServerMsg::Fetch { .. }) && !peer_capable {
            app.active.remove_task(&key);
            too_old.push(key);
        } else if app.registry.send(host_id, msg) {
            app.active.mark_sent(key);
        }
    }
    if !lost.is_empty() {
        let reason = "the agent restarted and no longer knows this task";
        app.writer.settle_lost(lost, reason).await;
    }
    if !too_old.is_empty() {
        app.writer
            .settle_lost(too_old, crate::transfer::TOO_OLD)
            .await;
    }
}
