//! The spool: every task's output and result, on disk under `STATE_DIR/spool/<key>/` until the
//! server acknowledges them, plus what has been sent in the current session.
//!
//! Layout per task: `output` (the stored output bytes, appended as they are produced) and, once
//! the task ended, `outcome.json` (a [`Record`], written atomically). Output is written to disk
//! before it is sent, and sending always reads back from the file, so a reconnect re-sends
//! exactly the unacknowledged bytes and the server (which trims overlaps) loses and doubles
//! nothing.
//!
//! Restart policy: a task directory without `outcome.json` belonged to a task that was running
//! when the agent stopped. Its process is gone or orphaned and its result can never be known,
//! so the directory is deleted and the task is left out of `Hello.known_tasks`; the server then
//! ends it as "agent abnormal", which is the truth. (Reporting it as a start failure instead
//! would claim the script never ran, which may be false.)
//!
//! This type does plain, short file operations; callers keep them off the async hot path.

use serde::{Deserialize, Serialize};
use shoal_proto::{MAX_OUTPUT_CHUNK, Outcome, Stream};
use shoal_types::{TaskKey, UnixMs};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _};
use std::path::{Path, PathBuf};

pub const OUTPUT_FILE: &str = "output";
pub const OUTCOME_FILE: &str = "outcome.json";
/// Stream changes remembered per task; later changes are labelled with the last stream.
pub const MAX_SEGMENTS: usize = 4096;

/// What `outcome.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub outcome: Outcome,
    /// `(offset, stream)` where the output switches stream, ascending.
    pub streams: Vec<(u64, Stream)>,
}

#[derive(Debug)]
pub struct Entry {
    /// Which executor run owns the entry (0: restored from disk).
    pub run_id: u64,
    pub started_at: Option<UnixMs>,
    /// Bytes in the output file.
    pub stored: u64,
    segments: Vec<(u64, Stream)>,
    pub outcome: Option<Outcome>,
    pub acked_output: u64,
    // Per session.
    sent: u64,
    started_sent: bool,
    outcome_sent: bool,
}

impl Entry {
    fn new(run_id: u64) -> Entry {
        Entry {
            run_id,
            started_at: None,
            stored: 0,
            segments: Vec::new(),
            outcome: None,
            acked_output: 0,
            sent: 0,
            started_sent: false,
            outcome_sent: false,
        }
    }

    /// The stream at `offset` and the offset where the next stream starts.
    fn stream_at(&self, offset: u64) -> (Stream, u64) {
        let i = self.segments.partition_point(|(o, _)| *o <= offset);
        let stream = i
            .checked_sub(1)
            .map_or(Stream::Stdout, |j| self.segments[j].1);
        (stream, self.segments.get(i).map_or(u64::MAX, |s| s.0))
    }
}

/// One message the session should send next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Started {
        key: TaskKey,
        at: UnixMs,
    },
    /// Read `len` bytes at `offset` of `path` and send them.
    Output {
        key: TaskKey,
        offset: u64,
        len: usize,
        stream: Stream,
        path: PathBuf,
    },
    Finished {
        key: TaskKey,
        outcome: Outcome,
    },
}

#[derive(Debug)]
pub struct Spool {
    root: PathBuf,
    tasks: BTreeMap<TaskKey, Entry>,
    /// Round-robin position of [`Spool::next_work`].
    cursor: Option<TaskKey>,
}

