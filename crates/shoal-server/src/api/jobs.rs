//! Script executions, job history and detail, per-host results, result groups, logs, and the
//! terminate and retry operations.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Origin, Path, Query};
use super::hosts::page;
use crate::app::App;
use crate::auth::Caller;
use crate::launch;
use axum::Extension;
use axum::extract::State;
use base64::Engine as _;
use serde::Deserialize;
use shoal_store::{GroupBy, GroupKey, JobFilter, TaskFilter, TaskRow};
use shoal_types::access::Permission;
use shoal_types::api::{
    self, ExecuteScriptRequest, ExecuteScriptResponse, JobDetail, LogResponse, Paged, ResultGroups,
    RetryRequest, RetryResponse, StatusCount, StepDetail, TerminateResponse,
};
use shoal_types::{
    DEFAULT_SCOPE, HostId, HostTaskStatus, JobId, JobType, RunStatus, ScopeId, StepId, StepSpec,
    TaskKey,
};

/// Largest log slice one request returns.
const LOG_PAGE_MAX: u64 = 1024 * 1024;

#[utoipa::path(post, path = "/api/v1/script-executions", tag = "jobs",
    request_body = ExecuteScriptRequest,
    responses((status = 200, description = "The job started", body = ExecuteScriptResponse)))]
pub async fn execute_script(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Origin(origin): Origin,
    Json(req): Json<ExecuteScriptRequest>,
) -> Result<axum::Json<ExecuteScriptResponse>, ApiError> {
    let (spec, name) = launch::script_step(&req)?;
    let request = launch::Request {
        caller,
        origin,
        scope_id: req.scope_id.unwrap_or(DEFAULT_SCOPE),
        name: name.clone(),
        job_type: JobType::Script,
        steps: vec![launch::StepRequest {
            name,
            spec: StepSpec::Script(spec),
            targets: req.targets,
        }],
    };
    let launched = launch::launch(&app, request).await?;
    Ok(axum::Json(launched_response(launched)))
}

