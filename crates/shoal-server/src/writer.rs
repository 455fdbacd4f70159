//! The result writer: the single path by which task progress reaches the database.
//!
//! Sessions push agent reports into one bounded channel; the writer drains whatever has
//! accumulated into one batch (natural batching: the busier the fleet, the bigger the batch,
//! with no added delay when idle), applies it in one transaction, then acknowledges to agents,
//! updates the in-memory index, publishes events, and settles the steps it touched. Results the
//! server decides itself (agent lost, terminated before dispatch) travel the same path, so every
//! task ends exactly once, in one place.

use crate::app::App;
use crate::clock::now_ms;
use shoal_proto::{Outcome, ServerMsg, Stream};
use shoal_store::{LogChunk, TaskBatch, TaskResult, TaskUpdate};
use shoal_types::api::JobEvent;
use shoal_types::{HostTaskStatus, StepId, TaskKey, UnixMs};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reports queued before sessions wait (back-pressure to agents).
const QUEUE: usize = 16_384;
/// Most reports (or chunk bytes) in one transaction.
const MAX_BATCH: usize = 4_096;
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub enum Report {
    Started {
        key: TaskKey,
        at: UnixMs,
    },
    Output {
        key: TaskKey,
        offset: u64,
        stream: Stream,
        data: Vec<u8>,
    },
    Finished {
        key: TaskKey,
        outcome: Outcome,
    },
    /// A result the server decided (no agent to acknowledge).
    Settled(TaskResult),
}

impl Report {
    pub fn key(&self) -> TaskKey {
        match self {
            Report::Started { key, .. }
            | Report::Output { key, .. }
            | Report::Finished { key, .. } => *key,
            Report::Settled(r) => r.key,
        }
    }
}

#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Report>,
}

impl WriterHandle {
    pub fn new() -> (WriterHandle, mpsc::Receiver<Report>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (WriterHandle { tx }, rx)
    }

    /// Queues a report, waiting while the writer is behind. False once the writer is gone.
    pub async fn send(&self, report: Report) -> bool {
        self.tx.send(report).await.is_ok()
    }

    /// Ends tasks whose agent is gone as "agent abnormal".
    pub async fn settle_lost(&self, keys: Vec<TaskKey>, reason: &str) {
        self.settle(keys, HostTaskStatus::AgentAbnormal, reason)
            .await
    }

    pub async fn settle(&self, keys: Vec<TaskKey>, status: HostTaskStatus, reason: &str) {
        let now = now_ms();
        for key in keys {
            let r = TaskResult {
                key,
                status,
                exit_code: None,
                started_at: None,
                ended_at: now,
                truncated: false,
                digest: None,
                tag: None,
                error: Some(reason.to_string()),
            };
            if !self.send(Report::Settled(r)).await {
                return;
            }
        }
    }
}

/// A task's result from how it ended on the agent (the host status is the engine's rule).
pub fn result_of(key: TaskKey, outcome: &Outcome) -> TaskResult {
    let r = shoal_engine::host_result(outcome);
    TaskResult {
        key,
        status: r.status,
        exit_code: r.exit_code,
        started_at: outcome.started_at,
        ended_at: outcome.ended_at,
        truncated: outcome.truncated,
        digest: Some(outcome.digest.clone()),
        tag: outcome.tag.clone(),
        error: r.error,
    }
}

/// Enforces the output cap on what an agent sends, whatever the agent did: bytes up to `cap`
/// are kept, the truncation marker stands at `cap` (as an honest agent sends it), anything
/// later is dropped.
fn cap_chunk(cap: u64, chunk: LogChunk) -> Vec<LogChunk> {
    let end = chunk.offset + chunk.data.len() as u64;
    if end <= cap {
        return vec![chunk];
    }
    let marker = shoal_types::limits::truncation_marker(cap);
    let marker_chunk = |from: u64| {
        let skip = usize::try_from(from - cap).unwrap_or(usize::MAX);
        marker
            .get(skip..)
            .filter(|rest| !rest.is_empty())
            .map(|rest| LogChunk {
                key: chunk.key,
                offset: from,
                stream: stream_code(Stream::Agent),
                data: rest.to_vec(),
            })
    };
    if chunk.offset >= cap {
        return marker_chunk(chunk.offset).into_iter().collect();
    }
    let tail = marker_chunk(cap);
    let mut head = chunk;
    head.data
        .truncate(usize::try_from(cap - head.offset).unwrap_or(usize::MAX));
    std::iter::once(head).chain(tail).collect()
}

fn stream_code(s: Stream) -> u8 {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::Agent => 2,
    }
}

/// What to acknowledge to one agent for one task after a batch is stored.
#[derive(Default)]
struct AckState {
    output_offset: u64,
    finished: bool,
    from_agent: bool,
}

/// The writer component: [`WriterHandle`] is its cheap handle.
pub struct Writer {
    app: App,
    rx: mpsc::Receiver<Report>,
}

impl Writer {
    pub fn new(app: App, rx: mpsc::Receiver<Report>) -> Writer {
        Writer { app, rx }
    }

    /// Runs until `stop` is cancelled, then stores what is still queued and returns. (The app
    /// holds the writer's own sender, so the channel never closes while the app lives.)
    pub async fn run(self, stop: CancellationToken) {
        run_until(self.app, self.rx, stop).await
    }
}

async fn run_until(app: App, mut rx: mpsc::Receiver<Report>, stop: CancellationToken) {
    let mut reports = Vec::with_capacity(MAX_BATCH);
    loop {
        reports.clear();
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = stop.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { return };
        let mut bytes = report_bytes(&first);
        reports.push(first);
        while reports.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += report_bytes(&r);
                    reports.push(r);
                }
                Err(_) => break,
            }
        }
        write_batch(&app, &mut reports).await;
    }
}

