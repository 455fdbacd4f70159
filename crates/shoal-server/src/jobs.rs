//! The job service: validate a script request, resolve its targets, persist the job in one
//! batched transaction, dispatch it, and operate on it (terminate, retry).

use crate::active::{OpenTask, Payload, RunningStep};
use crate::api::ApiError;
use crate::app::App;
use crate::auth::Caller;
use crate::clock::now_ms;
use base64::Engine as _;
use shoal_proto::ServerMsg;
use shoal_store::{
    JobTransition, LIVE_RUN_STATUSES, NewAttempt, NewJob, NewStep, Page, StepTransition, TaskFilter,
};
use shoal_types::api::{
    ErrorCode, ExecuteScriptRequest, ExecuteScriptResponse, RetryMode, RetryResponse,
};
use shoal_types::files::FileSpec;
use shoal_types::{
    DEFAULT_SCOPE, HostId, HostTaskStatus, JobId, JobType, Language, LaunchMode, RunStatus,
    ScriptSpec, StepId, StepType, TaskKey, limits,
};
use std::sync::Arc;

fn validate(req: &ExecuteScriptRequest) -> Result<(ScriptSpec, String), ApiError> {
    let content = match (&req.script, &req.script_base64) {
        (Some(s), None) => s.clone(),
        (None, Some(b)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| {
                    ApiError::invalid(format!("script_base64 is not valid base64: {e}"))
                })?;
            String::from_utf8(bytes)
                .map_err(|_| ApiError::invalid("script_base64 must decode to UTF-8 text"))?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give either script or script_base64, not both",
            ));
        }
        (None, None) => return Err(ApiError::invalid("script is required")),
    };
    if content.len() > limits::SCRIPT_MAX_BYTES {
        return Err(ApiError::new(
            ErrorCode::ScriptTooLarge,
            format!(
                "the script is {} bytes; the limit is {}",
                content.len(),
                limits::SCRIPT_MAX_BYTES
            ),
        ));
    }
    if content.trim().is_empty() {
        return Err(ApiError::invalid("the script is empty"));
    }
    let language = match &req.language {
        serde_json::Value::String(s) => Language::parse(s),
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .and_then(Language::from_code),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownLanguage,
            format!(
                "unknown language {}; use shell, python, perl, powershell or bat (or 1-5)",
                req.language
            ),
        )
    })?;
    let timeout_secs = crate::checks::timeout_secs(req.timeout)?;
    let params = req.params.as_deref().unwrap_or("");
    if params.len() > limits::PARAMS_MAX_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            "params are longer than 64 KiB",
        ));
    }
    let args = shlex::split(params).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParams,
            "params have an unterminated quote or escape",
        )
    })?;
    for k in req.env.keys() {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(ApiError::invalid(format!(
                "invalid environment variable name {k:?}"
            )));
        }
    }
    let account = crate::checks::account(req.account.as_deref())?;
    let workdir = req.workdir.clone().unwrap_or_default();
    if !workdir.is_empty() && !workdir.starts_with('/') {
        return Err(ApiError::invalid("workdir must be an absolute path"));
    }
    let name = crate::checks::job_name(req.name.as_deref(), "quick script")?;
    let spec = ScriptSpec {
        language,
        content,
        args,
        env: req
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        account,
        login_env: req.login_env,
        workdir,
        timeout_secs,
    };
    // The spec travels to agents in one frame; escaping can grow it well past the script.
    let encoded = serde_json::to_vec(&spec)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    let room = shoal_proto::MAX_FRAME_BYTES - 4096;
    if encoded > room {
        return Err(ApiError::new(
            ErrorCode::ScriptTooLarge,
            format!(
                "the script, params and environment take {encoded} bytes once encoded; the limit is {room}"
            ),
        ));
    }
    Ok((spec, name))
}

pub async fn execute_script(
    app: &App,
    caller: &Caller,
    launch_mode: LaunchMode,
    req: ExecuteScriptRequest,
) -> Result<ExecuteScriptResponse, ApiError> {
    let accepted = std::time::Instant::now();
    let (spec, name) = validate(&req)?;
    let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
    let hosts = crate::targets::resolve(app, scope_id, &req.targets).await?;
    let spec_json = serde_json::to_value(&spec)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let new = NewSingleStep {
        scope_id,
        name: &name,
        job_type: JobType::Script,
        step_type: StepType::Script,
        spec: spec_json,
        launch_mode,
        hosts: &hosts,
    };
    let launched = create_single_step_job(app, caller, new).await?;
    app.active.add_step(
        launched.step_id,
        RunningStep {
            job_id: launched.job_id,
            attempt: 0,
            status: RunStatus::Running,
            payload: Payload::Script(Arc::new(spec)),
            started_ms: launched.now,
            last_event_ms: 0,
        },
    );
    let keys = launched.waiting_keys(&hosts);
    dispatch(app, launched.job_id, &keys, Some(accepted));
    crate::tracker::progress(app, launched.step_id).await;
    Ok(launched.response(name, &hosts))
}

