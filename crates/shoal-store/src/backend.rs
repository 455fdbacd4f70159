//! Pure helpers every backend shares, so that the rules of the [`crate::Store`] contract that
//! are not SQL (which log bytes to keep, which update wins, how results are ordered) are
//! written once.

use crate::{
    AgentStatusChange, FileProgress, FileStatus, FileTaskKey, LogChunk, ResultGroup, TaskResult,
    TaskUpdate,
};
use shoal_types::{HostId, HostTaskStatus, Labels, TaskKey, UnixMs};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Effective labels of a host: the agent's config labels overlaid by the user's.
pub fn overlay_labels(agent: &Labels, user: &Labels) -> Labels {
    let mut labels = agent.clone();
    labels.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// A log chunk cut down to the bytes past its task's stored end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChunk<'a> {
    pub key: TaskKey,
    /// Where the kept bytes start: the task's log length before this chunk.
    pub offset: u64,
    pub stream: u8,
    pub data: &'a [u8],
}

/// Keeps, of every chunk, only the bytes past its task's log length in `lens`, and advances
/// the length as chunks are taken (chunks of one task arrive in order). A chunk of a task
/// missing from `lens`, one that starts past the end (a gap), or one holding no new byte is
/// dropped. Afterwards `lens` holds the new lengths.
pub fn trim_chunks<'a>(
    chunks: &'a [LogChunk],
    lens: &mut HashMap<TaskKey, u64>,
) -> Vec<NewChunk<'a>> {
    let mut kept = Vec::new();
    for chunk in chunks {
        let Some(len) = lens.get_mut(&chunk.key) else {
            continue;
        };
        let end = chunk.offset.saturating_add(chunk.data.len() as u64);
        if chunk.offset > *len || end <= *len {
            continue;
        }
        let Ok(skip) = usize::try_from(*len - chunk.offset) else {
            continue;
        };
        kept.push(NewChunk {
            key: chunk.key,
            offset: *len,
            stream: chunk.stream,
            data: &chunk.data[skip..],
        });
        *len = end;
    }
    kept
}

/// The task updates of a batch worth applying: `Started` of tasks not finished earlier in the
/// batch (first one per task), and the first `Finished` of each task.
pub fn split_updates(updates: &[TaskUpdate]) -> (Vec<(TaskKey, UnixMs)>, Vec<&TaskResult>) {
    let mut started = Vec::new();
    let mut finished = Vec::new();
    let mut seen_started = HashSet::new();
    let mut seen_finished = HashSet::new();
    for update in updates {
        match update {
            TaskUpdate::Started { key, at } => {
                if !seen_finished.contains(key) && seen_started.insert(*key) {
                    started.push((*key, *at));
                }
            }
            TaskUpdate::Finished(result) => {
                if seen_finished.insert(result.key) {
                    finished.push(result);
                }
            }
        }
    }
    (started, finished)
}

/// The progress reports of one batch folded into one update per file transfer row, as if
/// applied in order: the latest non-terminal report sets status, speed and error, the first
/// terminal report ends the row (later ones are dropped), `bytes_done` is the largest seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedProgress<'a> {
    pub key: &'a FileTaskKey,
    pub status: FileStatus,
    pub bytes_done: u64,
    pub speed: u64,
    pub error: Option<&'a str>,
    /// When the row left `Waiting`, if it did in this batch.
    pub started_at: Option<UnixMs>,
    /// When the row ended, if it did in this batch.
    pub ended_at: Option<UnixMs>,
}

/// Folds progress reports per row (see [`MergedProgress`]); the result is in key order, so
/// that backends touch rows in one order.
pub fn merge_file_progress(progress: &[FileProgress]) -> Vec<MergedProgress<'_>> {
    let mut merged: BTreeMap<&FileTaskKey, MergedProgress<'_>> = BTreeMap::new();
    for p in progress {
        let started = (p.status != FileStatus::Waiting).then_some(p.at);
        let ended = p.status.is_terminal().then_some(p.at);
        match merged.get_mut(&p.key) {
            None => {
                merged.insert(
                    &p.key,
                    MergedProgress {
                        key: &p.key,
                        status: p.status,
                        bytes_done: p.bytes_done,
                        speed: p.speed,
                        error: p.error.as_deref(),
                        started_at: started,
                        ended_at: ended,
                    },
                );
            }
            Some(m) if m.status.is_terminal() => {}
            Some(m) => {
                m.status = p.status;
                m.bytes_done = m.bytes_done.max(p.bytes_done);
                m.speed = p.speed;
                m.error = p.error.as_deref().or(m.error);
                m.started_at = m.started_at.or(started);
                m.ended_at = ended;
            }
        }
    }
    merged.into_values().collect()
}

/// The last change of each host (as if the changes were applied in order), by host id.
pub fn last_status_changes(changes: &[AgentStatusChange]) -> Vec<&AgentStatusChange> {
    let mut last: HashMap<HostId, &AgentStatusChange> = HashMap::new();
    for change in changes {
        last.insert(change.host_id, change);
    }
    let mut out: Vec<&AgentStatusChange> = last.into_values().collect();
    out.sort_by_key(|c| c.host_id);
    out
}

