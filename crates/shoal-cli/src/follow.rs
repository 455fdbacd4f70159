//! Following a job until it finishes (server-sent events, with polling as a safety net and as
//! the fallback when the stream breaks), and printing its result groups. For a file step, a
//! terminal also shows per-target transfer progress (refreshed every second).

use crate::files_view::{self, HostFiles};
use crate::output::{self, Progress};
use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;
use shoal_client::{
    Client, JobDetail, JobEvent, JobId, LogQuery, LogResponseExt as _, ResultGroup, RunStatus,
    StatusCount, TaskQuery,
};
use std::time::{Duration, Instant};

/// How often the job is polled while the event stream works (a safety net for missed events).
const SAFETY_POLL: Duration = Duration::from_secs(2);
/// How often the job is polled when there is no event stream.
const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// How long polling tolerates an unreachable server (e.g. a restart) before giving up.
const UNREACHABLE_PATIENCE: Duration = Duration::from_secs(30);
/// How often per-target file progress is refreshed (the agents report about once a second).
const FILES_REFRESH: Duration = Duration::from_secs(1);

pub enum Followed {
    Finished(Box<JobDetail>),
    Interrupted,
}

/// Follows a job until it finishes or Ctrl-C, showing progress on stderr.
pub async fn follow(client: &Client, job_id: JobId) -> anyhow::Result<Followed> {
    let mut progress = Progress::new();
    let result = follow_inner(client, job_id, &mut progress).await;
    progress.finish();
    result
}