/// The answer to a launch (script executions and file transfers).
pub(super) fn launched_response(l: launch::Launched) -> ExecuteScriptResponse {
    ExecuteScriptResponse {
        job_instance_id: l.job_id,
        job_instance_name: l.name,
        step_instance_id: l.step_ids.first().copied().unwrap_or_default(),
        host_count: l.host_count,
        abnormal_count: l.abnormal_count,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    scope_id: Option<ScopeId>,
    from: Option<i64>,
    to: Option<i64>,
    /// Comma-separated status codes.
    status: Option<String>,
    operator: Option<String>,
    name: Option<String>,
    ip: Option<String>,
    start: Option<u64>,
    length: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "A page of jobs, newest first", body = Paged<api::Job>)))]
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<JobQuery>,
) -> Result<axum::Json<Paged<api::Job>>, ApiError> {
    let scope_ids = super::hosts::readable(&caller, q.scope_id)?;
    let mut statuses = Vec::new();
    for part in q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
    {
        let code: i32 = part
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(format!("status {part:?} is not a status code")))?;
        statuses.push(
            RunStatus::from_code(code)
                .ok_or_else(|| ApiError::invalid(format!("unknown status code {code}")))?,
        );
    }
    let host_ids = match q.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(ip) => Some(
            app.store
                .hosts_by_ip(q.scope_id, ip)
                .await?
                .into_iter()
                .map(|h| h.id)
                .collect(),
        ),
        None => None,
    };
    let filter = JobFilter {
        scope_id: q.scope_id,
        scope_ids,
        created_from: q.from,
        created_to: q.to,
        statuses,
        operator: q.operator.filter(|s| !s.is_empty()),
        name: q.name.filter(|s| !s.is_empty()),
        host_ids,
    };
    Ok(axum::Json(
        app.store
            .list_jobs(&filter, page(q.start, q.length, 20)?)
            .await?
            .into_api(),
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "The job with its steps and their task counts", body = JobDetail)))]
pub async fn detail(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<JobId>,
) -> Result<axum::Json<JobDetail>, ApiError> {
    let job = job_in(&app, &caller, id).await?;
    let mut steps = Vec::new();
    for step in app.store.get_steps(id).await? {
        let counts = app
            .store
            .task_counts(step.id, step.attempt)
            .await?
            .into_iter()
            .map(|(status, count)| StatusCount { status, count })
            .collect();
        steps.push(StepDetail {
            step: step.into_api(),
            counts,
        });
    }
    let finished = job.status.is_terminal();
    Ok(axum::Json(JobDetail {
        job: job.into_api(),
        finished,
        steps,
    }))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/terminate", tag = "jobs", params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "Terminating", body = TerminateResponse)))]
pub async fn terminate(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Origin(origin): Origin,
    Path(id): Path<JobId>,
) -> Result<axum::Json<TerminateResponse>, ApiError> {
    launch::terminate(&app, &caller, origin, id).await?;
    Ok(axum::Json(TerminateResponse {
        job_instance_id: id,
    }))
}

/// The job, once the caller is known to be able to read its scope.
pub(super) async fn job_in(
    app: &App,
    caller: &Caller,
    id: JobId,
) -> Result<shoal_store::Job, ApiError> {
    let job = app
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    caller.require(Some(job.scope_id), Permission::View)?;
    Ok(job)
}

/// The attempt asked for (default: the step's current one); NOT_FOUND for an unknown step,
/// INVALID_ARGUMENT for an attempt the step has not reached.
/// The caller must be able to read the step's scope.
pub(super) async fn step_attempt(
    app: &App,
    caller: &Caller,
    id: StepId,
    attempt: Option<u32>,
) -> Result<u32, ApiError> {
    let step = app
        .store
        .get_step(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no step {id}")))?;
    job_in(app, caller, step.job_id).await?;
    let attempt = attempt.unwrap_or(step.attempt);
    if attempt > step.attempt {
        return Err(ApiError::invalid(format!(
            "step {id} has no attempt {attempt}; the latest is {}",
            step.attempt
        )));
    }
    Ok(attempt)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    attempt: Option<u32>,
    /// Comma-separated host status codes.
    status: Option<String>,
    ip: Option<String>,
    keyword: Option<String>,
    group_status: Option<i32>,
    group_exit_code: Option<i32>,
    group_tag: Option<String>,
    group_digest: Option<String>,
    start: Option<u64>,
    length: Option<u32>,
}

fn host_status(code: &str) -> Result<HostTaskStatus, ApiError> {
    let n: i32 = code
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid(format!("status {code:?} is not a status code")))?;
    HostTaskStatus::from_code(n)
        .ok_or_else(|| ApiError::invalid(format!("unknown host status code {n}")))
}

#[utoipa::path(get, path = "/api/v1/steps/{id}/hosts", tag = "steps", params(("id" = i64, Path, description = "step id"), HostsQuery),
    responses((status = 200, description = "A page of per-host results", body = Paged<api::TaskRow>)))]
