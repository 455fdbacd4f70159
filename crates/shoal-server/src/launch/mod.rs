//! The launcher: the one door through which work reaches the agents. Quick execution, file
//! distribution, retry and terminate come through here, and so will plans, cron, flows and the
//! compatibility APIs. [`launch`] does, in order:
//!
//! 1. permission and scope checks ([`authorize`]: the caller's role in the scope, and the
//!    scope must exist);
//! 2. step checks ([`check_step`]: the seam for the script library's rules);
//! 3. target resolution (`targets`), at the moment the job starts, and the caller's host limit
//!    ([`authorize_hosts`]: a role bound to `env=staging` runs nothing elsewhere);
//! 4. persistence of the job, its steps and one task per host, in one transaction, with its
//!    origin and operator;
//! 5. dispatch of the first step (`dispatch`); the engine starts the later ones;
//! 6. the audit record: the request's (`api::authn` writes it, with the job this notes), or
//!    for launches without a request (cron, flows) one written here ([`audit_internal`]).
//!
//! The origin of a launch comes from the route it arrived by, never from the client.

pub mod dispatch;
mod script;

pub use script::script_step;

use crate::app::App;
use crate::auth::{Caller, Via};
use crate::checks::Rejected;
use crate::clock::now_ms;
use shoal_engine::{Command, Rejection};
use shoal_store::{NewJob, NewStep, Page, TaskFilter};
pub use shoal_types::access::Permission;
use shoal_types::api::{RetryMode, Targets};
use shoal_types::files::FileSource;
use shoal_types::{
    HostId, HostTaskStatus, JobId, JobType, LaunchMode, RunStatus, ScopeId, StepId, StepSpec,
    TaskKey,
};
use std::time::Instant;

