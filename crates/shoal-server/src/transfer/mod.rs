//! File steps, server side: start a validated transfer (scan the sources, plan every target's
//! files, dispatch `Fetch`), the swarm tracker that answers `WhoHas`, and the handling of the
//! agents' file messages.
//!
//! Shape of a file step attempt: [`begin`] registers the target tasks (nothing is sent) and
//! spawns the driver (`driver.rs`): `Scan` to every source host, wait for the `Manifest`s,
//! plan (`shoal_plan::plan`), insert the per-file rows, build the swarm (`shoal_plan::swarm`),
//! then send every open target its `Fetch` exactly as scripts are dispatched. Agent messages go
//! through `messages.rs`; per-file progress is coalesced by `progress.rs`. When a target task ends
//! ([`target_ended`], from the writer) its rows are closed; when the step ends ([`step_ended`],
//! from the tracker) the upload rows are closed, every host gets `Release`, and the state goes.
//!
//! After a server restart, running file steps are not resumed: their open tasks end as file
//! system error (301) with a message asking for a retry (see `tracker::recover`).

mod driver;
mod messages;
mod progress;
#[cfg(test)]
mod tests;
pub mod validate;

pub use messages::handle as handle_agent_msg;
pub use shoal_plan::{plan, swarm};

use crate::app::App;
use crate::clock::now_ms;
use anyhow::Context as _;
use parking_lot::Mutex;
use ring::signature::Ed25519KeyPair;
use shoal_proto::{FetchFile, FetchSpec, ServerMsg};
use shoal_store::{FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD, FileProgress, FileStatus, FileTaskKey};
use shoal_types::files::{FileSource, FileSpec, Hash};
use shoal_types::{HostId, HostTaskStatus, ScopeId, StepId, TaskKey};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A file transfer request after validation: sources resolved to host ids (inline content
/// already stored as an upload), targets resolved, the spec ready to store with the step.
#[derive(Clone, Debug)]
pub struct ValidatedTransfer {
    pub scope_id: ScopeId,
    pub name: String,
    pub spec: FileSpec,
    /// The targets as requested (the launcher resolves them).
    pub targets: shoal_types::api::Targets,
}

/// Why a connected target or source without a peer port gets no file work.
pub const TOO_OLD: &str =
    "the agent is too old for file transfers (it announced no peer port); upgrade it";

/// Uploaded chunks read and sent at once, over all sessions (each holds one 4 MiB chunk).
const CHUNK_READS: usize = 8;
/// Pending `Release`s kept per disconnected host.
const PENDING_RELEASES: usize = 64;

/// The file-transfer side of the server's state (`App::files`).
pub struct Files {
    ticket_key: Ed25519KeyPair,
    ticket_public_hex: String,
    ca: crate::tls::Ca,
    steps: Mutex<HashMap<(StepId, u32), StepFiles>>,
    waiters: Mutex<HashMap<TaskKey, tokio::sync::oneshot::Sender<driver::ManifestReply>>>,
    progress: progress::Queue,
    chunk_reads: tokio::sync::Semaphore,
    pending_release: Mutex<HashMap<HostId, Vec<(StepId, u32)>>>,
}

/// One running file step attempt.
struct StepFiles {
    /// Source hosts scanned, and target hosts: they all get `Release` at the end.
    sources: Vec<HostId>,
    targets: Vec<HostId>,
    plan: Option<Arc<PlanIndex>>,
    swarm: Option<swarm::Swarm>,
    timeout_secs: u32,
    /// Bytes served per (serving host, source path), and when last reported.
    served: HashMap<(HostId, String), (u64, i64)>,
    /// Bytes the targets' final reports say they received per (source host or 0, source
    /// path): complete once the targets ended, unlike `served`, whose last periodic reports
    /// may still be on their way when the step ends.
    received: HashMap<(HostId, String), u64>,
    /// (source host or 0, source path) delivered to at least one target.
    delivered: HashSet<(HostId, String)>,
    /// Targets that ended before the plan existed: their rows are closed once inserted.
    ended_early: Vec<(HostId, HostTaskStatus, Option<String>)>,
    cancel: CancellationToken,
}

/// The plan of a step attempt, indexed for the message handlers.
struct PlanIndex {
    fetch: Arc<FetchSpec>,
    targets: HashSet<HostId>,
    /// Uploaded chunks the server serves, with the upload's name (for its upload row).
    upload_chunks: HashMap<Hash, String>,
    upload_rows: Vec<FileTaskKey>,
}

impl Files {
    /// Loads (or creates, mode 0600) `DATA_DIR/ticket.key`.
    pub fn load(data_dir: &std::path::Path, ca: crate::tls::Ca) -> anyhow::Result<Files> {
        let path = data_dir.join("ticket.key");
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = shoal_proto::ticket::generate_pkcs8()?;
                crate::fsutil::write_private(&path, &bytes)?;
                tracing::info!(file = %path.display(), "created the ticket signing key");
                bytes
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let key = shoal_proto::ticket::key_pair_from_pkcs8(&pkcs8)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok(Files::with_key(key, ca))
    }

    /// Throwaway keys (tests).
    #[cfg(test)]
    pub fn ephemeral() -> Files {
        let pkcs8 = shoal_proto::ticket::generate_pkcs8().expect("ticket key");
        let key = shoal_proto::ticket::key_pair_from_pkcs8(&pkcs8).expect("ticket key");
        Files::with_key(key, crate::tls::Ca::ephemeral().expect("ca"))
    }

    fn with_key(key: Ed25519KeyPair, ca: crate::tls::Ca) -> Files {
        Files {
            ticket_public_hex: hex::encode(shoal_proto::ticket::public_key(&key)),
            ticket_key: key,
            ca,
            steps: Mutex::default(),
            waiters: Mutex::default(),
            progress: progress::Queue::new(),
            chunk_reads: tokio::sync::Semaphore::new(CHUNK_READS),
            pending_release: Mutex::default(),
        }
    }

    #[cfg(test)]
    pub fn ca(&self) -> &crate::tls::Ca {
        &self.ca
    }

    #[cfg(test)]
    pub fn ticket_public_hex(&self) -> &str {
        &self.ticket_public_hex
    }

    /// The `PeerIdentity` of a host (a fresh key and certificate; blocking work).
    fn peer_identity(&self, host_id: HostId) -> anyhow::Result<ServerMsg> {
        let (cert_pem, key_pem) = self.ca.peer_identity(host_id)?;
        Ok(ServerMsg::PeerIdentity {
            cert_pem,
            key_pem,
            ticket_key: self.ticket_public_hex.clone(),
        })
    }
}

/// An attempt of a file step whose task rows exist (first run or retry).
pub(crate) struct Begin {
    pub step_id: StepId,
    pub attempt: u32,
    /// Tasks of targets whose agent was connected (waiting), registered by the launcher.
    pub keys: Vec<TaskKey>,
}

/// Starts an attempt the launcher registered (nothing is sent before the plan): ends targets
/// whose agent cannot do file steps, and spawns the driver.
pub(crate) async fn begin(app: &App, b: Begin, spec: FileSpec) {
    let too_old: Vec<TaskKey> = b
        .keys
        .iter()
        .copied()
        .filter(|k| app.registry.peer_capability(k.host_id) == Some(None))
        .collect();
    let mut sources: Vec<HostId> = Vec::new();
    for s in &spec.sources {
        if let FileSource::Host { host_ids, .. } = s {
            for h in host_ids {
                if !sources.contains(h) {
                    sources.push(*h);
                }
            }
        }
    }
    let cancel = CancellationToken::new();
    let state = StepFiles {
        sources,
        targets: b.keys.iter().map(|k| k.host_id).collect(),
        plan: None,
        swarm: None,
        timeout_secs: spec.timeout_secs,
        served: HashMap::new(),
        received: HashMap::new(),
        delivered: HashSet::new(),
        ended_early: Vec::new(),
        cancel: cancel.clone(),
    };
    app.files.steps.lock().insert((b.step_id, b.attempt), state);
    for key in &too_old {
        app.active.remove_task(key);
    }
    app.writer
        .settle(too_old, HostTaskStatus::AgentAbnormal, TOO_OLD)
        .await;
    let (app2, step_id, attempt) = (app.clone(), b.step_id, b.attempt);
    tokio::spawn(async move {
        driver::run(app2, step_id, attempt, Arc::new(spec), cancel).await;
    });
}

/// Row key of a target's download of one planned file.
fn download_key(step_id: StepId, attempt: u32, target: HostId, f: &FetchFile) -> FileTaskKey {
    FileTaskKey {
        step_id,
        attempt,
        mode: FILE_MODE_DOWNLOAD,
        host_id: target,
        source_host_id: (f.source_host_id != 0).then_some(f.source_host_id),
        source_path: f.source_path.clone(),
        dest_path: f.dest.clone(),
    }
}

/// Row key of a source's (or the server's, host 0) upload of one file.
fn upload_key(step_id: StepId, attempt: u32, source: HostId, path: &str) -> FileTaskKey {
    FileTaskKey {
        step_id,
        attempt,
        mode: FILE_MODE_UPLOAD,
        host_id: source,
        source_host_id: (source != 0).then_some(source),
        source_path: path.to_string(),
        dest_path: String::new(),
    }
}

fn close_row(
    key: FileTaskKey,
    status: FileStatus,
    error: Option<String>,
    now: i64,
) -> FileProgress {
    FileProgress {
        key,
        status,
        bytes_done: 0,
        speed: 0,
        error,
        at: now,
    }
}

/// A target's task ended (called by the writer for every stored task result): its
/// assignments are released, and the returned rows close its download rows still open —
/// success if the task succeeded, failed with the task's reason otherwise. The writer stores
/// them (with [`close_rows`]) before the step can settle, so a finished job never shows an
/// open file row.
pub(crate) fn target_ended(
    app: &App,
    key: TaskKey,
    status: HostTaskStatus,
    error: Option<&str>,
) -> Vec<FileProgress> {
    let success = status == HostTaskStatus::Success;
    let mut steps = app.files.steps.lock();
    let Some(sf) = steps.get_mut(&(key.step_id, key.attempt)) else {
        return Vec::new();
    };
    if let Some(sw) = sf.swarm.as_mut() {
        sw.target_ended(key.host_id, success);
    }
    let Some(plan) = sf.plan.clone() else {
        let error = error.map(str::to_string);
        sf.ended_early.push((key.host_id, status, error));
        return Vec::new();
    };
    if !plan.targets.contains(&key.host_id) {
        return Vec::new();
    }
    target_rows(sf, &plan, key, status, error)
}

/// Stores final row states now (not through the coalescing queue): they must be in place
/// before the step or job that owns them is seen as ended. Later queued progress cannot undo
/// them (final rows never change).
pub(crate) async fn close_rows(app: &App, rows: &[FileProgress]) {
    if rows.is_empty() {
        return;
    }
    // The agents' own final reports (speeds, start times) were queued before their tasks'
    // results; store them first, or the closing rows would win with less detail.
    app.files.progress.flush(&app.store).await;
    if let Err(e) = app.store.apply_file_progress(rows).await {
        tracing::warn!(error = %e, rows = rows.len(), "closing file rows failed; queueing them");
        app.files.progress.push(&app.store, rows.to_vec()).await;
    }
}

fn target_rows(
    sf: &mut StepFiles,
    plan: &PlanIndex,
    key: TaskKey,
    status: HostTaskStatus,
    error: Option<&str>,
) -> Vec<FileProgress> {
    let now = now_ms();
    let success = status == HostTaskStatus::Success;
    let (row_status, row_error) = if success {
        (FileStatus::Success, None)
    } else {
        let reason = error.unwrap_or_else(|| status.text());
        (FileStatus::Failed, Some(reason.to_string()))
    };
    plan.fetch
        .files
        .iter()
        .map(|f| {
            if success {
                sf.delivered
                    .insert((f.source_host_id, f.source_path.clone()));
            }
            let mut p = close_row(
                download_key(key.step_id, key.attempt, key.host_id, f),
                row_status,
                row_error.clone(),
                now,
            );
            if success {
                p.bytes_done = f.size;
            }
            p
        })
        .collect()
}

/// A step attempt ended (called by the tracker): upload rows are closed (success if the file
/// reached at least one target), every source and target gets `Release` (now, or when it
/// reconnects), and the attempt's state is dropped.
pub(crate) async fn step_ended(app: &App, step_id: StepId, attempt: u32) {
    let Some(sf) = app.files.steps.lock().remove(&(step_id, attempt)) else {
        return;
    };
    sf.cancel.cancel();
    let now = now_ms();
    let mut rows = Vec::new();
    if let Some(plan) = &sf.plan {
        for key in &plan.upload_rows {
            let source = (key.host_id, key.source_path.clone());
            let served = sf.served.get(&source).map_or(0, |(b, _)| *b);
            let bytes = served.max(sf.received.get(&source).copied().unwrap_or(0));
            let delivered = sf
                .delivered
                .contains(&(key.host_id, key.source_path.clone()));
            let (status, error) = if delivered {
                (FileStatus::Success, None)
            } else {
                (
                    FileStatus::Failed,
                    Some("no target received this file".to_string()),
                )
            };
            let mut p = close_row(key.clone(), status, error, now);
            p.bytes_done = bytes;
            rows.push(p);
        }
    }
    close_rows(app, &rows).await;
    let mut hosts: Vec<HostId> = sf.sources.iter().chain(&sf.targets).copied().collect();
    hosts.sort_unstable();
    hosts.dedup();
    release(app, &hosts, step_id, attempt);
    tracing::debug!(step_id, attempt, hosts = hosts.len(), "file step released");
}

/// Sends `Release` to `hosts`, keeping it for those not connected until they are.
pub(crate) fn release(app: &App, hosts: &[HostId], step_id: StepId, attempt: u32) {
    for &host in hosts {
        if app.registry.peer_capability(host).flatten().is_some()
            && app
                .registry
                .send(host, ServerMsg::Release { step_id, attempt })
        {
            continue;
        }
        let mut pending = app.files.pending_release.lock();
        let list = pending.entry(host).or_default();
        if list.len() < PENDING_RELEASES {
            list.push((step_id, attempt));
        }
    }
}

/// A host's session came up (`Some(peer address)`) or went down (`None`): the swarms use or
/// skip it as a holder; on connect it gets its identity and pending `Release`s.
pub(crate) async fn host_link(app: &App, host_id: HostId, peer: Option<SocketAddr>) {
    let now = now_ms();
    for sf in app.files.steps.lock().values_mut() {
        if let Some(sw) = sf.swarm.as_mut() {
            sw.host_link(host_id, peer, now);
        }
    }
    if peer.is_none() {
        return;
    }
    let app2 = app.clone();
    let identity = tokio::task::spawn_blocking(move || app2.files.peer_identity(host_id)).await;
    match identity {
        Ok(Ok(msg)) => {
            app.registry.send(host_id, msg);
        }
        Ok(Err(e)) => tracing::error!(host_id, error = %e, "issuing a peer identity failed"),
        Err(e) => tracing::error!(host_id, error = %e, "issuing a peer identity panicked"),
    }
    let pending = app.files.pending_release.lock().remove(&host_id);
    for (step_id, attempt) in pending.unwrap_or_default() {
        app.registry
            .send(host_id, ServerMsg::Release { step_id, attempt });
    }
}
