//! The driver of one file step attempt: scan the sources, plan, insert the per-file rows,
//! build the swarm and dispatch `Fetch` to the open targets. Runs as its own task; ends early
//! (without effect) when the attempt stops running or its state is dropped.

use super::plan::{Origin, Scanned};
use super::swarm::Swarm;
use super::{PlanIndex, TOO_OLD, download_key, upload_key};
use crate::app::App;
use crate::clock::now_ms;
use shoal_proto::{FetchSpec, ServerMsg, SourceError};
use shoal_store::{FileStatus, NewFileTask};
use shoal_types::files::{
    CHUNK_SIZE, ChunkRef, FileErrorCode, FileManifest, FileSource, FileSpec, Hash, from_hex,
    mbps_to_bytes,
};
use shoal_types::{HostId, HostTaskStatus, StepId, TaskKey};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long sources have to answer `Scan`.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// A source's `Manifest`.
#[derive(Debug)]
pub struct ManifestReply {
    pub files: Vec<FileManifest>,
    pub errors: Vec<SourceError>,
}

/// Per source host: its paths (merged over the sources naming it) and the account to read as.
type Scans = HashMap<HostId, (Vec<String>, String)>;

/// One source entry in request order: a host (its paths merged over every source naming it),
/// or an upload.
enum Entry {
    Host(HostId),
    Upload {
        upload_id: String,
        name: String,
        mode: u32,
    },
}

pub async fn run(
    app: App,
    step_id: StepId,
    attempt: u32,
    spec: Arc<FileSpec>,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("file_step", step_id, attempt);
    let _ = tracing::Instrument::instrument(
        async {
            // Not raced against `cancel` as a whole: dropping the driver inside a store call
            // can leave the SQLite connection's transaction open (sqlx 0.8 transactions are
            // not cancellation-safe). Only the wait for manifests watches `cancel`; every
            // later phase checks that the attempt still runs.
            drive(&app, step_id, attempt, &spec, &cancel).await;
        },
        span,
    )
    .await;
    // Waiters of this attempt that never got an answer.
    app.files
        .waiters
        .lock()
        .retain(|k, _| !(k.step_id == step_id && k.attempt == attempt));
}

async fn drive(
    app: &App,
    step_id: StepId,
    attempt: u32,
    spec: &FileSpec,
    cancel: &CancellationToken,
) {
    let (entries, scans) = entries(spec);
    let upload_limit = mbps_to_bytes(spec.upload_limit_mbps);
    let scanned = scan_all(
        app,
        step_id,
        attempt,
        &entries,
        &scans,
        upload_limit,
        cancel,
    )
    .await;
    if cancel.is_cancelled() || !app.active.is_running(step_id, attempt) {
        return;
    }
    let plan = super::plan::plan(&spec.target_dir, spec.duplicate, now_ms(), &scanned);
    let open: Vec<TaskKey> = app
        .active
        .tasks_of_step(step_id, attempt)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    tracing::info!(
        files = plan.files.len(),
        errors = plan.errors.len(),
        targets = open.len(),
        "file step planned"
    );
    let incomplete = super::plan::incomplete(&plan.errors);
    let fetch = Arc::new(FetchSpec {
        files: plan.files,
        account: spec.account.clone(),
        dir_mode: spec.dir_mode,
        download_limit: mbps_to_bytes(spec.download_limit_mbps),
        upload_limit: mbps_to_bytes(spec.upload_limit_mbps),
        timeout_secs: spec.timeout_secs,
        incomplete: incomplete.clone(),
    });
    let index = index(step_id, attempt, &fetch, &open);
    let rows = rows(step_id, attempt, &fetch, &plan.errors, &open, &index);
    if let Err(e) = app.store.insert_file_tasks(&rows).await {
        tracing::error!(error = %e, "storing the file plan failed");
        settle(
            app,
            &open,
            HostTaskStatus::FileSystemError,
            &format!("storing the file plan failed: {e}"),
        )
        .await;
        return;
    }
    if fetch.files.is_empty() {
        let (status, reason) = match incomplete {
            Some(e) => (e.code.host_status(), e.message),
            None => (
                HostTaskStatus::SourceNotFound,
                "the sources hold no file".to_string(),
            ),
        };
        settle(app, &open, status, &reason).await;
        return;
    }
    let swarm = build_swarm(app, spec, &fetch, &index, &scanned);
    let index = Arc::new(index);
    let ended_early = {
        let mut steps = app.files.steps.lock();
        let Some(sf) = steps.get_mut(&(step_id, attempt)) else {
            return;
        };
        sf.plan = Some(index.clone());
        sf.swarm = Some(swarm);
        let early = std::mem::take(&mut sf.ended_early);
        let mut rows = Vec::new();
        for (host, status, error) in early {
            if let Some(sw) = sf.swarm.as_mut() {
                sw.target_ended(host, status == HostTaskStatus::Success);
            }
            let key = TaskKey {
                step_id,
                attempt,
                host_id: host,
            };
            rows.extend(super::target_rows(
                sf,
                &index,
                key,
                status,
                error.as_deref(),
            ));
        }
        rows
    };
    super::close_rows(app, &ended_early).await;
    if !app.active.set_fetch(step_id, attempt, fetch) {
        return;
    }
    let unsent: Vec<TaskKey> = app
        .active
        .tasks_of_step(step_id, attempt)
        .into_iter()
        .filter(|(_, t)| !t.sent)
        .map(|(k, _)| k)
        .collect();
    crate::launch::dispatch::send(app, &unsent, None);
}

