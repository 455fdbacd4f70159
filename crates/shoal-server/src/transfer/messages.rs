//! The agents' file messages: `Manifest` to the waiting driver, `WhoHas`/`Have` to the swarm,
//! `FileProgress`/`Served` to the per-file rows, `GetChunk` answered with `ChunkPart`s of an
//! uploaded chunk.

use super::driver::ManifestReply;
use super::swarm::RETRY_MS;
use super::{download_key, upload_key};
use crate::app::App;
use crate::clock::now_ms;
use shoal_proto::{AgentMsg, FailedFetch, FileProgressEntry, MAX_CHUNK_PART, ServerMsg, ticket};
use shoal_store::{FileProgress, FileStatus};
use shoal_types::files::{Hash, to_hex};
use shoal_types::{HostId, TaskKey};

/// Most assignments per `WhoHas`.
const MAX_WANT: u32 = 64;
/// Tickets outlive the transfer's timeout by this much.
const TICKET_SLACK_MS: i64 = 60_000;
/// `retry_ms` while the plan is not ready.
const PLANNING_RETRY_MS: u32 = 1_000;

/// Handles a file message of `host_id`'s session. False (drop the session) when the message
/// speaks for another host; other messages are not file messages and are ignored here.
pub async fn handle(app: &App, host_id: HostId, msg: AgentMsg) -> bool {
    let key = match &msg {
        AgentMsg::Manifest { key, .. }
        | AgentMsg::WhoHas { key, .. }
        | AgentMsg::Have { key, .. }
        | AgentMsg::FileProgress { key, .. }
        | AgentMsg::Served { key, .. }
        | AgentMsg::GetChunk { key, .. } => *key,
        _ => return true,
    };
    if key.host_id != host_id {
        tracing::warn!(
            host_id,
            claimed = key.host_id,
            "agent sent a file message for another host; dropping the session"
        );
        return false;
    }
    match msg {
        AgentMsg::Manifest { key, files, errors } => {
            let waiter = app.files.waiters.lock().remove(&key);
            match waiter {
                Some(tx) => {
                    let _ = tx.send(ManifestReply { files, errors });
                }
                None => {
                    tracing::debug!(host_id, step_id = key.step_id, "manifest nobody waits for")
                }
            }
        }
        AgentMsg::WhoHas {
            key,
            want,
            failed,
            lost,
        } => who_has(app, key, want, &failed, &lost),
        AgentMsg::Have { key, chunks } => {
            let mut steps = app.files.steps.lock();
            if let Some(sw) = steps
                .get_mut(&(key.step_id, key.attempt))
                .and_then(|sf| sf.swarm.as_mut())
            {
                sw.have(host_id, &chunks);
            }
        }
        AgentMsg::FileProgress { key, files } => {
            let rows = file_progress(app, key, &files);
            app.files.progress.push(&app.store, rows).await;
        }
        AgentMsg::Served { key, files } => {
            let rows = served(app, key, host_id, &files);
            app.files.progress.push(&app.store, rows).await;
        }
        AgentMsg::GetChunk { key, hash } => get_chunk(app, key, hash),
        _ => {}
    }
    true
}

enum Reply {
    /// No such attempt (ended, or the server restarted): the agent should stop.
    Kill,
    /// Not planned yet, or not a target: ask again later.
    Later(u32),
    Assign(super::swarm::Answer, u32),
}

fn who_has(app: &App, key: TaskKey, want: u32, failed: &[FailedFetch], lost: &[Hash]) {
    let now = now_ms();
    let reply = {
        let mut steps = app.files.steps.lock();
        match steps.get_mut(&(key.step_id, key.attempt)) {
            None => Reply::Kill,
            Some(sf) => match sf.swarm.as_mut() {
                None => Reply::Later(PLANNING_RETRY_MS),
                Some(sw) => {
                    sw.lost_chunks(key.host_id, lost);
                    let answer = sw.who_has(key.host_id, want.min(MAX_WANT), failed, now);
                    match answer {
                        None => Reply::Later(PLANNING_RETRY_MS),
                        Some(answer) => Reply::Assign(answer, sf.timeout_secs),
                    }
                }
            },
        }
    };
    let (assign, timeout_secs, retry_ms) = match reply {
        Reply::Kill => {
            tracing::debug!(
                host_id = key.host_id,
                step_id = key.step_id,
                "who_has for an attempt that is over; killing it"
            );
            crate::launch::dispatch::kill(app, key);
            return;
        }
        Reply::Later(ms) => (Vec::new(), 0, ms),
        Reply::Assign(answer, timeout) => {
            for (hash, holder) in &answer.corrupt {
                tracing::warn!(
                    step_id = key.step_id,
                    target = key.host_id,
                    holder,
                    chunk = %to_hex(hash),
                    "a holder delivered a corrupt chunk"
                );
            }
            let retry = if answer.assign.is_empty() {
                RETRY_MS
            } else {
                0
            };
            (answer.assign, timeout, retry)
        }
    };
    let expires = now + i64::from(timeout_secs) * 1000 + TICKET_SLACK_MS;
    let ticket = ticket::Ticket::signed(
        key.step_id,
        key.attempt,
        key.host_id,
        expires,
        &app.files.ticket_key,
    );
    app.registry.send(
        key.host_id,
        ServerMsg::Peers {
            key,
            ticket,
            assign,
            retry_ms,
        },
    );
}