async fn follow_inner(
    client: &Client,
    job_id: JobId,
    progress: &mut Progress,
) -> anyhow::Result<Followed> {
    // Subscribe first, then read the state: every change after the read arrives as an event.
    let mut events = match client.open_job_events(job_id, None).await {
        Ok(s) => Some(s),
        Err(e) if e.is_auth() => return Err(e.into()),
        Err(e) => {
            progress.finish();
            eprintln!("shoal: warning: no live events ({e}); polling instead");
            None
        }
    };
    let detail = client.job(job_id).await?;
    if detail.finished {
        return Ok(Followed::Finished(Box::new(detail)));
    }
    let mut view = View {
        summary: String::new(),
        shown: None,
        files: Vec::new(),
        file_step: files_view::current_file_step(&detail),
    };
    view.set_progress(&detail);
    view.show(progress);

    let period = if events.is_some() {
        SAFETY_POLL
    } else {
        FALLBACK_POLL
    };
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut files_tick = tokio::time::interval(FILES_REFRESH);
    files_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let show_files = progress.is_tty();
    let mut unreachable_since: Option<Instant> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        let mut check_now = false;
        tokio::select! {
            _ = &mut ctrl_c => return Ok(Followed::Interrupted),
            ev = next_event(&mut events), if events.is_some() => match ev {
                Some(Ok(JobEvent::Step { step_id, attempt, status, counts, .. })) => {
                    let line = format_progress(status, &counts, None);
                    view.set_summary((step_id, attempt), done_count(&counts), line);
                    view.show(progress);
                }
                Some(Ok(JobEvent::Job { status, .. })) => check_now = status.is_terminal(),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    progress.finish();
                    eprintln!("shoal: warning: live events broke off ({e}); polling instead");
                    events = None;
                    poll = tokio::time::interval(FALLBACK_POLL);
                }
                None => {
                    // The server closed the stream (normally: the job ended). Poll from here.
                    events = None;
                    poll = tokio::time::interval(FALLBACK_POLL);
                }
            },
            _ = files_tick.tick(), if show_files && view.file_step.is_some() => {
                if let Some((step_id, attempt)) = view.file_step {
                    // Progress is decoration: a failed refresh keeps the last view.
                    if let Ok(files) = files_view::live(client, step_id, attempt).await {
                        view.files = files;
                        view.show(progress);
                    }
                }
            }
            _ = poll.tick() => check_now = true,
        }
        if !check_now {
            continue;
        }
        match client.job(job_id).await {
            Ok(detail) => {
                unreachable_since = None;
                if detail.finished {
                    return Ok(Followed::Finished(Box::new(detail)));
                }
                view.set_progress(&detail);
                view.file_step = files_view::current_file_step(&detail);
                view.show(progress);
            }
            Err(e) if e.is_unreachable() => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_PATIENCE {
                    return Err(e).context(format!("lost the server while following job {job_id}"));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What the progress display shows: the status line, and for a file step the bytes and the
/// per-target lines.
struct View {
    summary: String,
    /// The step attempt the summary describes, and how many of its hosts were done.
    shown: Option<((shoal_client::StepId, u32), u64)>,
    files: Vec<HostFiles>,
    file_step: Option<(shoal_client::StepId, u32)>,
}

impl View {
    /// The status line from a fresh read of the job.
    fn set_progress(&mut self, detail: &JobDetail) {
        match current_step(detail) {
            Some((_, sd)) => {
                let at = (sd.step.id, sd.step.attempt);
                self.set_summary(at, done_count(&sd.counts), progress_line(detail));
            }
            None => self.summary = progress_line(detail),
        }
    }

    /// Replaces the status line unless it would go backwards: a job read can answer after a
    /// newer event, and the hosts done in one step attempt only ever grow.
    fn set_summary(&mut self, at: (shoal_client::StepId, u32), done: u64, line: String) {
        if let Some((shown_at, shown_done)) = self.shown
            && shown_at == at
            && done < shown_done
        {
            return;
        }
        self.shown = Some((at, done));
        self.summary = line;
    }

    fn show(&self, progress: &mut Progress) {
        if self.files.is_empty() {
            return progress.set(&self.summary);
        }
        let summary = format!("{}{}", self.summary, files_view::live_total(&self.files));
        progress.set_block(&summary, &files_view::live_details(&self.files));
    }
}

async fn next_event(
    events: &mut Option<shoal_client::JobEventStream>,
) -> Option<shoal_client::Result<JobEvent>> {
    match events {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The step the progress line describes: the first one not finished, else the last.
fn current_step(detail: &JobDetail) -> Option<(usize, &shoal_client::StepDetail)> {
    detail
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| !s.step.status.is_terminal())
        .or_else(|| detail.steps.iter().enumerate().next_back())
}

pub fn progress_line(detail: &JobDetail) -> String {
    let Some((i, sd)) = current_step(detail) else {
        return detail.job.status.text().to_string();
    };
    let step_of = (detail.steps.len() > 1).then(|| (i + 1, detail.steps.len()));
    format_progress(sd.step.status, &sd.counts, step_of)
}

/// `running 6/8 done, 1 failed` (and `step 2/3: ` in front for multi-step jobs).
pub fn format_progress(
    status: RunStatus,
    counts: &[StatusCount],
    step_of: Option<(usize, usize)>,
) -> String {
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let done = done_count(counts);
    let failed: u64 = counts
        .iter()
        .filter(|c| c.status.is_terminal() && !c.status.is_success())
        .map(|c| c.count)
        .sum();
    let prefix = step_of
        .map(|(i, n)| format!("step {i}/{n}: "))
        .unwrap_or_default();
    format!(
        "{prefix}{} {done}/{total} done, {failed} failed",
        status.text()
    )
}

/// Hosts of a step that are done (in a terminal status).
fn done_count(counts: &[StatusCount]) -> u64 {
    counts
        .iter()
        .filter(|c| c.status.is_terminal())
        .map(|c| c.count)
        .sum()
}

/// Whether every host of every step succeeded and the job itself did.
pub fn job_succeeded(detail: &JobDetail) -> bool {
    detail.job.status == RunStatus::Success
        && detail.steps.iter().all(|s| {
            s.counts
                .iter()
                .all(|c| c.count == 0 || c.status.is_success())
        })
}

/// The result groups of every step's current attempt.
#[derive(Serialize)]
pub struct StepGroups {
    pub step_id: i64,
    pub attempt: u32,
    pub groups: Vec<ResultGroup>,
}

#[derive(Serialize)]
pub struct JobResults<'a> {
    pub detail: &'a JobDetail,
    pub groups: Vec<StepGroups>,
}

pub async fn load_groups(client: &Client, detail: &JobDetail) -> anyhow::Result<Vec<StepGroups>> {
    let mut out = Vec::new();
    for sd in &detail.steps {
        let groups = client
            .step_groups(sd.step.id, Some(sd.step.attempt))
            .await?;
        out.push(StepGroups {
            step_id: sd.step.id,
            attempt: sd.step.attempt,
            groups,
        });
    }
    Ok(out)
}

const GROUP_IPS: u32 = 10;
const SAMPLE_LINES: usize = 20;
const SAMPLE_BYTES: u64 = 64 * 1024;

/// Prints each step's result groups: a header line per group, and with `with_output` the first
/// lines of the group's sample host log.
pub async fn print_groups(
    client: &Client,
    detail: &JobDetail,
    steps: &[StepGroups],
    with_output: bool,
) -> anyhow::Result<()> {
    for (sd, sg) in detail.steps.iter().zip(steps) {
        if detail.steps.len() > 1 {
            output::stdout_str(&format!(
                "-- step {}: {} ({}, attempt {})\n",
                sd.step.ordinal + 1,
                sd.step.name,
                sd.step.status.text(),
                sg.attempt
            ))?;
        }
        for g in &sg.groups {
            print_group(client, detail.job.id, sg, g, with_output).await?;
        }
    }
    Ok(())
}

async fn print_group(
    client: &Client,
    job_id: JobId,
    sg: &StepGroups,
    g: &ResultGroup,
    with_output: bool,
) -> anyhow::Result<()> {
    let query = TaskQuery {
        attempt: Some(sg.attempt),
        group: Some(g.key.clone()),
        length: Some(GROUP_IPS),
        ..Default::default()
    };
    let rows = client.step_hosts(sg.step_id, &query).await?;
    let names = host_names(&rows.data);
    let mut header = format!("== {}", g.key.status.text());
    if let Some(code) = g.key.exit_code {
        header.push_str(&format!(" (exit {code})"));
    }
    if let Some(tag) = &g.key.tag {
        header.push_str(&format!(" [tag {tag}]"));
    }
    let plural = if g.host_count == 1 { "host" } else { "hosts" };
    header.push_str(&format!(
        " · {} {plural}: {}",
        g.host_count,
        names.join(", ")
    ));
    if g.host_count > names.len() as u64 {
        header.push_str(&format!(", ... (first {})", names.len()));
    }
    header.push('\n');
    output::stdout_str(&header)?;
    if !with_output {
        return Ok(());
    }
    let (bytes, total) = sample_log(client, sg, g.sample_host_id).await?;
    let (shown, complete) = first_lines(&bytes, SAMPLE_LINES);
    let mut out = shown.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if bytes.is_empty()
        && let Some(err) = rows
            .data
            .iter()
            .find(|r| r.host_id == g.sample_host_id)
            .and_then(|r| r.error.as_deref())
    {
        out.extend_from_slice(format!("({err})\n").as_bytes());
    }
    if !complete || total > bytes.len() as u64 {
        out.extend_from_slice(
            format!(
                "... ({} bytes in all; shoal job log {job_id} --host {} --step {})\n",
                total, g.sample_host_id, sg.step_id
            )
            .as_bytes(),
        );
    }
    output::stdout_bytes(&out)
}

/// The start of a host's log: pages until `SAMPLE_LINES` lines or `SAMPLE_BYTES` bytes (the
/// server may return less than asked per page). Returns the bytes and the log's total size.
async fn sample_log(
    client: &Client,
    sg: &StepGroups,
    host_id: shoal_client::HostId,
) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut bytes = Vec::new();
    let mut offset = 0;
    loop {
        let query = LogQuery {
            attempt: Some(sg.attempt),
            offset: Some(offset),
            limit: Some(SAMPLE_BYTES - bytes.len() as u64),
        };
        let page = client.task_log(sg.step_id, host_id, &query).await?;
        let chunk = page.bytes()?;
        bytes.extend_from_slice(&chunk);
        offset = page.next_offset;
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        if chunk.is_empty()
            || page.next_offset >= page.total
            || lines >= SAMPLE_LINES
            || bytes.len() as u64 >= SAMPLE_BYTES
        {
            return Ok((bytes, page.total));
        }
    }
}

/// How hosts are named in a group header: by IP, with the host id where IPs repeat (several
/// agents on one machine, or hosts behind NAT).
fn host_names(rows: &[shoal_client::TaskRow]) -> Vec<String> {
    let ip_of = |r: &shoal_client::TaskRow| {
        if !r.ip.is_empty() {
            r.ip.clone()
        } else if !r.hostname.is_empty() {
            r.hostname.clone()
        } else {
            format!("host {}", r.host_id)
        }
    };
    let plain: Vec<String> = rows.iter().map(ip_of).collect();
    rows.iter()
        .zip(&plain)
        .map(|(r, name)| {
            if plain.iter().filter(|n| *n == name).count() > 1 {
                format!("{name} (host {})", r.host_id)
            } else {
                name.clone()
            }
        })
        .collect()
}

/// The first `n` lines of `bytes`, and whether that is all of it.
pub fn first_lines(bytes: &[u8], n: usize) -> (&[u8], bool) {
    let mut end = 0;
    for _ in 0..n {
        match bytes[end..].iter().position(|b| *b == b'\n') {
            Some(p) => end += p + 1,
            None => return (bytes, true),
        }
    }
    (&bytes[..end], end == bytes.len())
}

#[cfg(test)]
mod tests {
    //! Pins the progress line (never going backwards within a step attempt), the success rule
    //! behind exit code 1, and sample-output cutting.
    use super::*;
    use shoal_client::HostTaskStatus as H;

    fn c(status: H, count: u64) -> StatusCount {
        StatusCount { status, count }
    }

    #[test]
    fn progress_text() {
        let counts = [
            c(H::Success, 5),
            c(H::ScriptNonZeroExit, 1),
            c(H::Running, 2),
        ];
        assert_eq!(
            format_progress(RunStatus::Running, &counts, None),
            "running 6/8 done, 1 failed"
        );
        assert_eq!(
            format_progress(RunStatus::Success, &[c(H::LastSuccess, 2)], Some((2, 3))),
            "step 2/3: success 2/2 done, 0 failed"
        );
    }

    #[test]
    fn progress_never_goes_backwards() {
        let mut view = View {
            summary: String::new(),
            shown: None,
            files: Vec::new(),
            file_step: None,
        };
        let line = |counts: &[StatusCount]| format_progress(RunStatus::Running, counts, None);
        let one = [c(H::Success, 1), c(H::Running, 2)];
        let none = [c(H::Running, 3)];
        view.set_summary((7, 0), done_count(&one), line(&one));
        assert_eq!(view.summary, "running 1/3 done, 0 failed");
        // A slower read of the job answers after the event that reported the first host.
        view.set_summary((7, 0), done_count(&none), line(&none));
        assert_eq!(view.summary, "running 1/3 done, 0 failed");
        // A new attempt (a retry) starts from zero.
        view.set_summary((7, 1), done_count(&none), line(&none));
        assert_eq!(view.summary, "running 0/3 done, 0 failed");
    }

    #[test]
    fn repeated_ips_get_host_ids() {
        let row = |host_id: i64, ip: &str| shoal_client::TaskRow {
            step_id: 1,
            attempt: 0,
            host_id,
            ip: ip.into(),
            hostname: "h".into(),
            status: H::Success,
            exit_code: Some(0),
            tag: None,
            digest: None,
            started_at: None,
            ended_at: None,
            log_len: 0,
            truncated: false,
            error: None,
        };
        let rows = [
            row(1, "10.0.0.1"),
            row(2, "10.0.0.2"),
            row(3, "10.0.0.1"),
            row(4, ""),
        ];
        assert_eq!(
            host_names(&rows),
            vec!["10.0.0.1 (host 1)", "10.0.0.2", "10.0.0.1 (host 3)", "h"]
        );
    }

    #[test]
    fn sample_lines() {
        assert_eq!(first_lines(b"a\nb\nc\n", 2), (&b"a\nb\n"[..], false));
        assert_eq!(first_lines(b"a\nb\n", 2), (&b"a\nb\n"[..], true));
        assert_eq!(first_lines(b"a\nb", 5), (&b"a\nb"[..], true));
        assert_eq!(first_lines(b"", 5), (&b""[..], true));
    }
}
