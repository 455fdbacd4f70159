//! The executor: runs one script in its own cgroup (see [`crate::contain`]; its process group
//! where there are no cgroups) with a timeout and a kill switch, reads its output as raw bytes,
//! and hands the capped, coalesced output to a [`Sink`].
//!
//! stdout and stderr are one pipe (the same as `2>&1`), so the stored log keeps exactly the
//! order in which the script wrote; all of it is reported as [`Stream::Stdout`].
//!
//! A task ends when its main process has exited and the pipe is closed. Processes the script
//! leaves in the background keep running after a normal exit (scripts may start daemons): they
//! move to the agent's `detached` cgroup, and the agent stops reading their output
//! [`POST_EXIT_DRAIN`] after the main process exits. On timeout or kill every process of the
//! task gets SIGTERM, then SIGKILL after [`KILL_GRACE`], and with cgroups that includes the
//! ones that started a new session or daemonized.

use crate::contain;
use crate::launch::{self, Config};
use crate::output::Capture;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use shoal_proto::{End, MAX_OUTPUT_CHUNK, Outcome, Stream};
use shoal_types::{ScriptSpec, TaskKey, UnixMs};
use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::watch;
use tokio::time::Instant;

/// Between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the main process exited.
pub const POST_EXIT_DRAIN: Duration = Duration::from_secs(2);
/// Reads are coalesced into one chunk for up to this long...
pub const COALESCE_TIME: Duration = Duration::from_millis(50);
/// ...or until this many bytes are pending.
pub const COALESCE_BYTES: usize = 64 * 1024;
const READ_BUF: usize = 16 * 1024;
const _: () = assert!(COALESCE_BYTES + READ_BUF <= MAX_OUTPUT_CHUNK);

/// One script to run.
#[derive(Clone, Debug)]
pub struct Request {
    pub key: TaskKey,
    pub spec: ScriptSpec,
    /// Effective cap on stored output.
    pub output_cap: u64,
}

/// Where the executor reports. Output arrives in order, each call at most
/// `COALESCE_BYTES + 16 KiB` bytes and of one stream.
pub trait Sink: Send {
    /// The process spawned; `pgid` is its process group.
    fn started(&mut self, at: UnixMs, pgid: i32) -> impl Future<Output = ()> + Send;
    fn output(&mut self, stream: Stream, data: &[u8]) -> impl Future<Output = ()> + Send;
}

pub fn now_ms() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as UnixMs)
        .unwrap_or(0)
}