/// The bytes `[from, to)` of a log given as `(offset, data)` chunks in offset order (the first
/// chunk may start before `from`).
pub fn slice_chunks(chunks: &[(u64, Vec<u8>)], from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (start, data) in chunks {
        let end = start.saturating_add(data.len() as u64);
        let lo = from.max(*start);
        let hi = to.min(end);
        if lo >= hi {
            continue;
        }
        let (Ok(a), Ok(b)) = (usize::try_from(lo - start), usize::try_from(hi - start)) else {
            continue;
        };
        out.extend_from_slice(&data[a..b]);
    }
    out
}

/// The error stored with a task created in `status`: a task that starts as agent abnormal says
/// why.
pub fn initial_task_error(status: HostTaskStatus) -> Option<&'static str> {
    (status == HostTaskStatus::AgentAbnormal).then_some(crate::AGENT_NOT_CONNECTED)
}

/// Orders result groups as every backend returns them: biggest first, then by status code,
/// exit code, tag and digest (absent values first).
pub fn sort_result_groups(groups: &mut [ResultGroup]) {
    groups.sort_by(|a, b| {
        b.host_count.cmp(&a.host_count).then_with(|| {
            let ka = (
                a.key.status.code(),
                a.key.exit_code,
                &a.key.tag,
                &a.key.digest,
            );
            let kb = (
                b.key.status.code(),
                b.key.exit_code,
                &b.key.tag,
                &b.key.digest,
            );
            ka.cmp(&kb)
        })
    });
}

#[cfg(test)]
mod tests {
    // Pins the byte-keeping rule of `apply_task_batch` and log slicing, independent of SQL.
    use super::*;

    fn key(host_id: HostId) -> TaskKey {
        TaskKey {
            step_id: 1,
            attempt: 0,
            host_id,
        }
    }

    fn chunk(host_id: HostId, offset: u64, data: &[u8]) -> LogChunk {
        LogChunk {
            key: key(host_id),
            offset,
            stream: 0,
            data: data.to_vec(),
        }
    }

    #[test]
    fn trim_keeps_only_new_bytes() {
        let chunks = [
            chunk(1, 0, b"hello"),  // stored already up to 3: keeps "lo"
            chunk(1, 5, b" world"), // contiguous
            chunk(1, 20, b"gap"),   // gap: dropped
            chunk(1, 2, b"llo w"),  // nothing new: dropped
            chunk(2, 0, b"x"),      // unknown task: dropped
        ];
        let mut lens = HashMap::from([(key(1), 3)]);
        let kept = trim_chunks(&chunks, &mut lens);
        let got: Vec<(u64, &[u8])> = kept.iter().map(|c| (c.offset, c.data)).collect();
        assert_eq!(got, vec![(3, &b"lo"[..]), (5, &b" world"[..])]);
        assert_eq!(lens[&key(1)], 11);
    }

    fn progress(path: &str, status: FileStatus, bytes_done: u64, at: UnixMs) -> FileProgress {
        FileProgress {
            key: FileTaskKey {
                step_id: 1,
                attempt: 0,
                mode: crate::FILE_MODE_DOWNLOAD,
                host_id: 2,
                source_host_id: None,
                source_path: path.to_string(),
                dest_path: format!("/dst{path}"),
            },
            status,
            bytes_done,
            speed: at as u64,
            error: None,
            at,
        }
    }

    #[test]
    fn merge_folds_progress_per_row() {
        // Pins the in-batch rules: largest bytes_done, first start, first terminal wins.
        let mut failed = progress("/a", FileStatus::Failed, 0, 5);
        failed.error = Some("late".to_string());
        let all = [
            progress("/b", FileStatus::Waiting, 0, 1),
            progress("/a", FileStatus::Downloading, 40, 2),
            progress("/a", FileStatus::Downloading, 10, 3),
            progress("/a", FileStatus::Success, 100, 4),
            failed,
            progress("/b", FileStatus::Downloading, 7, 6),
        ];
        let merged = merge_file_progress(&all);
        let got: Vec<_> = merged
            .iter()
            .map(|m| {
                (
                    m.key.source_path.as_str(),
                    m.status,
                    m.bytes_done,
                    m.speed,
                    m.error,
                    m.started_at,
                    m.ended_at,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a", FileStatus::Success, 100, 4, None, Some(2), Some(4)),
                ("/b", FileStatus::Downloading, 7, 6, None, Some(6), None),
            ]
        );
    }

    #[test]
    fn slice_cuts_first_and_last_chunk() {
        let chunks = vec![
            (0, b"abc".to_vec()),
            (3, b"defg".to_vec()),
            (7, b"hi".to_vec()),
        ];
        assert_eq!(slice_chunks(&chunks, 2, 8), b"cdefgh");
        assert_eq!(slice_chunks(&chunks, 0, 9), b"abcdefghi");
        assert_eq!(slice_chunks(&chunks, 9, 12), b"");
    }
}
