//! The `Fetch` executor: downloads a target's chunks as the tracker directs, caches and
//! announces them, assembles each file once its chunks are all held, and reports.
//!
//! Loop: while chunks are missing and fewer than [`MAX_IN_FLIGHT`] downloads run, ask the
//! tracker (`WhoHas`, with the failures since the last ask); each `Peers` assignment becomes a
//! download trying its holders in order ([`download`]); an empty answer waits `retry_ms` (at
//! least [`MIN_RETRY`]); an unanswered ask is repeated after [`REASK_AFTER`]. Verified chunks
//! are announced in `Have` batches ([`HAVE_BATCH`]); chunks already cached at start (resume)
//! go in the first `Have`. A chunk failing from every holder [`MAX_ROUNDS`] times fails the
//! files that need it (`ChecksumMismatch` if any failure was corruption, else
//! `Unavailable`). A new session (`Event::Session`) re-sends a `Have` of everything held and
//! asks again. Kill and timeout stop downloads at once (cached chunks stay for a retry) and
//! let a running assembly finish: nothing partial is ever at a destination.
//!
//! In strict mode, files whose directory is missing fail before anything is fetched for them.
//! When every file is written but the spec says some sources could not be read
//! (`FetchSpec::incomplete`), the fetch still ends failed with that error. A file's final
//! report says which holders its chunks came from (the server's upload accounting).

pub mod download;
mod log;

use super::assemble::{self, AssembleError, AssembleOptions, TargetFile};
use super::cache::Cache;
use super::limit::RateLimiter;
use super::ticket::Ticket;
use super::{Hash, to_hex};
use crate::exec::{Sink, now_ms};
use download::{Done, Failure, Holders, Job, Part, PartRoutes, Shared, holder_name};
use log::{Log, bytes as human};
use shoal_proto::{AgentMsg, Assignment, End, FailedFetch, FetchSpec, FileProgressEntry, Outcome};
use shoal_types::TaskKey;
use shoal_types::files::{DirMode, FileError, FileErrorCode};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub const MAX_IN_FLIGHT: usize = 4;
pub const MAX_ROUNDS: u32 = 5;
pub const HAVE_BATCH: Duration = Duration::from_millis(10);
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);
pub const REASK_AFTER: Duration = Duration::from_secs(10);
pub const MIN_RETRY: Duration = Duration::from_millis(50);
/// Files assembled at once.
const MAX_ASSEMBLING: usize = 2;
/// Hashes per `Have` message.
const HAVE_MAX: usize = 8192;

/// What the session routes to a running fetch.
#[derive(Debug)]
pub enum Event {
    Peers {
        ticket: Ticket,
        assign: Vec<Assignment>,
        retry_ms: u32,
    },
    Part {
        hash: Hash,
        part: Part,
    },
    /// A new session began: earlier asks and `Have`s may be lost.
    Session,
}

/// Everything a fetch works with.
pub struct Ctx<H> {
    pub key: TaskKey,
    pub cache: Arc<Cache>,
    pub holders: H,
    /// File control messages to the server (not spooled; dropped when the queue is full).
    pub out: mpsc::Sender<AgentMsg>,
    pub events: mpsc::Receiver<Event>,
    pub download: RateLimiter,
    pub output_cap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Needed,
    InFlight,
    Held,
}

