//! File distribution endpoints: uploads (streamed to the content-addressed upload store), file
//! transfers (validated, then launched through `launch`), and a step's per-file results.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Origin, Path, Query};
use super::hosts::page;
use super::jobs::{AttemptQuery, step_attempt};
use crate::app::App;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::transfer::validate::check_file_name;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use shoal_store::{FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD, FileStatus, FileTaskFilter};
use shoal_types::access::Permission;
use shoal_types::api::{
    FileCount, FileTaskRow, FileTransferRequest, FileTransferResponse, FilesSummary, Paged, Upload,
    UploadResponse,
};
use shoal_types::{HostId, StepId};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: String,
    /// Accepted like on the event stream (the auth layer checks it).
    #[allow(dead_code)]
    access_token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/uploads", tag = "files", params(UploadQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "The raw content (any bytes)"),
    responses((status = 200, description = "Stored (content-addressed)", body = UploadResponse)))]
/// `POST /api/v1/uploads?name=NAME`, the raw content as the body (streamed; the upload limit
/// applies, not the API's body limit).
pub async fn upload(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<UploadResponse>, ApiError> {
    // Uploads belong to no scope: whoever may start a file transfer somewhere may upload.
    caller.require_anywhere(Permission::Execute)?;
    check_file_name(&q.name)?;
    let limit = app.opts.upload_max_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(crate::uploads::Error::TooLarge { limit }.into());
    }
    let upload = app
        .uploads
        .put_stream(
            &*app.store,
            body.into_data_stream(),
            &q.name,
            &caller.name,
            limit,
            now_ms(),
        )
        .await
        .map_err(ApiError::from)?;
    caller.note.resource(format!("upload:{}", upload.id));
    let ttl_ms = i64::try_from(app.opts.upload_ttl.as_millis()).unwrap_or(i64::MAX);
    Ok(axum::Json(UploadResponse {
        expires_at: upload.last_used_at.saturating_add(ttl_ms),
        upload_id: upload.id,
        // The stored name (the first one this content was uploaded under): the default name at
        // the targets. A transfer source may give another with `name`.
        name: upload.name,
        size: upload.size,
    }))
}

#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "files",
    params(("id" = String, Path, description = "upload id: hex BLAKE3 of the content")),
    responses((status = 200, description = "The upload", body = Upload)))]
/// `GET /api/v1/uploads/{id}`: the stored record.
pub async fn get_upload(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Upload>, ApiError> {
    caller.require_anywhere(Permission::Execute)?;
    app.store
        .get_upload(&id.to_ascii_lowercase())
        .await?
        .map(|u| axum::Json(u.into_api()))
        .ok_or_else(|| ApiError::not_found(format!("no upload {id:?}")))
}

#[utoipa::path(post, path = "/api/v1/file-transfers", tag = "files",
    request_body = FileTransferRequest,
    responses((status = 200, description = "The job started", body = FileTransferResponse)))]
/// `POST /api/v1/file-transfers`.
pub async fn transfer(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Origin(origin): Origin,
    Json(req): Json<FileTransferRequest>,
) -> Result<axum::Json<FileTransferResponse>, ApiError> {
    // Checked before validation stores any inline content; the launcher checks again with
    // the resolved hosts.
    let scope_id = req.scope_id.unwrap_or(shoal_types::DEFAULT_SCOPE);
    crate::launch::authorize(&app, &caller, scope_id, Permission::Execute).await?;
    let t = crate::transfer::validate::validate(&app, &caller, req).await?;
    let request = crate::launch::Request {
        caller,
        origin,
        scope_id: t.scope_id,
        name: t.name.clone(),
        job_type: shoal_types::JobType::File,
        steps: vec![crate::launch::StepRequest {
            name: t.name,
            spec: shoal_types::StepSpec::File(t.spec),
            targets: t.targets,
        }],
    };
    let l = crate::launch::launch(&app, request).await?;
    Ok(axum::Json(FileTransferResponse {
        job_instance_id: l.job_id,
        job_instance_name: l.name,
        step_instance_id: l.step_ids.first().copied().unwrap_or_default(),
        host_count: l.host_count,
        abnormal_count: l.abnormal_count,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    attempt: Option<u32>,
    /// `upload` / `0` (serving side) or `download` / `1` (receiving side).
    mode: Option<String>,
    host_id: Option<HostId>,
    /// Comma-separated file status codes (1-5) or names.
    status: Option<String>,
    start: Option<u64>,
    length: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/steps/{id}/files", tag = "files", params(("id" = i64, Path, description = "step id"), FilesQuery),
    responses((status = 200, description = "A page of per-file rows", body = Paged<FileTaskRow>)))]
/// `GET /api/v1/steps/{id}/files`: per-file transfer rows of one attempt.
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<StepId>,
    Query(q): Query<FilesQuery>,
) -> Result<axum::Json<Paged<FileTaskRow>>, ApiError> {
    let attempt = step_attempt(&app, &caller, id, q.attempt).await?;
    let mode = match q.mode.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("upload" | "0") => Some(FILE_MODE_UPLOAD),
        Some("download" | "1") => Some(FILE_MODE_DOWNLOAD),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown mode {other:?}; use upload (0) or download (1)"
            )));
        }
    };
    let statuses = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(file_status)
        .collect::<Result<Vec<_>, _>>()?;
    let filter = FileTaskFilter {
        step_id: id,
        attempt,
        mode,
        host_id: q.host_id,
        statuses,
    };
    Ok(axum::Json(
        app.store
            .list_file_tasks(&filter, page(q.start, q.length, 100)?)
            .await?
            .into_api(),
    ))
}

fn file_status(s: &str) -> Result<FileStatus, ApiError> {
    let by_code = s.parse::<i32>().ok().and_then(FileStatus::from_code);
    let by_name = || {
        FileStatus::ALL
            .iter()
            .copied()
            .find(|f| f.text().eq_ignore_ascii_case(s))
    };
    by_code.or_else(by_name).ok_or_else(|| {
        ApiError::invalid(format!(
            "unknown file status {s:?}; use 1-5 or waiting, uploading, downloading, success, failed"
        ))
    })
}

#[utoipa::path(get, path = "/api/v1/steps/{id}/files/summary", tag = "files",
    params(("id" = i64, Path, description = "step id"), AttemptQuery),
    responses((status = 200, description = "Download-side file counts by status", body = FilesSummary)))]
pub async fn summary(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<StepId>,
    Query(q): Query<AttemptQuery>,
) -> Result<axum::Json<FilesSummary>, ApiError> {
    let attempt = step_attempt(&app, &caller, id, q.attempt).await?;
    let counts: Vec<FileCount> = app
        .store
        .file_task_counts(id, attempt)
        .await?
        .into_iter()
        .map(|(status, count)| FileCount { status, count })
        .collect();
    Ok(axum::Json(FilesSummary {
        step_instance_id: id,
        attempt,
        total: counts.iter().map(|c| c.count).sum(),
        counts,
    }))
}