impl Spool {
    /// Opens (creating) the spool at `root` and rebuilds the index. Returns the keys of tasks
    /// dropped because they were running when the agent stopped.
    pub fn open(root: &Path) -> std::io::Result<(Spool, Vec<TaskKey>)> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let mut spool = Spool {
            root: root.to_owned(),
            tasks: BTreeMap::new(),
            cursor: None,
        };
        let mut dropped = Vec::new();
        for dirent in std::fs::read_dir(root)? {
            let dirent = dirent?;
            let name = dirent.file_name().to_string_lossy().into_owned();
            let Some(key) = parse_key(&name) else {
                tracing::warn!(path = %dirent.path().display(), "ignoring unknown entry in the spool");
                continue;
            };
            match load_record(&dirent.path()) {
                Ok(Some(record)) => {
                    let stored =
                        std::fs::metadata(dirent.path().join(OUTPUT_FILE)).map_or(0, |m| m.len());
                    let mut entry = Entry::new(0);
                    entry.started_at = record.outcome.started_at;
                    entry.stored = stored;
                    entry.segments = record.streams;
                    entry.outcome = Some(record.outcome);
                    spool.tasks.insert(key, entry);
                }
                Ok(None) => {
                    std::fs::remove_dir_all(dirent.path())?;
                    dropped.push(key);
                }
                Err(e) => {
                    tracing::warn!(task = %key, error = %e, "dropping unreadable spooled result");
                    std::fs::remove_dir_all(dirent.path())?;
                    dropped.push(key);
                }
            }
        }
        Ok((spool, dropped))
    }

    pub fn task_dir(&self, key: &TaskKey) -> PathBuf {
        self.root.join(key.to_string())
    }

    pub fn output_path(&self, key: &TaskKey) -> PathBuf {
        self.task_dir(key).join(OUTPUT_FILE)
    }

    pub fn contains(&self, key: &TaskKey) -> bool {
        self.tasks.contains_key(key)
    }

    pub fn get(&self, key: &TaskKey) -> Option<&Entry> {
        self.tasks.get(key)
    }

    /// Every task the spool holds, running or finished but not acknowledged.
    pub fn known(&self) -> Vec<TaskKey> {
        self.tasks.keys().copied().collect()
    }

    pub fn running(&self) -> u32 {
        self.tasks.values().filter(|e| e.outcome.is_none()).count() as u32
    }

    /// Registers a new task and creates its directory with an empty output file. The entry
    /// exists even when that fails, so the task still ends with a result.
    pub fn insert(&mut self, key: TaskKey, run_id: u64) -> std::io::Result<()> {
        self.tasks.insert(key, Entry::new(run_id));
        let dir = self.task_dir(&key);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        std::fs::File::create(dir.join(OUTPUT_FILE))?;
        Ok(())
    }

    fn owned(&mut self, key: &TaskKey, run_id: u64) -> Option<&mut Entry> {
        self.tasks.get_mut(key).filter(|e| e.run_id == run_id)
    }

    pub fn started(&mut self, key: &TaskKey, run_id: u64, at: UnixMs) {
        if let Some(e) = self.owned(key, run_id) {
            e.started_at = Some(at);
        }
    }

    /// `len` bytes of `stream` were appended to the output file.
    pub fn appended(&mut self, key: &TaskKey, run_id: u64, stream: Stream, len: u64) {
        let Some(e) = self.owned(key, run_id) else {
            return;
        };
        if e.segments.last().map(|s| s.1) != Some(stream) && e.segments.len() < MAX_SEGMENTS {
            e.segments.push((e.stored, stream));
        }
        e.stored += len;
    }

    /// The path and bytes of the task's `outcome.json`, to be written (atomically, off the
    /// lock) before [`Spool::finished`].
    pub fn record_file(
        &self,
        key: &TaskKey,
        run_id: u64,
        outcome: &Outcome,
    ) -> Option<(PathBuf, Vec<u8>)> {
        let e = self.tasks.get(key).filter(|e| e.run_id == run_id)?;
        let record = Record {
            outcome: outcome.clone(),
            streams: e.segments.clone(),
        };
        let bytes = serde_json::to_vec(&record).ok()?;
        Some((self.task_dir(key).join(OUTCOME_FILE), bytes))
    }

    pub fn finished(&mut self, key: &TaskKey, run_id: u64, outcome: Outcome) {
        if let Some(e) = self.owned(key, run_id) {
            e.outcome = Some(outcome);
        }
    }

    /// Records an acknowledgement. Returns the task directory to delete when the result is
    /// acknowledged: the server has settled the task and needs nothing more from it.
    pub fn ack(&mut self, key: &TaskKey, output_offset: u64, finished: bool) -> Option<PathBuf> {
        let e = self.tasks.get_mut(key)?;
        e.acked_output = e.acked_output.max(output_offset.min(e.stored));
        e.sent = e.sent.max(e.acked_output);
        if !(finished && e.outcome.is_some()) {
            return None;
        }
        self.tasks.remove(key);
        Some(self.task_dir(key))
    }

    /// Drops the task; returns its directory to delete.
    pub fn forget(&mut self, key: &TaskKey) -> Option<PathBuf> {
        self.tasks.remove(key).map(|_| self.task_dir(key))
    }

    /// A new session starts: everything not acknowledged is to be sent again.
    pub fn begin_session(&mut self) {
        for e in self.tasks.values_mut() {
            e.sent = e.acked_output;
            e.started_sent = false;
            e.outcome_sent = false;
        }
    }

    /// The next message to send, visiting tasks round-robin so one chatty task cannot starve
    /// the others. Marks it as sent: if sending fails the session ends, and the next one
    /// starts over from the acknowledged state.
    pub fn next_work(&mut self) -> Option<Work> {
        let keys: Vec<TaskKey> = match self.cursor {
            Some(c) => self
                .tasks
                .range((Bound::Excluded(c), Bound::Unbounded))
                .chain(self.tasks.range(..=c))
                .map(|(k, _)| *k)
                .collect(),
            None => self.tasks.keys().copied().collect(),
        };
        for key in keys {
            let path = self.output_path(&key);
            let Some(e) = self.tasks.get_mut(&key) else {
                continue;
            };
            let work = if let (Some(at), None, false) = (e.started_at, &e.outcome, e.started_sent) {
                e.started_sent = true;
                Work::Started { key, at }
            } else if e.sent < e.stored {
                let (stream, boundary) = e.stream_at(e.sent);
                let len = (e.stored.min(boundary) - e.sent).min(MAX_OUTPUT_CHUNK as u64) as usize;
                let offset = e.sent;
                e.sent += len as u64;
                Work::Output {
                    key,
                    offset,
                    len,
                    stream,
                    path,
                }
            } else if let (Some(outcome), false) = (&e.outcome, e.outcome_sent) {
                e.outcome_sent = true;
                Work::Finished {
                    key,
                    outcome: outcome.clone(),
                }
            } else {
                continue;
            };
            self.cursor = Some(key);
            return Some(work);
        }
        None
    }
}

fn load_record(dir: &Path) -> std::io::Result<Option<Record>> {
    match std::fs::read(dir.join(OUTCOME_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `step-attempt-host`, as `TaskKey`'s `Display` writes it.
pub fn parse_key(name: &str) -> Option<TaskKey> {
    let mut parts = name.split('-');
    let key = TaskKey {
        step_id: parts.next()?.parse().ok()?,
        attempt: parts.next()?.parse().ok()?,
        host_id: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(key)
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file).
pub fn read_output(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