fn report_bytes(r: &Report) -> usize {
    match r {
        Report::Output { data, .. } => data.len(),
        _ => 64,
    }
}

async fn write_batch(app: &App, reports: &mut Vec<Report>) {
    let started = std::time::Instant::now();
    let mut batch = TaskBatch::default();
    let mut acks: HashMap<TaskKey, AckState> = HashMap::new();
    for r in reports.drain(..) {
        match r {
            Report::Started { key, at } => {
                batch.updates.push(TaskUpdate::Started { key, at });
            }
            Report::Output {
                key,
                offset,
                stream,
                data,
            } => {
                let ack = acks.entry(key).or_default();
                ack.from_agent = true;
                ack.output_offset = ack.output_offset.max(offset + data.len() as u64);
                let chunk = LogChunk {
                    key,
                    offset,
                    stream: stream_code(stream),
                    data,
                };
                batch.chunks.extend(cap_chunk(app.opts.output_cap, chunk));
            }
            Report::Finished { key, outcome } => {
                let ack = acks.entry(key).or_default();
                ack.from_agent = true;
                ack.finished = true;
                ack.output_offset = ack.output_offset.max(outcome.output_len);
                let mut result = result_of(key, &outcome);
                result.truncated |= outcome.output_len > app.opts.output_cap;
                batch.updates.push(TaskUpdate::Finished(result));
            }
            Report::Settled(result) => batch.updates.push(TaskUpdate::Finished(result)),
        }
    }
    let mut delay = Duration::from_millis(50);
    while let Err(e) = app.store.apply_task_batch(&batch).await {
        // Nothing is acknowledged, so agents keep their spool; retry until storage is back.
        tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "storing task results failed");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    metrics::histogram!("shoal_result_batch_size")
        .record((batch.chunks.len() + batch.updates.len()) as f64);
    metrics::histogram!("shoal_result_batch_seconds").record(started.elapsed().as_secs_f64());

    for (key, ack) in &acks {
        if ack.from_agent {
            let msg = ServerMsg::Ack {
                key: *key,
                output_offset: ack.output_offset,
                finished: ack.finished,
            };
            app.registry.send(key.host_id, msg);
        }
    }

    let mut touched: BTreeSet<StepId> = BTreeSet::new();
    for chunk in &batch.chunks {
        let key = chunk.key;
        if let Some(job_id) = watched_job(app, key) {
            let total = chunk.offset + chunk.data.len() as u64;
            let (step_id, attempt, host_id) = (key.step_id, key.attempt, key.host_id);
            app.events.publish(JobEvent::Log {
                job_id,
                step_id,
                attempt,
                host_id,
                total,
            });
        }
    }
    let mut closed_files = Vec::new();
    for update in &batch.updates {
        let key = update.key();
        touched.insert(key.step_id);
        let status = match update {
            TaskUpdate::Started { .. } => {
                app.active.mark_sent(key);
                HostTaskStatus::Running
            }
            TaskUpdate::Finished(r) => {
                app.active.remove_task(&key);
                // File steps close the target's per-file rows (a no-op for scripts).
                closed_files.extend(crate::transfer::target_ended(
                    app,
                    key,
                    r.status,
                    r.error.as_deref(),
                ));
                r.status
            }
        };
        if let Some(job_id) = watched_job(app, key) {
            let (step_id, attempt, host_id) = (key.step_id, key.attempt, key.host_id);
            app.events.publish(JobEvent::Task {
                job_id,
                step_id,
                attempt,
                host_id,
                status,
            });
        }
    }
    crate::transfer::close_rows(app, &closed_files).await;
    for step_id in touched {
        crate::steps::progress(app, step_id).await;
    }
}

/// The job of `key` if someone watches this host of it (per-host events are only produced then).
fn watched_job(app: &App, key: TaskKey) -> Option<shoal_types::JobId> {
    let job_id = app.active.job_of(key.step_id)?;
    app.events.is_watched(job_id, key.host_id).then_some(job_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::limits::truncation_marker;

    fn chunk(offset: u64, data: &[u8]) -> LogChunk {
        LogChunk {
            key: TaskKey {
                step_id: 1,
                attempt: 0,
                host_id: 1,
            },
            offset,
            stream: 0,
            data: data.to_vec(),
        }
    }

    /// (offset, data) of each chunk kept for `chunk` under `cap`.
    fn check(cap: u64, offset: u64, data: &[u8], expect: &[(u64, Vec<u8>)]) {
        let kept: Vec<(u64, Vec<u8>)> = cap_chunk(cap, chunk(offset, data))
            .into_iter()
            .map(|c| (c.offset, c.data))
            .collect();
        assert_eq!(kept, expect, "cap {cap}, chunk at {offset}");
    }

    // Pins the server's own output cap: what an agent sends past the cap never reaches the
    // store, and the marker stands where an honest agent puts it.
    #[test]
    fn the_server_enforces_the_output_cap() {
        let m = truncation_marker(10);
        check(10, 0, b"0123456789", &[(0, b"0123456789".to_vec())]);
        check(
            10,
            4,
            b"456789abcdef",
            &[(4, b"456789".to_vec()), (10, m.clone())],
        );
        check(10, 10, &m, &[(10, m.clone())]);
        check(10, 10, b"more bytes from a lying agent", &[(10, m.clone())]);
        check(10, 12, &m[2..], &[(12, m[2..].to_vec())]);
        check(10, 10 + m.len() as u64, b"later", &[]);
        check(10, 500, b"far later", &[]);
    }
}
