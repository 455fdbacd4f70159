//! Hosts, labels, dynamic groups and target previews.

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::{Json, Path, Query};
use crate::app::App;
use crate::auth::Caller;
use crate::clock::now_ms;
use axum::Extension;
use axum::extract::State;
use serde::Deserialize;
use shoal_store::{HostFilter, NewGroup, Page};
use shoal_types::access::Permission;
use shoal_types::api::{
    Group, GroupRequest, Host, HostSummary, Paged, PreviewRequest, PreviewResponse,
    SetLabelsRequest,
};
use shoal_types::{AgentStatus, DEFAULT_SCOPE, HostId, Labels, ScopeId};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostQuery {
    scope_id: Option<ScopeId>,
    status: Option<String>,
    ip: Option<String>,
    q: Option<String>,
    os: Option<String>,
    selector: Option<String>,
    group_id: Option<i64>,
    start: Option<u64>,
    length: Option<u32>,
}

pub fn page(start: Option<u64>, length: Option<u32>, default: u32) -> Result<Page, ApiError> {
    let length = length.unwrap_or(default);
    if length == 0 || length > shoal_types::limits::PAGE_MAX {
        return Err(ApiError::invalid(format!(
            "length must be 1 to {}",
            shoal_types::limits::PAGE_MAX
        )));
    }
    Ok(Page {
        start: start.unwrap_or(0),
        length,
    })
}

#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts", params(HostQuery),
    responses((status = 200, description = "A page of hosts", body = Paged<Host>)))]
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HostQuery>,
) -> Result<axum::Json<Paged<Host>>, ApiError> {
    let scope_ids = readable(&caller, q.scope_id)?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(AgentStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown status {s:?}; use online, offline or abnormal"
            ))
        })?),
    };
    let mut selector = q
        .selector
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(crate::targets::parse_selector)
        .transpose()?;
    if let Some(gid) = q.group_id {
        let g = app.store.get_group(gid).await?.ok_or_else(|| {
            ApiError::new(
                shoal_types::api::ErrorCode::UnknownGroup,
                format!("no dynamic group {gid}"),
            )
        })?;
        caller.require(Some(g.scope_id), Permission::View)?;
        let gs = crate::targets::parse_selector(&g.selector)?;
        selector = Some(match selector {
            Some(mut s) => {
                s.terms.extend(gs.terms);
                s
            }
            None => gs,
        });
    }
    let ids = match &selector {
        Some(sel) => {
            let scope = q.scope_id.unwrap_or(DEFAULT_SCOPE);
            caller.require(Some(scope), Permission::View)?;
            let rows = app.store.host_labels(scope).await?;
            Some(
                rows.into_iter()
                    .filter(|r| sel.matches(&r.labels))
                    .map(|r| r.id)
                    .collect::<Vec<HostId>>(),
            )
        }
        None => None,
    };
    let filter = HostFilter {
        scope_id: q.scope_id,
        scope_ids,
        status,
        ip: q.ip,
        query: q.q,
        os: q.os,
        ids,
        include_revoked: false,
    };
    Ok(axum::Json(
        app.store
            .list_hosts(&filter, page(q.start, q.length, 100)?)
            .await?
            .into_api(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    scope_id: Option<ScopeId>,
}

#[utoipa::path(get, path = "/api/v1/hosts/summary", tag = "hosts", params(ScopeQuery),
    responses((status = 200, description = "Host counts by agent status", body = HostSummary)))]
pub async fn summary(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ScopeQuery>,
) -> Result<axum::Json<HostSummary>, ApiError> {
    let mut counts = Vec::new();
    match readable(&caller, q.scope_id)? {
        None => counts = app.store.host_status_counts(q.scope_id).await?,
        Some(scopes) => {
            for scope in scopes {
                counts.extend(app.store.host_status_counts(Some(scope)).await?);
            }
        }
    }
    let mut s = HostSummary::default();
    for (status, n) in counts {
        s.total += n;
        match status {
            AgentStatus::Online => s.online += n,
            AgentStatus::Offline => s.offline += n,
            AgentStatus::Abnormal => s.abnormal += n,
        }
    }
    Ok(axum::Json(s))
}

