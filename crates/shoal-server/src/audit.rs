//! The audit trail: one record per state-changing request, sign-in attempt and manual operation,
//! appended to the store and kept for `--audit-retention-days`.
//!
//! The API's middleware writes the record of each request after its handler ran, from the
//! route, the status and what services noted on the request's [`Note`] (the scope, the
//! resource). Sign-in writes its own records (no caller exists yet). Records never hold a
//! secret: only names, ids, codes and messages.

use crate::app::App;
use crate::clock::now_ms;
use parking_lot::Mutex;
use shoal_store::NewAuditEvent;
use shoal_types::ScopeId;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What services add to a request's audit record. Cheap to clone; shared by the request's
/// caller and the middleware that writes the record.
#[derive(Clone, Debug, Default)]
pub struct Note(Arc<Mutex<Noted>>);

#[derive(Clone, Debug, Default)]
pub struct Noted {
    pub scope_id: Option<ScopeId>,
    pub resource: Option<String>,
}

impl Note {
    pub fn scope(&self, scope: ScopeId) {
        self.0.lock().scope_id.get_or_insert(scope);
    }
    /// The resource acted on (`job:42`); the last one noted wins.
    pub fn resource(&self, resource: impl Into<String>) {
        self.0.lock().resource = Some(resource.into());
    }
    pub fn get(&self) -> Noted {
        self.0.lock().clone()
    }
}

/// Appends a record. A failure to store it is logged, never returned: the operation it
/// records has already happened.
pub async fn record(app: &App, mut event: NewAuditEvent) {
    if event.at == 0 {
        event.at = now_ms();
    }
    truncate(&mut event.detail, 1024);
    truncate(&mut event.resource, 256);
    if let Err(e) = app.store.append_audit(event.clone()).await {
        tracing::error!(error = %e, action = %event.action, actor = %event.actor,
            "storing an audit record failed");
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Deletes audit records older than the retention, and sessions long expired, every hour.
pub struct Sweeper {
    pub app: App,
}

const SWEEP_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: u32 = 10_000;

impl Sweeper {
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            self.sweep_once().await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
        }
    }

    pub async fn sweep_once(&self) {
        let now = now_ms();
        let days = i64::from(self.app.opts.audit_retention_days);
        let before = now.saturating_sub(days.saturating_mul(86_400_000));
        let mut pruned = 0u64;
        loop {
            match self.app.store.prune_audit(before, PRUNE_BATCH).await {
                Ok(n) => {
                    pruned += n;
                    if n < u64::from(PRUNE_BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the audit trail failed");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, retention_days = days, "pruned old audit records");
        }
        if let Err(e) = self.app.store.prune_sessions(now - 86_400_000).await {
            tracing::warn!(error = %e, "pruning old sessions failed");
        }
    }
}