/// Source entries in request order, and per source host its merged paths and account.
fn entries(spec: &FileSpec) -> (Vec<Entry>, Scans) {
    let mut entries = Vec::new();
    let mut scans: Scans = HashMap::new();
    for source in &spec.sources {
        match source {
            FileSource::Host {
                host_ids,
                paths,
                account,
            } => {
                for h in host_ids {
                    match scans.get_mut(h) {
                        Some((p, _)) => {
                            p.extend(
                                paths
                                    .iter()
                                    .filter(|x| !p.contains(x))
                                    .cloned()
                                    .collect::<Vec<_>>(),
                            );
                        }
                        None => {
                            scans.insert(*h, (paths.clone(), account.clone()));
                            entries.push(Entry::Host(*h));
                        }
                    }
                }
            }
            FileSource::Upload {
                upload_id,
                name,
                mode,
            } => entries.push(Entry::Upload {
                upload_id: upload_id.clone(),
                name: name.clone(),
                mode: *mode,
            }),
        }
    }
    (entries, scans)
}

/// Sends every `Scan`, reads the uploads' manifests, waits for the answers.
async fn scan_all(
    app: &App,
    step_id: StepId,
    attempt: u32,
    entries: &[Entry],
    scans: &Scans,
    upload_limit: Option<u64>,
    cancel: &CancellationToken,
) -> Vec<Scanned> {
    let mut results: HashMap<HostId, Result<ManifestReply, String>> = HashMap::new();
    let mut pending = Vec::new();
    for (&host, (paths, account)) in scans {
        let key = TaskKey {
            step_id,
            attempt,
            host_id: host,
        };
        match app.registry.peer_capability(host) {
            None => {
                results.insert(
                    host,
                    Err("source agent abnormal: it is not connected".into()),
                );
            }
            Some(None) => {
                results.insert(host, Err(TOO_OLD.to_string()));
            }
            Some(Some(_)) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                app.files.waiters.lock().insert(key, tx);
                let msg = ServerMsg::Scan {
                    key,
                    paths: paths.clone(),
                    account: account.clone(),
                    upload_limit,
                };
                if app.registry.send(host, msg) {
                    pending.push((host, rx));
                } else {
                    app.files.waiters.lock().remove(&key);
                    results.insert(
                        host,
                        Err("source agent abnormal: it is not connected".into()),
                    );
                }
            }
        }
    }
    let hosts: Vec<HostId> = scans.keys().copied().collect();
    let ips: HashMap<HostId, String> = match app.store.hosts_by_ids(&hosts).await {
        Ok(found) => found.into_iter().map(|h| (h.id, h.ip)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading source hosts failed; source IPs unknown");
            HashMap::new()
        }
    };
    let mut uploads: HashMap<(String, String, u32), Result<ManifestReply, String>> = HashMap::new();
    for e in entries {
        if let Entry::Upload {
            upload_id,
            name,
            mode,
        } = e
        {
            uploads.insert(
                (upload_id.clone(), name.clone(), *mode),
                upload_manifest(app, upload_id, name, *mode).await,
            );
        }
    }
    let deadline = tokio::time::Instant::now() + SCAN_TIMEOUT;
    for (host, rx) in pending {
        let answer = tokio::select! {
            _ = cancel.cancelled() => Err(()),
            a = tokio::time::timeout_at(deadline, rx) => Ok(a),
        };
        let answer = match answer {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Err(_) => Err("the step ended before the sources answered".to_string()),
            _ => Err(format!(
                "source agent abnormal: no answer to the scan within {} s",
                SCAN_TIMEOUT.as_secs()
            )),
        };
        results.insert(host, answer);
    }
    let mut scanned = Vec::new();
    for e in entries {
        let (origin, result, paths) = match e {
            Entry::Host(host) => (
                Origin::Host {
                    host_id: *host,
                    ip: ips.get(host).cloned().unwrap_or_default(),
                },
                results.remove(host),
                scans.get(host).map(|(p, _)| p.clone()).unwrap_or_default(),
            ),
            Entry::Upload {
                upload_id,
                name,
                mode,
            } => (
                Origin::Upload,
                uploads.remove(&(upload_id.clone(), name.clone(), *mode)),
                vec![name.clone()],
            ),
        };
        scanned.push(match result {
            Some(Ok(reply)) => Scanned {
                origin,
                files: reply.files,
                errors: reply.errors,
            },
            Some(Err(message)) => Scanned {
                origin,
                files: vec![],
                errors: paths
                    .into_iter()
                    .map(|path| SourceError {
                        path,
                        code: FileErrorCode::Unavailable,
                        message: message.clone(),
                    })
                    .collect(),
            },
            None => Scanned {
                origin,
                files: vec![],
                errors: vec![],
            },
        });
    }
    scanned
}