pub async fn hosts(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<StepId>,
    Query(q): Query<HostsQuery>,
) -> Result<axum::Json<Paged<api::TaskRow>>, ApiError> {
    let attempt = step_attempt(&app, &caller, id, q.attempt).await?;
    let statuses = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(host_status)
        .collect::<Result<Vec<_>, _>>()?;
    let group = match q.group_status {
        Some(code) => Some(GroupKey {
            status: host_status(&code.to_string())?,
            exit_code: q.group_exit_code,
            tag: q.group_tag.filter(|s| !s.is_empty()),
            digest: q.group_digest.filter(|s| !s.is_empty()),
        }),
        None => None,
    };
    let filter = TaskFilter {
        host_id: None,
        step_id: id,
        attempt,
        statuses,
        ip: q.ip.filter(|s| !s.trim().is_empty()),
        keyword: q.keyword.filter(|s| !s.is_empty()),
        group,
    };
    Ok(axum::Json(
        app.store
            .list_tasks(&filter, page(q.start, q.length, 100)?)
            .await?
            .into_api(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptQuery {
    pub(super) attempt: Option<u32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    attempt: Option<u32>,
    /// `status` (default: status, exit code and tag) or `output` (also identical output).
    by: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/steps/{id}/groups", tag = "steps", params(("id" = i64, Path, description = "step id"), GroupsQuery),
    responses((status = 200, description = "Result groups, largest first", body = ResultGroups)))]
pub async fn groups(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<StepId>,
    Query(q): Query<GroupsQuery>,
) -> Result<axum::Json<ResultGroups>, ApiError> {
    let by = match q.by.as_deref() {
        None | Some("" | "status") => GroupBy::Status,
        Some("output") => GroupBy::Output,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "by {other:?} is not a grouping; use status or output"
            )));
        }
    };
    let attempt = step_attempt(&app, &caller, id, q.attempt).await?;
    Ok(axum::Json(ResultGroups {
        attempt,
        by: by.into_api(),
        groups: app.store.result_groups(id, attempt, by).await?.into_api(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    attempt: Option<u32>,
    offset: Option<u64>,
    limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/steps/{id}/hosts/{host_id}/log", tag = "steps",
    params(("id" = i64, Path, description = "step id"), ("host_id" = i64, Path, description = "host id"), LogQuery),
    responses((status = 200, description = "A page of the host's output", body = LogResponse)))]
pub async fn log(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path((id, host_id)): Path<(StepId, HostId)>,
    Query(q): Query<LogQuery>,
) -> Result<axum::Json<LogResponse>, ApiError> {
    let attempt = step_attempt(&app, &caller, id, q.attempt).await?;
    let filter = TaskFilter {
        host_id: None,
        step_id: id,
        attempt,
        statuses: vec![],
        ip: None,
        keyword: None,
        group: None,
    };
    // The task row tells whether the host is part of the step, and whether it has ended.
    let row = find_task(&app, &filter, host_id).await?;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(256 * 1024).clamp(1, LOG_PAGE_MAX);
    let slice = app
        .store
        .read_log(
            TaskKey {
                step_id: id,
                attempt,
                host_id,
            },
            offset,
            limit,
        )
        .await?;
    let next_offset = slice.offset + slice.data.len() as u64;
    Ok(axum::Json(LogResponse {
        step_instance_id: id,
        host_id,
        attempt,
        offset: slice.offset,
        next_offset,
        total: slice.total,
        finished: row.status.is_terminal(),
        truncated: row.truncated,
        content: String::from_utf8_lossy(&slice.data).into_owned(),
        content_base64: base64::engine::general_purpose::STANDARD.encode(&slice.data),
    }))
}

async fn find_task(app: &App, filter: &TaskFilter, host_id: HostId) -> Result<TaskRow, ApiError> {
    let f = TaskFilter {
        host_id: Some(host_id),
        ..filter.clone()
    };
    let rows = app
        .store
        .list_tasks(&f, shoal_store::Page::first(1))
        .await?;
    rows.data.into_iter().next().ok_or_else(|| {
        ApiError::not_found(format!(
            "host {host_id} is not a target of step {}",
            filter.step_id
        ))
    })
}

#[utoipa::path(post, path = "/api/v1/steps/{id}/retry", tag = "steps", params(("id" = i64, Path, description = "step id")),
    request_body = RetryRequest,
    responses((status = 200, description = "The new attempt started", body = RetryResponse)))]
pub async fn retry(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Origin(origin): Origin,
    Path(id): Path<StepId>,
    Json(req): Json<RetryRequest>,
) -> Result<axum::Json<RetryResponse>, ApiError> {
    let r = launch::retry(&app, &caller, origin, id, req.mode).await?;
    Ok(axum::Json(RetryResponse {
        step_instance_id: r.step_id,
        attempt: r.attempt,
        rerun_count: r.rerun_count,
    }))
}
