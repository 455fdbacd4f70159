//! How a file step looks in the terminal: live per-target progress lines while it runs, and the
//! per-target summary (status, files, bytes, average speed, error) once it ended. The
//! aggregation of per-file rows into per-target figures is pure and tested here.

use crate::output;
use serde::Serialize;
use shoal_client::{
    Client, FileMode, FileQuery, FileStatus, FileTaskRow, HostId, JobDetail, StepId, StepType,
    TaskQuery, TaskRow, UnixMs,
};
use std::collections::BTreeMap;

/// Per-target progress lines shown at most.
const LIVE_LINES: usize = 8;
/// Rows fetched per live refresh (one page).
const LIVE_ROWS: u32 = 1000;
/// Rows read for the final summary at most.
const SUMMARY_ROWS: u64 = 100_000;
/// Failed files listed after the summary table at most.
const FAILED_FILES: usize = 20;

/// The files of one host (a target's download rows, or a source's upload rows), added up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostFiles {
    pub host_id: HostId,
    pub ip: String,
    pub files: u64,
    pub done: u64,
    pub failed: u64,
    pub size: u64,
    pub bytes_done: u64,
    /// Sum of the last reported speeds of unfinished files (B/s).
    pub speed: u64,
    /// Any file downloading (or uploading) right now.
    pub active: bool,
    pub first_error: Option<String>,
    pub started_at: Option<UnixMs>,
    pub ended_at: Option<UnixMs>,
}

impl HostFiles {
    /// Whole-transfer average speed (B/s) from first start to last end, once known.
    pub fn average_speed(&self) -> Option<u64> {
        let (s, e) = (self.started_at?, self.ended_at?);
        let ms = u64::try_from(e - s).ok().filter(|ms| *ms > 0)?;
        Some(self.bytes_done.saturating_mul(1000) / ms)
    }

    pub fn percent(&self) -> u64 {
        match self.size {
            0 if self.done == self.files => 100,
            0 => 0,
            size => self.bytes_done.min(size) * 100 / size,
        }
    }
}

/// Adds rows up per host (`FileTaskKey::host_id`), in host id order.
pub fn per_host(rows: &[FileTaskRow]) -> Vec<HostFiles> {
    let mut by_host: BTreeMap<HostId, HostFiles> = BTreeMap::new();
    for r in rows {
        let h = by_host.entry(r.key.host_id).or_insert_with(|| HostFiles {
            host_id: r.key.host_id,
            ip: r.ip.clone(),
            ..Default::default()
        });
        h.files += 1;
        h.size += r.size;
        h.bytes_done += r.bytes_done;
        match r.status {
            FileStatus::Success => h.done += 1,
            FileStatus::Failed => {
                h.failed += 1;
                if h.first_error.is_none() {
                    h.first_error = r.error.clone();
                }
            }
            FileStatus::Uploading | FileStatus::Downloading => {
                h.active = true;
                h.speed += r.speed;
            }
            FileStatus::Waiting => {}
        }
        h.started_at = min_some(h.started_at, r.started_at);
        h.ended_at = h.ended_at.max(r.ended_at);
    }
    by_host.into_values().collect()
}

fn min_some(a: Option<UnixMs>, b: Option<UnixMs>) -> Option<UnixMs> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn name(ip: &str, host_id: HostId) -> String {
    if host_id == 0 {
        // Uploaded sources are served by the server itself.
        "server".to_string()
    } else if ip.is_empty() {
        format!("host {host_id}")
    } else {
        ip.to_string()
    }
}

/// `  10.0.0.5   45%  45.0 MiB/100.0 MiB  12.3 MiB/s  1/2 files` (one target, while running).
pub fn live_line(h: &HostFiles) -> String {
    let state = if h.failed > 0 && h.done + h.failed == h.files {
        "failed".to_string()
    } else if h.done == h.files {
        "done".to_string()
    } else if h.active {
        format!("{}/s", output::bytes(h.speed))
    } else {
        "waiting".to_string()
    };
    format!(
        "  {:<16} {:>3}%  {} / {}  {}  {}/{}",
        name(&h.ip, h.host_id),
        h.percent(),
        output::bytes(h.bytes_done),
        output::bytes(h.size),
        state,
        h.done,
        output::count(h.files, "file")
    )
}

/// The bytes part of the summary line: ` · 120.0 MiB / 300.0 MiB, 25.1 MiB/s`.
pub fn live_total(targets: &[HostFiles]) -> String {
    let size: u64 = targets.iter().map(|h| h.size).sum();
    let done: u64 = targets.iter().map(|h| h.bytes_done).sum();
    let speed: u64 = targets.iter().map(|h| h.speed).sum();
    format!(
        " · {} / {}, {}/s",
        output::bytes(done),
        output::bytes(size),
        output::bytes(speed)
    )
}

