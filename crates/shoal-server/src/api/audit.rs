//! The audit trail: listed with filters, newest first, and exported as JSON lines. Read-only:
//! the API has no way to change or delete a record (retention deletes old ones).

use super::ApiError;
use super::convert::IntoApi as _;
use super::extract::Query;
use crate::app::App;
use crate::auth::Caller;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shoal_store::AuditFilter;
use shoal_types::access::Permission;
use shoal_types::api::{AuditPage, AuditRecord};
use shoal_types::{ScopeId, UnixMs};

/// Most records per page.
const MAX_LIMIT: u32 = 1000;
/// Records read per batch while exporting.
const EXPORT_BATCH: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    actor: Option<String>,
    action: Option<String>,
    scope_id: Option<ScopeId>,
    resource: Option<String>,
    outcome: Option<String>,
    address: Option<String>,
    before_id: Option<i64>,
    limit: Option<u32>,
}

/// The filter the caller may use: a platform admin reads every record; a scope owner reads
/// the records of the scopes it administers (and must name one with `scope_id`, or gets those
/// of all of them).
fn filter(caller: &Caller, q: &AuditQuery) -> Result<AuditFilter, ApiError> {
    let scope_ids = if caller.access.allows(None, Permission::Platform) {
        q.scope_id.map(|s| vec![s])
    } else if let Some(s) = q.scope_id {
        caller.require(Some(s), Permission::Administer)?;
        Some(vec![s])
    } else {
        caller.require_anywhere(Permission::Administer)?;
        Some(
            caller
                .access
                .grants
                .keys()
                .copied()
                .filter(|s| caller.access.allows(Some(*s), Permission::Administer))
                .collect(),
        )
    };
    if let Some(o) = &q.outcome
        && !["ok", "denied", "failed", "throttled"].contains(&o.as_str())
    {
        return Err(ApiError::invalid(format!(
            "unknown outcome {o:?}; use ok, denied, failed or throttled"
        )));
    }
    let text = |s: &Option<String>| {
        s.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(AuditFilter {
        from: q.from,
        to: q.to,
        actor: text(&q.actor),
        action: text(&q.action),
        scope_ids,
        resource: text(&q.resource),
        outcome: text(&q.outcome),
        address: text(&q.address),
        before_id: q.before_id,
    })
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("from" = Option<i64>, Query, description = "at or after (Unix ms)"),
           ("to" = Option<i64>, Query, description = "before (Unix ms)"),
           ("actor" = Option<String>, Query, description = "account name"),
           ("action" = Option<String>, Query, description = "exact action, or a prefix ending in '.' (job.)"),
           ("scope_id" = Option<i64>, Query, description = "scope"),
           ("resource" = Option<String>, Query, description = "exact resource (job:42)"),
           ("outcome" = Option<String>, Query, description = "ok, denied, failed or throttled"),
           ("address" = Option<String>, Query, description = "client address"),
           ("before_id" = Option<i64>, Query, description = "the previous page's next_before_id"),
           ("limit" = Option<u32>, Query, description = "1-1000 [default: 100]")),
    responses((status = 200, description = "Records, newest first", body = AuditPage)))]
pub async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be 1-{MAX_LIMIT}")));
    }
    let f = filter(&caller, &q)?;
    let data: Vec<AuditRecord> = app.store.list_audit(&f, limit).await?.into_api();
    let next_before_id = (data.len() == limit as usize)
        .then(|| data.last().map(|r| r.id))
        .flatten();
    Ok(axum::Json(AuditPage {
        data,
        next_before_id,
    }))
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    params(("from" = Option<i64>, Query, description = "at or after (Unix ms)"),
           ("to" = Option<i64>, Query, description = "before (Unix ms)"),
           ("actor" = Option<String>, Query, description = "account name"),
           ("action" = Option<String>, Query, description = "exact action, or a prefix ending in '.'"),
           ("scope_id" = Option<i64>, Query, description = "scope"),
           ("resource" = Option<String>, Query, description = "exact resource"),
           ("outcome" = Option<String>, Query, description = "ok, denied, failed or throttled"),
           ("address" = Option<String>, Query, description = "client address")),
    responses((status = 200, description = "Every matching record, newest first, one JSON object per line", body = String, content_type = "application/x-ndjson")))]
pub async fn export(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    if q.before_id.is_some() || q.limit.is_some() {
        return Err(ApiError::invalid(
            "export takes filters only, not before_id or limit",
        ));
    }
    let first = filter(&caller, &q)?;
    // Streams batch by batch (keyset on id): memory stays bounded whatever the trail's size.
    let stream = futures::stream::unfold(Some(first), move |f| {
        let app = app.clone();
        async move {
            let mut f = f?;
            match app.store.list_audit(&f, EXPORT_BATCH).await {
                Ok(rows) => {
                    let mut out = String::new();
                    for r in &rows {
                        let rec: AuditRecord = r.clone().into_api();
                        if let Ok(line) = serde_json::to_string(&rec) {
                            out.push_str(&line);
                            out.push('\n');
                        }
                    }
                    let next = (rows.len() == EXPORT_BATCH as usize)
                        .then(|| rows.last().map(|r| r.id))
                        .flatten()
                        .map(|id| {
                            f.before_id = Some(id);
                            f
                        });
                    Some((Ok::<_, std::io::Error>(out), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "exporting the audit trail failed");
                    Some((Err(std::io::Error::other("storage error")), None))
                }
            }
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        // Fused: the compression layer may poll once more after the end.
        Body::from_stream(futures::StreamExt::fuse(stream)),
    )
        .into_response())
}
