//! Resolving a job's targets (host ids, IPs, label selectors, saved groups) to host ids, at the
//! moment the job starts.

use crate::app::App;
use crate::checks::Rejected;
use shoal_types::api::{ErrorCode, Targets};
use shoal_types::{HostId, LabelSelector, ScopeId};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The targets name no usable host, or are malformed.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("reading hosts failed: {0}")]
    Store(#[from] shoal_store::Error),
}

/// Fails with UNKNOWN_SCOPE unless `scope_id` names a scope.
pub async fn check_scope(app: &App, scope_id: ScopeId) -> Result<(), Error> {
    if app
        .store
        .list_scopes()
        .await?
        .iter()
        .any(|s| s.id == scope_id)
    {
        return Ok(());
    }
    Err(Rejected::new(ErrorCode::UnknownScope, format!("no scope {scope_id}")).into())
}

/// Largest number of explicit ids or IPs in one request.
const MAX_EXPLICIT: usize = 100_000;

/// The hosts `targets` name in a scope the caller has checked ([`check_scope`]), now.
pub async fn resolve(
    app: &App,
    scope_id: ScopeId,
    targets: &Targets,
) -> Result<Vec<HostId>, Error> {
    if targets.host_ids.len() + targets.ips.len() > MAX_EXPLICIT {
        return Err(Rejected::invalid(format!(
            "at most {MAX_EXPLICIT} explicit hosts per request"
        ))
        .into());
    }
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
            return Err(Rejected::new(
                ErrorCode::UnknownHost,
                format!(
                    "unknown host id(s) in scope {scope_id}: {}",
                    missing.join(", ")
                ),
            )
            .into());
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
            return Err(Rejected::new(
                ErrorCode::UnknownHost,
                format!("no host with IP {ip} in scope {scope_id}"),
            )
            .into());
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
                Rejected::new(
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
        return Err(Rejected::new(ErrorCode::EmptyTarget, "the targets match no host").into());
    }
    Ok(ids.into_iter().collect())
}

pub fn parse_selector(s: &str) -> Result<LabelSelector, Rejected> {
    LabelSelector::parse(s).map_err(|e| Rejected::new(ErrorCode::InvalidSelector, e.to_string()))
}