/// The lines under the summary: targets still transferring first (most bytes to go first),
/// then failed ones, at most [`LIVE_LINES`], and how many more there are.
pub fn live_details(targets: &[HostFiles]) -> Vec<String> {
    let mut order: Vec<&HostFiles> = targets.iter().collect();
    order.sort_by_key(|h| {
        let finished = h.done + h.failed == h.files;
        (
            finished,
            h.failed == 0,
            u64::MAX - (h.size - h.bytes_done.min(h.size)),
            h.host_id,
        )
    });
    let mut lines: Vec<String> = order
        .iter()
        .take(LIVE_LINES)
        .map(|h| live_line(h))
        .collect();
    if order.len() > LIVE_LINES {
        let finished = targets.iter().filter(|h| h.done == h.files).count();
        let more = (order.len() - LIVE_LINES) as u64;
        lines.push(format!(
            "  ... and {more} more {} ({finished} of {} done)",
            output::plural(more, "target"),
            targets.len()
        ));
    }
    lines
}

/// The current download rows of a step, as live lines (one page; enough for a view).
pub async fn live(
    client: &Client,
    step_id: StepId,
    attempt: u32,
) -> shoal_client::Result<Vec<HostFiles>> {
    let query = FileQuery {
        attempt: Some(attempt),
        mode: Some(FileMode::Download),
        length: Some(LIVE_ROWS),
        ..Default::default()
    };
    let rows = client.step_files(step_id, &query).await?;
    Ok(per_host(&rows.data))
}

/// The file step a progress view should show: the current step, if it is a file step.
pub fn current_file_step(detail: &JobDetail) -> Option<(StepId, u32)> {
    let sd = detail
        .steps
        .iter()
        .find(|s| !s.step.status.is_terminal())
        .or_else(|| detail.steps.last())?;
    (sd.step.step_type == StepType::File).then_some((sd.step.id, sd.step.attempt))
}

/// What `--json` prints for a finished transfer.
#[derive(Serialize)]
pub struct TransferResults<'a> {
    pub detail: &'a JobDetail,
    /// Per target: the host's task row and its files added up.
    pub targets: Vec<TargetResult>,
    /// Per source host: what it served.
    pub sources: Vec<HostFiles>,
    /// Every download row (capped), for scripts that want per-file detail.
    pub files: Vec<FileTaskRow>,
}

#[derive(Serialize)]
pub struct TargetResult {
    pub task: TaskRow,
    pub files: Option<HostFiles>,
}

async fn all_rows(
    client: &Client,
    step_id: StepId,
    attempt: u32,
    mode: FileMode,
) -> anyhow::Result<Vec<FileTaskRow>> {
    let (rows, total) = output::collect_pages(SUMMARY_ROWS, |start, length| {
        let q = FileQuery {
            attempt: Some(attempt),
            mode: Some(mode),
            start: Some(start),
            length: Some(length),
            ..Default::default()
        };
        async move { client.step_files(step_id, &q).await }
    })
    .await?;
    if total > rows.len() as u64 {
        eprintln!(
            "shoal: warning: the summary covers {} of {total} {} rows",
            rows.len(),
            mode.name()
        );
    }
    Ok(rows)
}

/// Loads everything the summary needs for each file step of a finished job.
pub async fn load(
    client: &Client,
    detail: &JobDetail,
) -> anyhow::Result<(Vec<TargetResult>, Vec<HostFiles>, Vec<FileTaskRow>)> {
    let mut targets = Vec::new();
    let mut sources = Vec::new();
    let mut files = Vec::new();
    for sd in detail
        .steps
        .iter()
        .filter(|s| s.step.step_type == StepType::File)
    {
        let (step_id, attempt) = (sd.step.id, sd.step.attempt);
        let (tasks, _) = output::collect_pages(SUMMARY_ROWS, |start, length| {
            let q = TaskQuery {
                attempt: Some(attempt),
                start: Some(start),
                length: Some(length),
                ..Default::default()
            };
            async move { client.step_hosts(step_id, &q).await }
        })
        .await?;
        let downloads = all_rows(client, step_id, attempt, FileMode::Download).await?;
        let uploads = all_rows(client, step_id, attempt, FileMode::Upload).await?;
        let per_target = per_host(&downloads);
        for task in tasks {
            let f = per_target
                .iter()
                .find(|h| h.host_id == task.host_id)
                .cloned();
            targets.push(TargetResult { task, files: f });
        }
        sources.extend(per_host(&uploads));
        files.extend(downloads);
    }
    Ok((targets, sources, files))
}

