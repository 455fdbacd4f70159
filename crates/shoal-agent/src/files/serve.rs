//! What this agent serves to its peers, per step attempt: regions of the source files it
//! scanned, and the cached chunks of its own fetches. The [`Registry`] is the peer server's
//! [`ChunkSource`]; it also counts the bytes served for `Served` reports.
//!
//! A chunk is served to a ticket of step attempt (s, a) only if it belongs to a scan or a fetch
//! of (s, a) on this host: a ticket never opens another step's files. Entries live until the
//! server's `Release` for that step attempt.

use super::cache::Cache;
use super::peer::{Chunk, ChunkSource};
use super::ticket::Ticket;
use super::{Hash, manifest::FileManifest};
use shoal_types::{StepId, TaskKey};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// Identifies a step attempt.
pub type StepAttempt = (StepId, u32);

/// Where a scanned chunk is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Region {
    path: PathBuf,
    /// The source path as reported in the manifest (for `Served`).
    source: String,
    offset: u64,
    size: u32,
}

#[derive(Debug, Default)]
struct Scanned {
    /// The scan's key (`host_id` = this host): `Served` reports go under it.
    key: Option<TaskKey>,
    chunks: HashMap<Hash, Region>,
}

#[derive(Debug, Default)]
struct State {
    scans: HashMap<StepAttempt, Scanned>,
    /// Chunk sizes per fetch.
    fetches: HashMap<TaskKey, HashMap<Hash, u32>>,
    /// Bytes served since the last report, per report key and source path ("" = cache).
    served: HashMap<TaskKey, HashMap<String, u64>>,
}

/// Cheap to share (`Arc`); all methods are quick in-memory operations.
#[derive(Debug)]
pub struct Registry {
    cache: Arc<Cache>,
    state: Mutex<State>,
}