#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = i64, Path, description = "host id")),
    responses((status = 200, description = "The host", body = Host)))]
pub async fn get(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<HostId>,
) -> Result<axum::Json<Host>, ApiError> {
    Ok(axum::Json(
        host_in(&app, &caller, id, Permission::View)
            .await?
            .into_api(),
    ))
}

/// The host, once the caller is known to hold `permission` in its scope.
async fn host_in(
    app: &App,
    caller: &Caller,
    id: HostId,
    permission: Permission,
) -> Result<shoal_store::Host, ApiError> {
    let host = app
        .store
        .get_host(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no host {id}")))?;
    caller.require(Some(host.scope_id), permission)?;
    Ok(host)
}

/// The scopes a listing may show: `None` for any (a platform admin without `scope_id`). With
/// `scope_id` the caller must be able to read it.
pub(super) fn readable(
    caller: &Caller,
    scope_id: Option<ScopeId>,
) -> Result<Option<Vec<ScopeId>>, ApiError> {
    match scope_id {
        Some(s) => {
            caller.require(Some(s), Permission::View)?;
            Ok(None)
        }
        None => Ok(caller.access.readable_scopes()),
    }
}

fn validate_labels(labels: &Labels) -> Result<(), ApiError> {
    if labels.len() > 64 {
        return Err(ApiError::invalid("at most 64 labels per host"));
    }
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= 128
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if !key_ok {
            return Err(ApiError::invalid(format!(
                "invalid label key {k:?}: 1-128 of letters, digits, - _ . /"
            )));
        }
        if v.len() > 256 || v.contains([',', '(', ')']) {
            return Err(ApiError::invalid(format!(
                "invalid value for label {k:?}: at most 256 characters, no , ( )"
            )));
        }
    }
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/hosts/{id}/labels", tag = "hosts", params(("id" = i64, Path, description = "host id")),
    request_body = SetLabelsRequest,
    responses((status = 200, description = "The host with its new labels", body = Host)))]
pub async fn set_labels(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<HostId>,
    Json(req): Json<SetLabelsRequest>,
) -> Result<axum::Json<Host>, ApiError> {
    host_in(&app, &caller, id, Permission::Manage).await?;
    validate_labels(&req.labels)?;
    if !app.store.set_host_labels(id, &req.labels, now_ms()).await? {
        return Err(ApiError::not_found(format!("no host {id}")));
    }
    get(State(app), Extension(caller), Path(id)).await
}

#[utoipa::path(post, path = "/api/v1/hosts/{id}/revoke", tag = "hosts", params(("id" = i64, Path, description = "host id")),
    responses((status = 200, description = "The revoked host (its agent is disconnected)", body = Host)))]
pub async fn revoke(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<HostId>,
) -> Result<axum::Json<Host>, ApiError> {
    host_in(&app, &caller, id, Permission::Administer).await?;
    if !app.store.revoke_host(id, now_ms()).await? {
        return Err(ApiError::not_found(format!("no host {id}")));
    }
    app.registry.kick(id);
    get(State(app), Extension(caller), Path(id)).await
}

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(ScopeQuery),
    responses((status = 200, description = "Dynamic groups", body = Vec<Group>)))]
pub async fn list_groups(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ScopeQuery>,
) -> Result<axum::Json<Vec<Group>>, ApiError> {
    let scopes = readable(&caller, q.scope_id)?;
    let groups: Vec<_> = app
        .store
        .list_groups(q.scope_id)
        .await?
        .into_iter()
        .filter(|g| scopes.as_ref().is_none_or(|s| s.contains(&g.scope_id)))
        .collect();
    Ok(axum::Json(groups.into_api()))
}

fn validate_group(req: &GroupRequest) -> Result<(), ApiError> {
    if req.name.trim().is_empty() || req.name.chars().count() > 128 {
        return Err(ApiError::invalid("group name must be 1-128 characters"));
    }
    crate::targets::parse_selector(&req.selector)?;
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = GroupRequest,
    responses((status = 200, description = "The new group", body = Group)))]