/// The summary table (stdout): one row per target, then the failed files, then the sources.
pub fn summary_text(
    targets: &[TargetResult],
    sources: &[HostFiles],
    files: &[FileTaskRow],
) -> String {
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            let f = t.files.as_ref();
            let count = f
                .map(|f| format!("{}/{}", f.done, f.files))
                .unwrap_or_else(|| "-".into());
            let bytes = f
                .map(|f| output::bytes(f.bytes_done))
                .unwrap_or_else(|| "-".into());
            let speed = f
                .and_then(HostFiles::average_speed)
                .map(|s| format!("{}/s", output::bytes(s)))
                .unwrap_or_else(|| "-".into());
            let error = t
                .task
                .error
                .clone()
                .or_else(|| f.and_then(|f| f.first_error.clone()))
                .unwrap_or_default();
            vec![
                t.task.host_id.to_string(),
                name(&t.task.ip, t.task.host_id),
                t.task.status.text().to_string(),
                count,
                bytes,
                speed,
                error,
            ]
        })
        .collect();
    let headers = ["HOST", "IP", "STATUS", "FILES", "BYTES", "SPEED", "ERROR"];
    let mut out = output::table(&headers, &rows);
    let failed: Vec<&FileTaskRow> = files
        .iter()
        .filter(|r| r.status == FileStatus::Failed)
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!(
            "== {}\n",
            output::count(failed.len() as u64, "failed file")
        ));
        for r in failed.iter().take(FAILED_FILES) {
            let from = match (&r.source_ip, r.key.source_host_id) {
                (Some(ip), _) => format!("{ip}:{}", r.key.source_path),
                (None, Some(h)) => format!("host {h}:{}", r.key.source_path),
                (None, None) => "(upload)".to_string(),
            };
            out.push_str(&format!(
                "{}  {from} -> {}: {}\n",
                name(&r.ip, r.key.host_id),
                r.key.dest_path,
                r.error.as_deref().unwrap_or("failed")
            ));
        }
        if failed.len() > FAILED_FILES {
            out.push_str(&format!("... and {} more\n", failed.len() - FAILED_FILES));
        }
    }
    for s in sources {
        out.push_str(&format!(
            "== source {}: served {} ({})\n",
            name(&s.ip, s.host_id),
            output::bytes(s.bytes_done),
            output::count(s.files, "file")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    //! Pins the per-host aggregation (counts, bytes, speeds of active files only, first error,
    //! time span), the average speed and percent, and the order and cap of live lines.
    use super::*;
    use shoal_client::{FILE_MODE_DOWNLOAD, FileTaskKey};

    fn row(host: HostId, size: u64, done: u64, status: FileStatus, speed: u64) -> FileTaskRow {
        FileTaskRow {
            key: FileTaskKey {
                step_id: 1,
                attempt: 0,
                mode: FILE_MODE_DOWNLOAD,
                host_id: host,
                source_host_id: Some(9),
                source_path: "/src/a".into(),
                dest_path: "/dst/a".into(),
            },
            ip: format!("10.0.0.{host}"),
            hostname: format!("h{host}"),
            source_ip: Some("10.0.0.9".into()),
            source_hostname: Some("src".into()),
            size,
            bytes_done: done,
            speed,
            status,
            error: (status == FileStatus::Failed).then(|| "disk full".to_string()),
            started_at: Some(1_000 * host),
            ended_at: status.is_terminal().then_some(3_000 * host),
        }
    }

    #[test]
    fn rows_add_up_per_host() {
        let rows = [
            row(2, 100, 100, FileStatus::Success, 7),
            row(1, 50, 20, FileStatus::Downloading, 10),
            row(1, 50, 0, FileStatus::Failed, 0),
            row(2, 100, 50, FileStatus::Downloading, 5),
        ];
        let hosts = per_host(&rows);
        assert_eq!(hosts.len(), 2);
        let (a, b) = (&hosts[0], &hosts[1]);
        assert_eq!((a.host_id, a.files, a.done, a.failed), (1, 2, 0, 1));
        assert_eq!(
            (a.size, a.bytes_done, a.speed, a.active),
            (100, 20, 10, true)
        );
        assert_eq!(a.first_error.as_deref(), Some("disk full"));
        assert_eq!((b.files, b.done, b.bytes_done, b.speed), (2, 1, 150, 5));
        assert_eq!(b.percent(), 75);
        assert_eq!((b.started_at, b.ended_at), (Some(2_000), Some(6_000)));
        assert_eq!(b.average_speed(), Some(150 * 1000 / 4_000));
        assert_eq!(a.average_speed(), Some(20 * 1000 / 2_000));
    }

    #[test]
    fn empty_files_count_as_done() {
        let h = per_host(&[row(1, 0, 0, FileStatus::Success, 0)]);
        assert_eq!(h[0].percent(), 100);
        let w = per_host(&[row(1, 0, 0, FileStatus::Waiting, 0)]);
        assert_eq!(w[0].percent(), 0);
        assert_eq!(w[0].average_speed(), None);
    }

    #[test]
    fn live_lines_show_unfinished_first_and_cap() {
        let mut rows = vec![row(1, 10, 10, FileStatus::Success, 0)];
        for h in 2..12 {
            rows.push(row(h, 100, h as u64, FileStatus::Downloading, 1024));
        }
        let targets = per_host(&rows);
        let lines = live_details(&targets);
        assert_eq!(lines.len(), LIVE_LINES + 1);
        assert!(lines[0].contains("10.0.0.2 "), "{lines:?}");
        assert!(lines[0].contains("1.0 KiB/s"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("10.0.0.1 ")), "{lines:?}");
        assert_eq!(lines[LIVE_LINES], "  ... and 3 more targets (1 of 11 done)");
        assert!(live_total(&targets).starts_with(" · "));
    }
}