impl Registry {
    pub fn new(cache: Arc<Cache>) -> Registry {
        Registry {
            cache,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves the chunks of `files` (as scanned at their `path`) to tickets of `key`'s step
    /// attempt. A later scan of the same step attempt adds to it.
    pub fn add_scan(&self, key: TaskKey, files: &[FileManifest]) {
        let mut state = self.lock();
        let scanned = state.scans.entry((key.step_id, key.attempt)).or_default();
        scanned.key = Some(key);
        for file in files {
            for (i, chunk) in file.chunks.iter().enumerate() {
                scanned.chunks.entry(chunk.hash).or_insert_with(|| Region {
                    path: PathBuf::from(&file.path),
                    source: file.path.clone(),
                    offset: FileManifest::offset_of(i),
                    size: chunk.size,
                });
            }
        }
    }

    /// Serves the cached chunks among `chunks` to tickets of `key`'s step attempt.
    pub fn add_fetch(&self, key: TaskKey, chunks: HashMap<Hash, u32>) {
        self.lock().fetches.insert(key, chunks);
    }

    /// Drops everything of the step attempt. Returns the chunks of its fetches that no other
    /// registered fetch needs: the caller removes them from the cache.
    pub fn release(&self, step: StepAttempt) -> Vec<Hash> {
        let mut state = self.lock();
        state.scans.remove(&step);
        let released: Vec<TaskKey> = state
            .fetches
            .keys()
            .filter(|k| (k.step_id, k.attempt) == step)
            .copied()
            .collect();
        let mut candidates = HashSet::new();
        for key in released {
            if let Some(chunks) = state.fetches.remove(&key) {
                candidates.extend(chunks.into_keys());
            }
        }
        let still_needed: HashSet<&Hash> = state.fetches.values().flat_map(|c| c.keys()).collect();
        candidates
            .into_iter()
            .filter(|h| !still_needed.contains(h))
            .collect()
    }

    /// Bytes served since the last call, per report key.
    pub fn take_served(&self) -> Vec<(TaskKey, Vec<(String, u64)>)> {
        let served = std::mem::take(&mut self.lock().served);
        let mut out: Vec<_> = served
            .into_iter()
            .map(|(key, files)| {
                let mut files: Vec<_> = files.into_iter().collect();
                files.sort();
                (key, files)
            })
            .collect();
        out.sort_by_key(|(key, _)| *key);
        out
    }

    /// The scan's region of `hash` for the step attempt, else a cached chunk of one of its
    /// fetches, with the key and source path to account it under.
    fn find(&self, step: StepAttempt, hash: &Hash) -> Option<(Chunk, Option<TaskKey>, String)> {
        let state = self.lock();
        if let Some(scanned) = state.scans.get(&step)
            && let Some(r) = scanned.chunks.get(hash)
        {
            let chunk = Chunk::File {
                path: r.path.clone(),
                offset: r.offset,
                size: r.size,
            };
            return Some((chunk, scanned.key, r.source.clone()));
        }
        let (key, size) = state
            .fetches
            .iter()
            .filter(|(k, _)| (k.step_id, k.attempt) == step)
            .find_map(|(k, chunks)| chunks.get(hash).map(|size| (*k, *size)))?;
        if !self.cache.has(hash) {
            return None;
        }
        let chunk = Chunk::File {
            path: self.cache.path_of(hash),
            offset: 0,
            size,
        };
        Some((chunk, Some(key), String::new()))
    }
}

impl ChunkSource for Registry {
    fn lookup(&self, ticket: &Ticket, _peer_host: i64, hash: &Hash) -> Option<Chunk> {
        self.find((ticket.step_id, ticket.attempt), hash)
            .map(|(chunk, _, _)| chunk)
    }

    fn sent(&self, ticket: &Ticket, _peer_host: i64, hash: &Hash, bytes: u64) {
        let Some((_, Some(key), source)) = self.find((ticket.step_id, ticket.attempt), hash) else {
            return;
        };
        *self
            .lock()
            .served
            .entry(key)
            .or_default()
            .entry(source)
            .or_default() += bytes;
    }
}

#[cfg(test)]
mod tests {
    // Pins what a ticket opens: scanned regions and cached fetch chunks of its own step
    // attempt only; Served accounting by source path ("" for cache); release keeps chunks
    // another fetch still needs.
    use super::*;
    use crate::files::hash_of;
    use crate::files::manifest::ChunkRef;

    fn ticket(step_id: i64, attempt: u32) -> Ticket {
        Ticket {
            step_id,
            attempt,
            requester: 9,
            expires_at: i64::MAX,
            sig: vec![],
        }
    }

    fn key(step_id: i64, host_id: i64) -> TaskKey {
        TaskKey {
            step_id,
            attempt: 0,
            host_id,
        }
    }

    #[test]
    fn serves_only_its_step_and_accounts_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Arc::new(Cache::open(dir.path(), 1 << 20).expect("cache"));
        let reg = Registry::new(cache.clone());
        let (a, b, c) = (hash_of(b"a"), hash_of(b"b"), hash_of(b"c"));
        reg.add_scan(
            key(1, 5),
            &[FileManifest {
                path: "/src/f".into(),
                rel: "f".into(),
                size: 2,
                mode: 0o644,
                chunks: vec![ChunkRef { hash: a, size: 1 }, ChunkRef { hash: b, size: 1 }],
            }],
        );
        cache.put(&c, b"c").expect("put");
        reg.add_fetch(key(2, 5), [(c, 1)].into());
        assert_eq!(
            reg.lookup(&ticket(1, 0), 9, &b),
            Some(Chunk::File {
                path: "/src/f".into(),
                offset: u64::from(crate::files::manifest::CHUNK_SIZE),
                size: 1
            })
        );
        assert_eq!(reg.lookup(&ticket(2, 0), 9, &b), None, "other step");
        assert_eq!(reg.lookup(&ticket(1, 1), 9, &a), None, "other attempt");
        assert_eq!(
            reg.lookup(&ticket(2, 0), 9, &c),
            Some(Chunk::File {
                path: cache.path_of(&c),
                offset: 0,
                size: 1
            })
        );
        reg.sent(&ticket(1, 0), 9, &a, 1);
        reg.sent(&ticket(1, 0), 9, &b, 1);
        reg.sent(&ticket(2, 0), 9, &c, 1);
        assert_eq!(
            reg.take_served(),
            vec![
                (key(1, 5), vec![("/src/f".to_owned(), 2)]),
                (key(2, 5), vec![(String::new(), 1)])
            ]
        );
        assert!(reg.take_served().is_empty());

        reg.add_fetch(key(3, 5), [(c, 1)].into());
        assert!(reg.release((2, 0)).is_empty(), "step 3 still needs c");
        assert_eq!(reg.release((3, 0)), vec![c]);
        assert!(reg.release((1, 0)).is_empty());
        assert_eq!(reg.lookup(&ticket(1, 0), 9, &a), None);
    }
}