pub async fn create_group(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<GroupRequest>,
) -> Result<axum::Json<Group>, ApiError> {
    let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
    caller.require(Some(scope_id), Permission::Manage)?;
    validate_group(&req)?;
    crate::targets::check_scope(&app, scope_id).await?;
    let g = NewGroup {
        scope_id,
        name: req.name.trim().to_string(),
        selector: req.selector.trim().to_string(),
        now: now_ms(),
    };
    let group = app
        .store
        .create_group(g)
        .await
        .map_err(|e| group_conflict(e, req.name.trim(), scope_id))?;
    caller.note.resource(format!("group:{}", group.id));
    Ok(axum::Json(group.into_api()))
}

/// A store error for a group write, with a duplicate name said in our words.
fn group_conflict(e: shoal_store::Error, name: &str, scope_id: ScopeId) -> ApiError {
    match e {
        shoal_store::Error::Conflict(_) => ApiError::new(
            shoal_types::api::ErrorCode::Conflict,
            format!("a group named {name:?} already exists in scope {scope_id}"),
        ),
        e => e.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path, description = "group id")),
    responses((status = 200, description = "The group", body = Group)))]
pub async fn get_group(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Group>, ApiError> {
    Ok(axum::Json(
        group_in(&app, &caller, id, Permission::View)
            .await?
            .into_api(),
    ))
}

/// The group, once the caller is known to hold `permission` in its scope.
async fn group_in(
    app: &App,
    caller: &Caller,
    id: i64,
    permission: Permission,
) -> Result<shoal_store::Group, ApiError> {
    let g = app
        .store
        .get_group(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {id}")))?;
    caller.require(Some(g.scope_id), permission)?;
    Ok(g)
}

#[utoipa::path(put, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path, description = "group id")),
    request_body = GroupRequest,
    responses((status = 200, description = "The updated group", body = Group)))]
pub async fn update_group(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(req): Json<GroupRequest>,
) -> Result<axum::Json<Group>, ApiError> {
    let current = group_in(&app, &caller, id, Permission::Manage).await?;
    validate_group(&req)?;
    if !app
        .store
        .update_group(id, req.name.trim(), req.selector.trim(), now_ms())
        .await
        .map_err(|e| group_conflict(e, req.name.trim(), current.scope_id))?
    {
        return Err(ApiError::not_found(format!("no group {id}")));
    }
    get_group(State(app), Extension(caller), Path(id)).await
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = i64, Path, description = "group id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_group(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    group_in(&app, &caller, id, Permission::Manage).await?;
    if app.store.delete_group(id).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no group {id}")))
    }
}

#[utoipa::path(post, path = "/api/v1/targets/preview", tag = "hosts", request_body = PreviewRequest,
    responses((status = 200, description = "What the targets resolve to now", body = PreviewResponse)))]
pub async fn preview(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<PreviewRequest>,
) -> Result<axum::Json<PreviewResponse>, ApiError> {
    let scope = req.scope_id.unwrap_or(DEFAULT_SCOPE);
    caller.require(Some(scope), Permission::View)?;
    crate::targets::check_scope(&app, scope).await?;
    let ids = crate::targets::resolve(&app, scope, &req.targets).await?;
    let mut resp = PreviewResponse {
        total: ids.len() as u64,
        online: 0,
        offline: 0,
        abnormal: 0,
        not_online_ids: vec![],
    };
    let connected = app.registry.connected_among(&ids);
    let abnormal = app.registry.abnormal_among(&ids);
    for id in ids {
        if abnormal.contains(&id) {
            resp.abnormal += 1;
        } else if connected.contains(&id) {
            resp.online += 1;
        } else {
            resp.offline += 1;
            if resp.not_online_ids.len() < 1000 {
                resp.not_online_ids.push(id);
            }
        }
    }
    Ok(axum::Json(resp))
}