/// Runs `req` to its end. `kill` turning `true` terminates the task ([`End::Killed`]).
pub async fn execute<S: Sink>(
    cfg: &Config,
    req: Request,
    sink: &mut S,
    mut kill: watch::Receiver<bool>,
) -> Outcome {
    let mut capture = Capture::new(req.output_cap);
    let prepared = {
        let (cfg, key, spec) = (cfg.clone(), req.key, req.spec.clone());
        tokio::task::spawn_blocking(move || launch::prepare(&cfg, &key, &spec)).await
    };
    let prepared = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(end)) => return not_started(end, capture, sink).await,
        Err(e) => return not_started(failed(format!("preparing: {e}")), capture, sink).await,
    };
    let launch::Prepared {
        mut command,
        script,
        interpreter,
        output,
        group,
    } = prepared;
    if *kill.borrow() {
        drop(command);
        discard(script, group).await;
        return not_started(End::Killed, capture, sink).await;
    }
    let spawned = command.spawn();
    // The parent's copies of the pipe's write end go with the command, so the pipe closes
    // when the script and everything it started have closed theirs.
    drop(command);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            discard(script, group).await;
            let reason = format!("starting {}: {e}", interpreter.display());
            return not_started(failed(reason), capture, sink).await;
        }
    };
    let started_at = now_ms();
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(0);
    let task = contain::Task { pgid, group };
    sink.started(started_at, pgid).await;

    let mut output = match tokio::net::unix::pipe::Receiver::from_owned_fd(output.into()) {
        Ok(pipe) => Some(pipe),
        Err(e) => {
            tracing::error!(task = %req.key, error = %e, "reading the output pipe");
            None
        }
    };
    let timeout = Duration::from_secs(u64::from(req.spec.timeout_secs.max(1)));
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; READ_BUF];
    let mut pending = Pending::default();
    let mut status = None;
    let mut drain_until: Option<Instant> = None;
    let mut forced: Option<End> = None;
    let mut term_at: Option<Instant> = None;
    let mut hard_killed = false;
    let mut kill_open = true;

    while status.is_none() || output.is_some() {
        let flush_at = pending.flush_at();
        let event = tokio::select! {
            r = read_opt(&mut output, &mut buf) => Event::Read(r),
            st = child.wait(), if status.is_none() => Event::Exited(st),
            _ = sleep_until(flush_at) => Event::Flush,
            _ = tokio::time::sleep_until(deadline), if forced.is_none() && status.is_none() => Event::Timeout,
            r = kill.changed(), if forced.is_none() && status.is_none() && kill_open => match r {
                Ok(()) if *kill.borrow() => Event::Kill,
                Ok(()) => Event::Nothing,
                Err(_) => { kill_open = false; Event::Nothing }
            },
            _ = sleep_until(term_at.map(|t| t + KILL_GRACE)), if !hard_killed => Event::HardKill,
            _ = sleep_until(drain_until) => Event::DrainOver,
        };
        match event {
            Event::Read(Ok(n)) if n > 0 => {
                let stored = capture.push(Stream::Stdout, &buf[..n]);
                pending.push(Stream::Stdout, stored.keep, sink).await;
                if let Some(marker) = stored.marker {
                    pending.flush(sink).await;
                    sink.output(Stream::Agent, &marker).await;
                }
            }
            // EOF or a read error: the pipe is done.
            Event::Read(_) => output = None,
            Event::Exited(st) => {
                status = Some(st);
                drain_until = Some(Instant::now() + POST_EXIT_DRAIN);
            }
            Event::Flush => pending.flush(sink).await,
            Event::Timeout | Event::Kill => {
                forced = Some(if matches!(event, Event::Timeout) {
                    End::TimedOut
                } else {
                    End::Killed
                });
                task.signal(Signal::SIGTERM);
                term_at = Some(Instant::now());
            }
            Event::HardKill => {
                task.kill();
                hard_killed = true;
            }
            Event::DrainOver => output = None,
            Event::Nothing => {}
        }
    }
    pending.flush(sink).await;
    if let (Some(t), false) = (term_at, hard_killed) {
        // The main process died of SIGTERM; what is left of the task and ignores it gets
        // SIGKILL. Polled, so a terminate settles as soon as the task is gone.
        while task.alive() {
            if Instant::now() >= t + KILL_GRACE {
                task.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    close(task.group, forced.is_some()).await;
    remove_script(script);

    let end = match (forced, status) {
        (Some(end), _) => end,
        (None, Some(Ok(st))) => match (st.code(), st.signal()) {
            (Some(code), _) => End::Exited { code },
            (None, Some(signal)) => End::Signaled { signal },
            (None, None) => failed(format!("unknown exit status {st}")),
        },
        (None, Some(Err(e))) => failed(format!("waiting for the process: {e}")),
        (None, None) => failed("process state lost".to_owned()),
    };
    outcome(end, Some(started_at), capture)
}

/// Removes the cgroup of a task that ended: a terminated or timed-out task's remaining
/// processes are killed first; a task that ended on its own leaves its daemons detached.
async fn close(group: Option<contain::Group>, forced: bool) {
    let Some(group) = group else { return };
    let closed = tokio::task::spawn_blocking(move || {
        if forced {
            group.kill_and_remove();
        } else {
            group.detach_and_remove();
        }
    });
    if let Err(e) = closed.await {
        tracing::warn!(error = %e, "removing a task cgroup");
    }
}

/// Cleans up after a task that never started.
async fn discard(script: std::path::PathBuf, group: Option<contain::Group>) {
    remove_script(script);
    close(group, true).await;
}

enum Event {
    Read(std::io::Result<usize>),
    Exited(std::io::Result<std::process::ExitStatus>),
    Flush,
    Timeout,
    Kill,
    HardKill,
    DrainOver,
    Nothing,
}

fn failed(reason: String) -> End {
    End::StartFailed { reason }
}

/// Ends a task that never started; the reason is stored as agent output.
async fn not_started<S: Sink>(end: End, mut capture: Capture, sink: &mut S) -> Outcome {
    let text = match &end {
        End::StartFailed { reason } => format!("[shoal-agent: {reason}]\n"),
        End::UserNotFound { account } => {
            format!("[shoal-agent: account {account:?} does not exist on this host]\n")
        }
        End::Killed => "[shoal-agent: killed before it started]\n".to_owned(),
        _ => String::new(),
    };
    let bytes = capture.push_agent_text(&text);
    if !bytes.is_empty() {
        sink.output(Stream::Agent, &bytes).await;
    }
    outcome(end, None, capture)
}

fn outcome(end: End, started_at: Option<UnixMs>, capture: Capture) -> Outcome {
    let summary = capture.finish();
    Outcome {
        end,
        started_at,
        ended_at: now_ms(),
        output_len: summary.output_len,
        truncated: summary.truncated,
        digest: summary.digest,
        tag: summary.tag,
    }
}

async fn read_opt<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

fn remove_script(path: std::path::PathBuf) {
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::debug!(path = %path.display(), error = %e, "removing script file");
    }
}

/// Output waiting to be handed to the sink: one stream, at most `COALESCE_BYTES` (+ one read).
#[derive(Default)]
struct Pending {
    stream: Option<Stream>,
    buf: Vec<u8>,
    since: Option<Instant>,
}

impl Pending {
    fn flush_at(&self) -> Option<Instant> {
        self.since.map(|t| t + COALESCE_TIME)
    }

    async fn push<S: Sink>(&mut self, stream: Stream, data: &[u8], sink: &mut S) {
        if data.is_empty() {
            return;
        }
        if self.stream != Some(stream) {
            self.flush(sink).await;
            self.stream = Some(stream);
        }
        self.buf.extend_from_slice(data);
        self.since.get_or_insert_with(Instant::now);
        if self.buf.len() >= COALESCE_BYTES {
            self.flush(sink).await;
        }
    }

    async fn flush<S: Sink>(&mut self, sink: &mut S) {
        if let (Some(stream), false) = (self.stream, self.buf.is_empty()) {
            sink.output(stream, &self.buf).await;
        }
        self.buf.clear();
        self.since = None;
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