/// A job of one step to create running (script and file steps alike).
pub(crate) struct NewSingleStep<'a> {
    pub scope_id: shoal_types::ScopeId,
    pub name: &'a str,
    pub job_type: JobType,
    pub step_type: StepType,
    pub spec: serde_json::Value,
    pub launch_mode: LaunchMode,
    pub hosts: &'a [HostId],
}

/// A job just created by [`create_single_step_job`].
pub(crate) struct Launched {
    pub job_id: JobId,
    pub step_id: StepId,
    pub now: i64,
    pub connected: std::collections::HashSet<HostId>,
}

impl Launched {
    /// Keys of the hosts whose task starts waiting (their agent was connected), in order.
    pub fn waiting_keys(&self, hosts: &[HostId]) -> Vec<TaskKey> {
        hosts
            .iter()
            .filter(|h| self.connected.contains(h))
            .map(|&host_id| TaskKey {
                step_id: self.step_id,
                attempt: 0,
                host_id,
            })
            .collect()
    }

    pub fn response(&self, name: String, hosts: &[HostId]) -> ExecuteScriptResponse {
        ExecuteScriptResponse {
            job_instance_id: self.job_id,
            job_instance_name: name,
            step_instance_id: self.step_id,
            host_count: hosts.len() as u64,
            abnormal_count: (hosts.len() - self.connected.len()) as u64,
        }
    }
}

/// Creates a running job with one step and a task per host in one transaction: waiting for
/// hosts whose agent is connected, agent abnormal for the others.
pub(crate) async fn create_single_step_job(
    app: &App,
    caller: &Caller,
    new: NewSingleStep<'_>,
) -> Result<Launched, ApiError> {
    let connected = app.registry.connected_among(new.hosts);
    let tasks: Vec<(HostId, HostTaskStatus)> = new
        .hosts
        .iter()
        .map(|h| {
            (
                *h,
                if connected.contains(h) {
                    HostTaskStatus::Waiting
                } else {
                    HostTaskStatus::AgentAbnormal
                },
            )
        })
        .collect();
    let now = now_ms();
    let job = NewJob {
        scope_id: new.scope_id,
        name: new.name.to_string(),
        job_type: new.job_type,
        launch_mode: new.launch_mode,
        operator: caller.name.clone(),
        start: true,
        now,
        steps: vec![NewStep {
            name: new.name.to_string(),
            step_type: new.step_type,
            spec: new.spec,
            status: RunStatus::Running,
            owner: Some(app.server_id.clone()),
            lease_until: Some(now + app.lease_ms()),
            tasks,
        }],
    };
    let created = app.store.create_job(job).await?;
    let step_id = created
        .step_ids
        .first()
        .copied()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "job created without a step"))?;
    metrics::gauge!("shoal_jobs_running").increment(1.0);
    metrics::gauge!("shoal_steps_running").increment(1.0);
    Ok(Launched {
        job_id: created.job_id,
        step_id,
        now,
        connected,
    })
}

/// Registers open tasks and hands their `Run` messages to the agents' sessions. A task whose
/// session vanished in between stays open and unsent: it is sent when the agent reconnects, or
/// ends as agent abnormal after the grace period.
fn dispatch(app: &App, job_id: JobId, keys: &[TaskKey], accepted: Option<std::time::Instant>) {
    register(app, job_id, keys);
    send_runs(app, keys, accepted);
}

/// Registers open tasks (not sent yet) in the in-memory index.
pub(crate) fn register(app: &App, job_id: JobId, keys: &[TaskKey]) {
    app.active.add_tasks(keys.iter().map(|k| {
        (
            *k,
            OpenTask {
                job_id,
                sent: false,
            },
        )
    }));
}