/// The manifest of an uploaded source from its stored record.
async fn upload_manifest(
    app: &App,
    upload_id: &str,
    name: &str,
    mode: u32,
) -> Result<ManifestReply, String> {
    let upload = match app.store.get_upload(upload_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(format!("the upload {upload_id} no longer exists")),
        Err(e) => return Err(format!("reading the upload {upload_id} failed: {e}")),
    };
    let n = upload.chunks.len() as u64;
    let mut chunks = Vec::with_capacity(upload.chunks.len());
    for (i, hex) in upload.chunks.iter().enumerate() {
        let hash = from_hex(hex).ok_or_else(|| format!("the upload {upload_id} is damaged"))?;
        let size = if i as u64 + 1 == n {
            upload.size - u64::from(CHUNK_SIZE) * (n - 1)
        } else {
            u64::from(CHUNK_SIZE)
        };
        chunks.push(ChunkRef {
            hash,
            size: size as u32,
        });
    }
    Ok(ManifestReply {
        files: vec![FileManifest {
            path: String::new(),
            rel: name.to_string(),
            size: upload.size,
            mode: mode & 0o7777,
            chunks,
        }],
        errors: vec![],
    })
}

fn index(step_id: StepId, attempt: u32, fetch: &Arc<FetchSpec>, open: &[TaskKey]) -> PlanIndex {
    let mut upload_chunks = HashMap::new();
    let mut upload_rows = Vec::new();
    let mut seen = HashSet::new();
    for f in &fetch.files {
        if f.source_host_id == 0 {
            for c in &f.chunks {
                upload_chunks
                    .entry(c.hash)
                    .or_insert_with(|| f.source_path.clone());
            }
        }
        // An empty directory is nothing a source serves.
        let served = !shoal_types::files::is_dir_mode(f.mode);
        if served && seen.insert((f.source_host_id, f.source_path.clone())) {
            upload_rows.push(upload_key(
                step_id,
                attempt,
                f.source_host_id,
                &f.source_path,
            ));
        }
    }
    PlanIndex {
        fetch: fetch.clone(),
        targets: open.iter().map(|k| k.host_id).collect(),
        upload_chunks,
        upload_rows,
    }
}

