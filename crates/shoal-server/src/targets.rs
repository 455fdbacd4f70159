//! Resolving a job's targets (host ids, IPs, label selectors, saved groups) to host ids, at the
//! moment the job starts.

use crate::api::ApiError;
use crate::app::App;
use shoal_types::api::{ErrorCode, Targets};
use shoal_types::{HostId, LabelSelector, ScopeId};
use std::collections::BTreeSet;

/// Largest number of explicit ids or IPs in one request.
const MAX_EXPLICIT: usize = 100_000;

pub async fn resolve(
    app: &App,
    scope_id: ScopeId,
    targets: &Targets,
) -> Result<Vec<HostId>, ApiError> {
    if targets.host_ids.len() + targets.ips.len() > MAX_EXPLICIT {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("at most {MAX_EXPLICIT} explicit hosts per request"),
        ));
    }
    crate::api::check_scope(app, scope_id).await?;
    let mut ids: BTreeSet<HostId> = BTreeSet::new();
    if !targets.host_ids.is_empty() {
        let wanted: BTreeSet<HostId> = targets.host_ids.iter().copied().collect();
        let wanted_list: Vec<HostId> = wanted.iter().copied().collect();
        let found = app.store.hosts_by_ids(&wanted_list).await?;
        let usable: BTreeSet<HostId> = found
            .iter()
            .filter(|h| h.scope_id == scope_id && h.revoked_at.is_none())
            .map(|h| h.id)
            .collect();
        let missing: Vec<String> = wanted
            .difference(&usable)
            .take(20)
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UnknownHost,
                format!(
                    "unknown host id(s) in scope {scope_id}: {}",
                    missing.join(", ")
                ),
            ));
        }
        ids.extend(usable);
    }
    for ip in &targets.ips {
        let hosts = app.store.hosts_by_ip(Some(scope_id), ip.trim()).await?;
        let live: Vec<HostId> = hosts
            .iter()
            .filter(|h| h.revoked_at.is_none())
            .map(|h| h.id)
            .collect();
        if live.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UnknownHost,
                format!("no host with IP {ip} in scope {scope_id}"),
            ));
        }
        ids.extend(live);
    }
    let mut selectors = Vec::new();
    if let Some(s) = &targets.selector {
        selectors.push(parse_selector(s)?);
    }
    for gid in &targets.group_ids {
        let group = app
            .store
            .get_group(*gid)
            .await?
            .filter(|g| g.scope_id == scope_id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownGroup,
                    format!("no dynamic group {gid} in scope {scope_id}"),
                )
            })?;
        selectors.push(parse_selector(&group.selector)?);
    }
    if !selectors.is_empty() {
        for row in app.store.host_labels(scope_id).await? {
            if selectors.iter().any(|s| s.matches(&row.labels)) {
                ids.insert(row.id);
            }
        }
    }
    if ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyTarget,
            "the targets match no host",
        ));
    }
    Ok(ids.into_iter().collect())
}

pub fn parse_selector(s: &str) -> Result<LabelSelector, ApiError> {
    LabelSelector::parse(s).map_err(|e| ApiError::new(ErrorCode::InvalidSelector, e.to_string()))
}