/// Hands the tasks' messages (`Run`, `Fetch`) to their agents' sessions and marks them sent.
pub(crate) fn send_runs(app: &App, keys: &[TaskKey], accepted: Option<std::time::Instant>) {
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

/// Terminates a job: its running step moves to Stopping, undelivered tasks end as terminated,
/// running ones are killed on their hosts; the step ends StopSuccess once no host runs.
pub async fn terminate(app: &App, job_id: JobId) -> Result<(), ApiError> {
    let job = app
        .store
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {job_id}")))?;
    if job.status == RunStatus::Stopping {
        return Err(ApiError::state("the job is already stopping"));
    }
    if !shoal_engine::can_terminate(job.status) {
        return Err(ApiError::state(format!(
            "the job has ended ({}); nothing to terminate",
            job.status
        )));
    }
    let jt = JobTransition {
        job_id,
        from: LIVE_RUN_STATUSES.to_vec(),
        to: RunStatus::Stopping,
        started_at: None,
        ended_at: None,
    };
    app.store.transition_job(&jt).await?;
    for step in app.store.get_steps(job_id).await? {
        if !shoal_engine::can_terminate(step.status) {
            continue;
        }
        let t = StepTransition {
            step_id: step.id,
            from: vec![step.status],
            to: RunStatus::Stopping,
            started_at: None,
            ended_at: None,
            owner: None,
        };
        if !app.store.transition_step(&t).await? {
            continue;
        }
        app.active.set_step_status(step.id, RunStatus::Stopping);
        let mut unsent = Vec::new();
        for (key, task) in app.active.tasks_of_step(step.id, step.attempt) {
            if task.sent {
                // A disconnected agent's task ends as agent abnormal after the grace period.
                app.registry.send(key.host_id, ServerMsg::Kill { key });
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
        crate::tracker::progress(app, step.id).await;
    }
    Ok(())
}

/// The stored spec of a step, by step type.
enum StoredSpec {
    Script(ScriptSpec),
    File(FileSpec),
}

/// Starts a new attempt of an ended step: failed hosts only, or every host.
pub async fn retry(app: &App, step_id: StepId, mode: RetryMode) -> Result<RetryResponse, ApiError> {
    let step = app
        .store
        .get_step(step_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no step {step_id}")))?;
    if !shoal_engine::can_retry(step.status) {
        return Err(ApiError::state(format!(
            "the step is {}; only an ended step can be retried",
            step.status
        )));
    }
    let unreadable = |e: serde_json::Error| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored step spec is unreadable: {e}"),
        )
    };
    let payload = match step.step_type {
        StepType::File => StoredSpec::File(
            serde_json::from_value::<FileSpec>(step.spec.clone()).map_err(unreadable)?,
        ),
        _ => StoredSpec::Script(
            serde_json::from_value::<ScriptSpec>(step.spec.clone()).map_err(unreadable)?,
        ),
    };
    let filter = TaskFilter {
        host_id: None,
        step_id,
        attempt: step.attempt,
        statuses: vec![],
        ip: None,
        keyword: None,
        group: None,
    };
    let previous = app
        .store
        .list_tasks(
            &filter,
            Page {
                start: 0,
                length: u32::MAX,
            },
        )
        .await?;
    let previous: Vec<(HostId, HostTaskStatus)> = previous
        .data
        .iter()
        .map(|t| (t.host_id, t.status))
        .collect();
    let mut plan = shoal_engine::retry_plan(mode, &previous);
    let rerun: Vec<HostId> = plan
        .iter()
        .filter(|(_, s)| *s == HostTaskStatus::Waiting)
        .map(|(h, _)| *h)
        .collect();
    if rerun.is_empty() {
        return Err(ApiError::state(
            "every host already succeeded; nothing to retry",
        ));
    }
    let connected = app.registry.connected_among(&rerun);
    for (host, status) in plan.iter_mut() {
        if *status == HostTaskStatus::Waiting && !connected.contains(host) {
            *status = HostTaskStatus::AgentAbnormal;
        }
    }
    let now = now_ms();
    let attempt = step.attempt + 1;
    app.store
        .start_attempt(&NewAttempt {
            step_id,
            expected_attempt: step.attempt,
            now,
            owner: app.server_id.clone(),
            lease_until: now + app.lease_ms(),
            tasks: plan,
        })
        .await?;
    metrics::gauge!("shoal_jobs_running").increment(1.0);
    metrics::gauge!("shoal_steps_running").increment(1.0);
    app.events.publish(shoal_types::api::JobEvent::Job {
        job_id: step.job_id,
        status: RunStatus::Running,
    });
    let keys: Vec<TaskKey> = rerun
        .iter()
        .filter(|h| connected.contains(h))
        .map(|&host_id| TaskKey {
            step_id,
            attempt,
            host_id,
        })
        .collect();
    match payload {
        StoredSpec::Script(spec) => {
            app.active.add_step(
                step_id,
                RunningStep {
                    job_id: step.job_id,
                    attempt,
                    status: RunStatus::Running,
                    payload: Payload::Script(Arc::new(spec)),
                    started_ms: now,
                    last_event_ms: 0,
                },
            );
            dispatch(app, step.job_id, &keys, None);
        }
        StoredSpec::File(spec) => {
            let begin = crate::transfer::Begin {
                step_id,
                attempt,
                job_id: step.job_id,
                now,
                keys,
            };
            crate::transfer::begin(app, begin, spec).await;
        }
    }
    crate::tracker::progress(app, step_id).await;
    Ok(RetryResponse {
        step_instance_id: step_id,
        attempt,
        rerun_count: rerun.len() as u64,
    })
}