fn file_progress(app: &App, key: TaskKey, files: &[FileProgressEntry]) -> Vec<FileProgress> {
    let mut steps = app.files.steps.lock();
    let Some(sf) = steps.get_mut(&(key.step_id, key.attempt)) else {
        return Vec::new();
    };
    let Some(plan) = sf.plan.clone() else {
        return Vec::new();
    };
    if !plan.targets.contains(&key.host_id) {
        return Vec::new();
    }
    let now = now_ms();
    let mut rows = Vec::with_capacity(files.len());
    for e in files {
        let Some(f) = plan.fetch.files.get(e.index as usize) else {
            continue;
        };
        let (status, error) = match (&e.error, e.done) {
            (Some(err), _) => (FileStatus::Failed, Some(err.message.clone())),
            (None, true) => {
                sf.delivered
                    .insert((f.source_host_id, f.source_path.clone()));
                // What the file's own source served (other holders are targets, or sources
                // of the same content under another path: their live reports count those).
                let from_source: u64 = e
                    .from
                    .iter()
                    .filter(|(holder, _)| *holder == f.source_host_id)
                    .map(|(_, bytes)| *bytes)
                    .sum();
                if from_source > 0 {
                    *sf.received
                        .entry((f.source_host_id, f.source_path.clone()))
                        .or_default() += from_source;
                }
                (FileStatus::Success, None)
            }
            (None, false) => (FileStatus::Downloading, None),
        };
        rows.push(FileProgress {
            key: download_key(key.step_id, key.attempt, key.host_id, f),
            status,
            bytes_done: if e.done { f.size } else { e.bytes },
            speed: e.speed,
            error,
            at: now,
        });
    }
    rows
}

/// Upload-side accounting: the running total per (serving host, source path) as an
/// `Uploading` report of its upload row. Bytes of cached chunks ("" path) have no row.
fn served(app: &App, key: TaskKey, host: HostId, files: &[(String, u64)]) -> Vec<FileProgress> {
    let mut steps = app.files.steps.lock();
    let Some(sf) = steps.get_mut(&(key.step_id, key.attempt)) else {
        return Vec::new();
    };
    let now = now_ms();
    files
        .iter()
        .filter(|(path, _)| !path.is_empty())
        .map(|(path, bytes)| account(sf, key, host, path, *bytes, now))
        .collect()
}

fn account(
    sf: &mut super::StepFiles,
    key: TaskKey,
    host: HostId,
    path: &str,
    bytes: u64,
    now: i64,
) -> FileProgress {
    let entry = sf
        .served
        .entry((host, path.to_string()))
        .or_insert((0, now));
    let elapsed = (now - entry.1).max(1) as u64;
    entry.0 += bytes;
    entry.1 = now;
    FileProgress {
        key: upload_key(key.step_id, key.attempt, host, path),
        status: FileStatus::Uploading,
        bytes_done: entry.0,
        speed: bytes.saturating_mul(1000) / elapsed,
        error: None,
        at: now,
    }
}

/// Serves an uploaded chunk to a target of the attempt as `ChunkPart`s, at most
/// `CHUNK_READS` chunks at once over all sessions.
fn get_chunk(app: &App, key: TaskKey, hash: Hash) {
    let upload_name = {
        let steps = app.files.steps.lock();
        steps
            .get(&(key.step_id, key.attempt))
            .and_then(|sf| sf.plan.as_ref())
            .filter(|p| p.targets.contains(&key.host_id))
            .and_then(|p| p.upload_chunks.get(&hash).cloned())
    };
    let Some(name) = upload_name else {
        chunk_error(app, key, hash, "the chunk is not part of this transfer");
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        let Ok(_permit) = app.files.chunk_reads.acquire().await else {
            return;
        };
        let bytes = match app.uploads.read_chunk(&hash).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(step_id = key.step_id, chunk = %to_hex(&hash), error = %e, "reading an uploaded chunk failed");
                chunk_error(
                    &app,
                    key,
                    hash,
                    &format!("the server cannot read the chunk: {e}"),
                );
                return;
            }
        };
        let Some(tx) = app.registry.sender(key.host_id) else {
            return;
        };
        let total = bytes.len();
        let mut offset = 0usize;
        loop {
            let end = (offset + MAX_CHUNK_PART).min(total);
            let part = ServerMsg::ChunkPart {
                key,
                hash,
                offset: offset as u32,
                data: bytes[offset..end].to_vec(),
                last: end == total,
                error: None,
            };
            if tx.send(part).await.is_err() {
                return;
            }
            offset = end;
            if offset >= total {
                break;
            }
        }
        let row = {
            let mut steps = app.files.steps.lock();
            steps
                .get_mut(&(key.step_id, key.attempt))
                .map(|sf| account(sf, key, super::swarm::SERVER, &name, total as u64, now_ms()))
        };
        app.files
            .progress
            .push(&app.store, row.into_iter().collect())
            .await;
    });
}

fn chunk_error(app: &App, key: TaskKey, hash: Hash, message: &str) {
    app.registry.send(
        key.host_id,
        ServerMsg::ChunkPart {
            key,
            hash,
            offset: 0,
            data: Vec::new(),
            last: true,
            error: Some(message.to_string()),
        },
    );
}