/// The per-file rows of the attempt: downloads per target and file, failed rows per target
/// and source error, uploads per source file.
fn rows(
    step_id: StepId,
    attempt: u32,
    fetch: &FetchSpec,
    errors: &[super::plan::PlanError],
    open: &[TaskKey],
    index: &PlanIndex,
) -> Vec<NewFileTask> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for key in open {
        for f in &fetch.files {
            rows.push(NewFileTask {
                key: download_key(step_id, attempt, key.host_id, f),
                size: f.size,
                status: FileStatus::Waiting,
                error: None,
            });
        }
        for e in errors {
            let row = shoal_store::FileTaskKey {
                step_id,
                attempt,
                mode: shoal_store::FILE_MODE_DOWNLOAD,
                host_id: key.host_id,
                source_host_id: e.source_host_id,
                source_path: e.path.clone(),
                dest_path: e.dest.clone(),
            };
            if seen.insert(row.clone()) {
                rows.push(NewFileTask {
                    key: row,
                    size: 0,
                    status: FileStatus::Failed,
                    error: Some(e.message.clone()),
                });
            }
        }
    }
    let sizes: HashMap<(HostId, &str), u64> = fetch
        .files
        .iter()
        .map(|f| ((f.source_host_id, f.source_path.as_str()), f.size))
        .collect();
    for key in &index.upload_rows {
        let size = sizes
            .get(&(key.host_id, key.source_path.as_str()))
            .copied()
            .unwrap_or(0);
        rows.push(NewFileTask {
            key: key.clone(),
            size,
            status: FileStatus::Waiting,
            error: None,
        });
    }
    rows
}

fn build_swarm(
    app: &App,
    spec: &FileSpec,
    fetch: &FetchSpec,
    index: &PlanIndex,
    scanned: &[Scanned],
) -> Swarm {
    let mut sw = Swarm::new(spec.peer_to_peer, rand::random());
    sw.set_lost_after(app.opts.agent_lost_grace.as_millis() as i64);
    let planned: HashSet<Hash> = fetch
        .files
        .iter()
        .flat_map(|f| f.chunks.iter().map(|c| c.hash))
        .collect();
    for s in scanned {
        if let Origin::Host { host_id, .. } = s.origin {
            let addr = app.registry.peer_capability(host_id).flatten();
            let chunks = s
                .files
                .iter()
                .flat_map(|f| f.chunks.iter().map(|c| c.hash))
                .filter(|h| planned.contains(h));
            sw.add_source(host_id, addr, chunks.collect::<Vec<_>>());
        }
    }
    if !index.upload_chunks.is_empty() {
        sw.add_server(index.upload_chunks.keys().copied().collect::<Vec<_>>());
    }
    let needed: Vec<Hash> = planned.into_iter().collect();
    for &target in &index.targets {
        let addr = app.registry.peer_capability(target).flatten();
        sw.add_target(target, addr, &needed);
    }
    sw
}

async fn settle(app: &App, keys: &[TaskKey], status: HostTaskStatus, reason: &str) {
    for key in keys {
        app.active.remove_task(key);
    }
    app.writer.settle(keys.to_vec(), status, reason).await;
}