struct ChunkInfo {
    size: u32,
    files: Vec<usize>,
    /// The holder that delivered it during this fetch (not for chunks cached before).
    from: Option<i64>,
    state: ChunkState,
    rounds: u32,
    corrupt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileStatus {
    Pending,
    Assembling,
    Done,
    Failed,
}

struct FileInfo {
    status: FileStatus,
    reported: u64,
    started: Option<Instant>,
    /// Assembly found a chunk gone from the cache: fetched again once, then failed.
    /// Chunks found missing at assembly and fetched again (bounded by the file's chunk count).
    refetched: usize,
}

struct Fetch<H> {
    ctx: Ctx<H>,
    spec: Arc<FetchSpec>,
    chunks: HashMap<Hash, ChunkInfo>,
    files: Vec<FileInfo>,
    owner: Option<(u32, u32)>,
    first_error: Option<FileError>,
    failed: Vec<FailedFetch>,
    /// Chunks announced earlier and since lost from the cache (sent with the next `WhoHas`).
    lost: Vec<Hash>,
    have: Vec<Hash>,
    have_due: Option<Instant>,
    asked: Option<Instant>,
    retry_at: Option<Instant>,
    progress_at: Instant,
    ready: VecDeque<usize>,
    downloads: JoinSet<Done>,
    assembling: JoinSet<(usize, Result<(), AssembleError>)>,
    parts: PartRoutes,
}

/// Runs one fetch to its end. `kill` turning `true` ends it as [`End::Killed`].
pub async fn run<H: Holders, S: Sink>(
    ctx: Ctx<H>,
    spec: Arc<FetchSpec>,
    sink: &mut S,
    mut kill: watch::Receiver<bool>,
) -> Outcome {
    let started_at = now_ms();
    let deadline = Instant::now() + Duration::from_secs(u64::from(spec.timeout_secs.max(1)));
    let mut log = Log::new(ctx.output_cap, sink);
    log.started(started_at).await;
    ctx.download.set_rate(spec.download_limit);
    let account = spec.account.clone();
    let owner = tokio::task::spawn_blocking(move || owner_of(&account)).await;
    let owner = match owner {
        Ok(Ok(owner)) => owner,
        other => {
            let message = match other {
                Ok(Err(m)) => m,
                _ => "looking up the account failed".to_owned(),
            };
            log.line(format!("error: {message}")).await;
            let error = FileError {
                code: FileErrorCode::UserNotFound,
                message: message.clone(),
            };
            let files = (0..spec.files.len())
                .map(|i| FileProgressEntry {
                    index: i as u32,
                    bytes: 0,
                    speed: 0,
                    done: false,
                    error: Some(error.clone()),
                    from: Vec::new(),
                })
                .collect();
            let _ = ctx.out.try_send(AgentMsg::FileProgress {
                key: ctx.key,
                files,
            });
            return finish(
                End::FileFailed {
                    code: FileErrorCode::UserNotFound,
                    message,
                },
                started_at,
                log,
            );
        }
    };
    let mut f = Fetch::new(ctx, spec, owner);
    if f.spec.dir_mode == DirMode::Strict {
        f.fail_missing_dirs(&mut log).await;
    }
    let total: u64 = f.spec.files.iter().map(|x| x.size).sum();
    let cached: u64 = f
        .chunks
        .values()
        .filter(|c| c.state == ChunkState::Held)
        .map(|c| u64::from(c.size))
        .sum();
    log.line(format!(
        "fetching {} file(s), {} ({} already cached)",
        f.spec.files.len(),
        human(total),
        human(cached)
    ))
    .await;
    f.send_have_all();
    let mut kill_open = true;
    let end = loop {
        if *kill.borrow() {
            break Some(End::Killed);
        }
        f.start_assemblies();
        if f.finished() {
            break None;
        }
        f.maybe_ask();
        let wake = f.next_wake();
        tokio::select! {
            r = kill.changed(), if kill_open => match r {
                Ok(()) if *kill.borrow() => break Some(End::Killed),
                Ok(()) => {}
                // The task manager let go of the switch: nobody can kill any more.
                Err(_) => kill_open = false,
            },
            () = tokio::time::sleep_until(deadline) => break Some(End::TimedOut),
            Some(event) = f.ctx.events.recv() => f.on_event(event, &mut log).await,
            Some(done) = f.downloads.join_next() => match done {
                Ok(done) => f.on_download(done, &mut log).await,
                Err(e) => tracing::warn!(task = %f.ctx.key, error = %e, "chunk download task failed"),
            },
            Some(res) = f.assembling.join_next() => match res {
                Ok((index, result)) => f.on_assembled(index, result, &mut log).await,
                Err(e) => tracing::warn!(task = %f.ctx.key, error = %e, "assembly task failed"),
            },
            () = tokio::time::sleep_until(wake) => f.on_timer(),
        }
    };
    f.downloads.abort_all();
    // A running assembly ends atomically either way; wait for it so nothing is left behind.
    while let Some(res) = f.assembling.join_next().await {
        if let Ok((index, result)) = res {
            f.on_assembled(index, result, &mut log).await;
        }
    }
    f.flush_have();
    let end = match (end, f.first_error.take()) {
        (Some(end), _) => {
            let why = if end == End::Killed {
                "killed"
            } else {
                "timed out"
            };
            log.line(format!("stopped: {why}")).await;
            end
        }
        (None, Some(e)) => End::FileFailed {
            code: e.code,
            message: e.message,
        },
        (None, None) => match f.spec.incomplete.clone() {
            // Every planned file is written, but some sources could not be read: a partial
            // delivery is not a success (the files that arrived stay).
            Some(e) => {
                log.line(format!("all planned files complete; {}", e.message))
                    .await;
                End::FileFailed {
                    code: e.code,
                    message: e.message,
                }
            }
            None => {
                log.line("all files complete").await;
                End::Exited { code: 0 }
            }
        },
    };
    finish(end, started_at, log)
}

fn finish<S: Sink>(end: End, started_at: i64, log: Log<'_, S>) -> Outcome {
    let summary = log.finish();
    Outcome {
        end,
        started_at: Some(started_at),
        ended_at: now_ms(),
        output_len: summary.output_len,
        truncated: summary.truncated,
        digest: summary.digest,
        tag: summary.tag,
    }
}

/// `(uid, gid)` of `account` ("" = keep the agent's). Blocking (NSS).
fn owner_of(account: &str) -> Result<Option<(u32, u32)>, String> {
    if account.is_empty() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(account) {
        Ok(Some(u)) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
        Ok(None) => Err(format!("account {account:?} does not exist on this host")),
        Err(e) => Err(format!("looking up account {account:?}: {e}")),
    }
}

fn assemble_code(e: &AssembleError) -> FileErrorCode {
    match e {
        AssembleError::NoTargetDir { .. } => FileErrorCode::NoTargetDir,
        AssembleError::DestIsDir { .. } | AssembleError::ParentNotDir { .. } => {
            FileErrorCode::DestIsDir
        }
        AssembleError::DiskFull { .. } => FileErrorCode::DiskFull,
        AssembleError::PermissionDenied { .. } => FileErrorCode::PermissionDenied,
        _ => FileErrorCode::Other,
    }
}

mod state;

#[cfg(test)]
mod tests;