/// Why a launch, retry or terminate did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a rule (its code says which).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("{0}")]
    NotFound(String),
    /// The job or step is not in a state that allows it (the engine said why).
    #[error(transparent)]
    State(#[from] Rejection),
    #[error("storage failed: {0}")]
    Store(#[from] shoal_store::Error),
    /// Storing or finding an upload a file step uses failed.
    #[error(transparent)]
    Upload(#[from] crate::uploads::Error),
}

impl From<crate::targets::Error> for Error {
    fn from(e: crate::targets::Error) -> Error {
        match e {
            crate::targets::Error::Rejected(r) => Error::Rejected(r),
            crate::targets::Error::Store(s) => Error::Store(s),
        }
    }
}

/// Who launches what, from where.
pub struct Request {
    pub caller: Caller,
    pub origin: LaunchMode,
    pub scope_id: ScopeId,
    pub name: String,
    pub job_type: JobType,
    /// The steps in order; the first starts at once, each next one when the one before it
    /// succeeded.
    pub steps: Vec<StepRequest>,
}

pub struct StepRequest {
    pub name: String,
    pub spec: StepSpec,
    pub targets: Targets,
}

/// A job just launched.
#[derive(Clone, Debug)]
pub struct Launched {
    pub job_id: JobId,
    pub name: String,
    /// The steps' ids, in order.
    pub step_ids: Vec<StepId>,
    /// Hosts of the first step, and how many of them had no connected agent.
    pub host_count: u64,
    pub abnormal_count: u64,
}

/// Fails unless the caller holds `permission` in `scope_id` and the scope exists. Checked
/// before anything is looked up or stored.
pub async fn authorize(
    app: &App,
    caller: &Caller,
    scope_id: ScopeId,
    permission: Permission,
) -> Result<(), Error> {
    caller.require(Some(scope_id), permission)?;
    crate::targets::check_scope(app, scope_id).await?;
    Ok(())
}

/// Fails, naming them, if any of `hosts` lies outside the host selector of the caller's role
/// in `scope_id`. Reads the hosts only when the role has a selector.
pub async fn authorize_hosts(
    app: &App,
    caller: &Caller,
    scope_id: ScopeId,
    hosts: &[HostId],
) -> Result<(), Error> {
    if caller.access.host_grant(scope_id).is_none() {
        return Ok(());
    }
    let found = app.store.hosts_by_ids(hosts).await?;
    let named: Vec<(String, &shoal_types::Labels)> = found
        .iter()
        .map(|h| {
            let name = if h.ip.is_empty() {
                h.hostname.clone()
            } else {
                format!("{} ({})", h.hostname, h.ip)
            };
            (name, &h.labels)
        })
        .collect();
    caller.require_hosts(scope_id, named.iter().map(|(n, l)| (n.as_str(), *l)))?;
    Ok(())
}

/// The seam for rules every step must pass whatever path launches it (disabled scripts,
/// dangerous commands: the script library of #11). Requests are checked for shape before they
/// get here.
pub fn check_step(_spec: &StepSpec) -> Result<(), Rejected> {
    Ok(())
}

/// Notes what an operation acted on for the request's audit record; a launch with no request
/// behind it (cron, flows, in-process callers) writes its own record.
async fn audit_internal(
    app: &App,
    caller: &Caller,
    origin: LaunchMode,
    action: &str,
    job_id: JobId,
) {
    caller.note.resource(format!("job:{job_id}"));
    if caller.via != Via::Internal {
        return;
    }
    let noted = caller.note.get();
    crate::audit::record(
        app,
        shoal_store::NewAuditEvent {
            actor: caller.name.clone(),
            actor_kind: "system".to_string(),
            user_id: Some(caller.user_id),
            origin: origin.as_str().to_string(),
            scope_id: noted.scope_id,
            action: action.to_string(),
            resource: format!("job:{job_id}"),
            outcome: "ok".to_string(),
            ..Default::default()
        },
    )
    .await;
}

/// Launches a job: see the module docs for the order of things.
pub async fn launch(app: &App, req: Request) -> Result<Launched, Error> {
    let accepted = Instant::now();
    authorize(app, &req.caller, req.scope_id, Permission::Execute).await?;
    if req.steps.is_empty() {
        return Err(Rejected::invalid("a job needs at least one step").into());
    }
    for step in &req.steps {
        check_step(&step.spec)?;
    }
    let mut hosts = Vec::with_capacity(req.steps.len());
    for step in &req.steps {
        let resolved = crate::targets::resolve(app, req.scope_id, &step.targets).await?;
        authorize_hosts(app, &req.caller, req.scope_id, &resolved).await?;
        hosts.push(resolved);
    }
    // The steps are not empty (checked above), so neither is `hosts`.
    let first_hosts: &[HostId] = hosts.first().map_or(&[], Vec::as_slice);
    let connected = app.registry.connected_among(first_hosts);
    let now = now_ms();
    let steps = req
        .steps
        .iter()
        .zip(&hosts)
        .enumerate()
        .map(|(i, (step, hosts))| {
            let first = i == 0;
            NewStep {
                name: step.name.clone(),
                step_type: step.spec.step_type(),
                spec: step.spec.to_stored(),
                status: if first {
                    RunStatus::Running
                } else {
                    RunStatus::Blank
                },
                owner: first.then(|| app.server_id.clone()),
                lease_until: first.then(|| now + app.lease_ms()),
                // Later steps decide who is connected when they start.
                tasks: hosts
                    .iter()
                    .map(|h| {
                        let up = !first || connected.contains(h);
                        (*h, shoal_engine::initial_status(up))
                    })
                    .collect(),
            }
        })
        .collect();
    let created = app
        .store
        .create_job(NewJob {
            scope_id: req.scope_id,
            name: req.name.clone(),
            job_type: req.job_type,
            launch_mode: req.origin,
            operator: req.caller.name.clone(),
            start: true,
            now,
            steps,
        })
        .await?;
    let first_step = *created
        .step_ids
        .first()
        .ok_or_else(|| shoal_store::Error::Corrupt("a job was created without a step".into()))?;
    metrics::gauge!("shoal_jobs_running").increment(1.0);
    metrics::gauge!("shoal_steps_running").increment(1.0);
    for (step, step_id) in req.steps.iter().zip(&created.step_ids) {
        ref_uploads(app, &step.spec, *step_id).await;
    }
    let keys: Vec<TaskKey> = first_hosts
        .iter()
        .filter(|h| connected.contains(h))
        .map(|&host_id| TaskKey {
            step_id: first_step,
            attempt: 0,
            host_id,
        })
        .collect();
    let mut steps = req.steps;
    let first_spec = steps.swap_remove(0).spec;
    dispatch::start(
        app,
        dispatch::Start {
            job_id: created.job_id,
            step_id: first_step,
            attempt: 0,
            spec: first_spec,
            now,
            keys,
            accepted: Some(accepted),
        },
    )
    .await;
    crate::steps::progress(app, first_step).await;
    audit_internal(app, &req.caller, req.origin, "job.launch", created.job_id).await;
    Ok(Launched {
        job_id: created.job_id,
        name: req.name,
        step_ids: created.step_ids,
        host_count: first_hosts.len() as u64,
        abnormal_count: (first_hosts.len() - connected.len()) as u64,
    })
}

/// Records that a file step uses its uploads, so they do not expire under it.
async fn ref_uploads(app: &App, spec: &StepSpec, step_id: StepId) {
    let StepSpec::File(spec) = spec else {
        return;
    };
    for source in &spec.sources {
        if let FileSource::Upload { upload_id, .. } = source
            && let Err(e) = app.store.ref_upload(upload_id, step_id).await
        {
            // The scan finds it missing and the step says so.
            tracing::warn!(step_id, upload_id, error = %e, "recording an upload's use failed");
        }
    }
}

/// Terminates a job: the engine stops its running step (undelivered tasks end as terminated,
/// running ones are killed on their hosts) and the step ends StopSuccess once no host runs.
pub async fn terminate(
    app: &App,
    caller: &Caller,
    origin: LaunchMode,
    job_id: JobId,
) -> Result<(), Error> {
    let job = app
        .store
        .get_job(job_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no job {job_id}")))?;
    authorize(app, caller, job.scope_id, Permission::Operate).await?;
    let state = crate::steps::state_of(app, &job).await?;
    let decision = shoal_engine::decide(&state, Command::Terminate)?;
    crate::steps::execute(app, &state, decision).await?;
    audit_internal(app, caller, origin, "job.terminate", job_id).await;
    Ok(())
}

/// A retry just started.
pub struct Retried {
    pub step_id: StepId,
    pub attempt: u32,
    /// Hosts that run again.
    pub rerun_count: u64,
}

/// Starts a new attempt of an ended step: failed hosts only, or every host.
pub async fn retry(
    app: &App,
    caller: &Caller,
    origin: LaunchMode,
    step_id: StepId,
    mode: RetryMode,
) -> Result<Retried, Error> {
    let step = app
        .store
        .get_step(step_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no step {step_id}")))?;
    let job = app
        .store
        .get_job(step.job_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no job {}", step.job_id)))?;
    authorize(app, caller, job.scope_id, Permission::Operate).await?;
    let filter = TaskFilter {
        host_id: None,
        step_id,
        attempt: step.attempt,
        statuses: vec![],
        ip: None,
        keyword: None,
        group: None,
    };
    let page = Page {
        start: 0,
        length: u32::MAX,
    };
    let previous: Vec<(HostId, HostTaskStatus)> = app
        .store
        .list_tasks(&filter, page)
        .await?
        .data
        .iter()
        .map(|t| (t.host_id, t.status))
        .collect();
    let hosts: Vec<HostId> = previous.iter().map(|(h, _)| *h).collect();
    let connected = app.registry.connected_among(&hosts);
    let state = crate::steps::state_of(app, &job).await?;
    let decision = shoal_engine::decide(
        &state,
        Command::Retry {
            step_id,
            mode,
            previous: &previous,
            connected: &connected,
        },
    )?;
    let rerun_count = decision
        .transitions
        .iter()
        .map(|t| match t {
            shoal_engine::Transition::Attempt { tasks, .. } => tasks
                .iter()
                .filter(|(_, s)| *s != HostTaskStatus::LastSuccess)
                .count() as u64,
            _ => 0,
        })
        .sum();
    let rerun: Vec<HostId> = decision
        .transitions
        .iter()
        .flat_map(|t| match t {
            shoal_engine::Transition::Attempt { tasks, .. } => tasks
                .iter()
                .filter(|(_, s)| *s != HostTaskStatus::LastSuccess)
                .map(|(h, _)| *h)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    authorize_hosts(app, caller, job.scope_id, &rerun).await?;
    crate::steps::execute(app, &state, decision).await?;
    audit_internal(app, caller, origin, "step.retry", step.job_id).await;
    Ok(Retried {
        step_id,
        attempt: step.attempt + 1,
        rerun_count,
    })
}
