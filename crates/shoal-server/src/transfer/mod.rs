//! File steps, server side: start a validated transfer (scan the sources, plan every target's
//! files, dispatch `Fetch`), the swarm tracker that answers `WhoHas`, and the handling of the
//! agents' file messages.

use crate::api::ApiError;
use crate::app::App;
use crate::auth::Caller;
use shoal_types::api::ExecuteScriptResponse;
use shoal_types::files::FileSpec;
use shoal_types::{HostId, LaunchMode, ScopeId};

/// A file transfer request after validation: sources resolved to host ids (inline content
/// already stored as an upload), targets resolved, the spec ready to store with the step.
#[derive(Clone, Debug)]
pub struct ValidatedTransfer {
    pub scope_id: ScopeId,
    pub name: String,
    pub spec: FileSpec,
    /// Target hosts, deduplicated, in request order.
    pub targets: Vec<HostId>,
}

/// Creates the job and its file step and starts it.
pub async fn start(
    app: &App,
    caller: &Caller,
    launch_mode: LaunchMode,
    transfer: ValidatedTransfer,
) -> Result<ExecuteScriptResponse, ApiError> {
    let _ = (app, caller, launch_mode, transfer);
    Err(ApiError::new(
        shoal_types::api::ErrorCode::Unavailable,
        "file transfers are not wired yet",
    ))
}
