//! The chunk cache: verified chunks on disk under one directory (`STATE_DIR/chunks/`), one
//! file per chunk named by its BLAKE3 hash in hex, bounded in bytes and evicted least recently
//! used first (recency is the file's mtime, so it survives a restart).
//!
//! Invariants: a chunk file's content hashes to its name. `put` verifies before storing and
//! writes through a temporary file renamed into place, so a crash leaves no half chunk under a
//! real name; `get` verifies again (disks rot, people edit files) and drops a bad file.
//! Temporary files left by a crash are removed by `open`. Chunks are not fsynced: a chunk lost
//! in a crash is fetched again, which is the cache's whole contract.
//!
//! All methods take `&self` (an internal lock guards the index, never held across file IO)
//! and block; async callers use `spawn_blocking`.

use super::{Hash, from_hex, hash_of, to_hex};
use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// Infix of temporary files (`<hex>.tmp-<random>`).
const TMP_INFIX: &str = ".tmp-";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "chunk does not match its hash {} (got {})",
        to_hex(expected),
        to_hex(actual)
    )]
    Corrupt { expected: Hash, actual: Hash },
    #[error("chunk of {size} bytes does not fit a cache of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("chunk cache: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    used: SystemTime,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<Hash, Entry>,
    total: u64,
}

impl Index {
    fn insert(&mut self, hash: Hash, entry: Entry) {
        if let Some(old) = self.entries.insert(hash, entry) {
            self.total -= old.size;
        }
        self.total += entry.size;
    }

    fn remove(&mut self, hash: &Hash) -> Option<Entry> {
        let old = self.entries.remove(hash)?;
        self.total -= old.size;
        Some(old)
    }
}

#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
}

impl Cache {
    /// Opens (creating, mode 0700) the cache in `dir`, indexing the chunks already there and
    /// removing leftover temporary files, then evicts down to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Cache, CacheError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut index = Index::default();
        for dirent in std::fs::read_dir(dir)? {
            let dirent = dirent?;
            let name = dirent.file_name();
            let name = name.to_string_lossy();
            if name.contains(TMP_INFIX) {
                let _ = std::fs::remove_file(dirent.path());
                continue;
            }
            let (Some(hash), Ok(meta)) = (from_hex(&name), dirent.metadata()) else {
                tracing::warn!(path = %dirent.path().display(), "ignoring unknown entry in the chunk cache");
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            index.insert(
                hash,
                Entry {
                    size: meta.len(),
                    used,
                },
            );
        }
        let cache = Cache {
            dir: dir.to_owned(),
            max_bytes,
            index: Mutex::new(index),
        };
        cache.evict_to(max_bytes)?;
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the chunk `hash` is stored (whether or not it is there).
    pub fn path_of(&self, hash: &Hash) -> PathBuf {
        self.dir.join(to_hex(hash))
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn has(&self, hash: &Hash) -> bool {
        self.lock().entries.contains_key(hash)
    }

    /// Bytes of all chunks held.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `bytes` as chunk `hash` after checking they hash to it, then evicts the least
    /// recently used chunks beyond the bound. Storing a chunk already held only refreshes it.
    pub fn put(&self, hash: &Hash, bytes: &[u8]) -> Result<(), CacheError> {
        let actual = hash_of(bytes);
        if actual != *hash {
            return Err(CacheError::Corrupt {
                expected: *hash,
                actual,
            });
        }
        self.put_verified(hash, bytes)
    }

    /// Like [`Cache::put`] for bytes the caller has just checked against `hash` (every
    /// download path verifies on arrival), so 4 MiB are not hashed a second time.
    pub fn put_verified(&self, hash: &Hash, bytes: &[u8]) -> Result<(), CacheError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(CacheError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let path = self.path_of(hash);
        if self.has(hash) && touch(&path) {
            self.lock().insert(
                *hash,
                Entry {
                    size,
                    used: SystemTime::now(),
                },
            );
            return Ok(());
        }
        let tmp = self.dir.join(format!(
            "{}{TMP_INFIX}{:016x}",
            to_hex(hash),
            rand::random::<u64>()
        ));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(bytes)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        self.lock().insert(
            *hash,
            Entry {
                size,
                used: SystemTime::now(),
            },
        );
        self.evict_to(self.max_bytes)?;
        Ok(())
    }

    /// The chunk `hash`, verified, and marked as used. A file that no longer matches its
    /// hash is removed and reported as absent.
    pub fn get(&self, hash: &Hash) -> Option<Vec<u8>> {
        let path = self.path_of(hash);
        let read = (|| {
            let mut file = std::fs::File::open(&path)?;
            let mut bytes = Vec::with_capacity(file.metadata()?.len() as usize);
            file.read_to_end(&mut bytes)?;
            let _ = file.set_modified(SystemTime::now());
            Ok::<_, io::Error>(bytes)
        })();
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "reading cached chunk");
                }
                self.lock().remove(hash);
                return None;
            }
        };
        if hash_of(&bytes) != *hash {
            tracing::warn!(path = %path.display(), "dropping corrupt cached chunk");
            let _ = std::fs::remove_file(&path);
            self.lock().remove(hash);
            return None;
        }
        let size = bytes.len() as u64;
        self.lock().insert(
            *hash,
            Entry {
                size,
                used: SystemTime::now(),
            },
        );
        Some(bytes)
    }

    /// Drops chunk `hash`; `Ok(false)` if it was not held.
    pub fn remove(&self, hash: &Hash) -> Result<bool, CacheError> {
        let held = self.lock().remove(hash).is_some();
        match std::fs::remove_file(self.path_of(hash)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(held),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes least recently used chunks until at most `max_bytes` are held. Returns the
    /// bytes freed.
    pub fn evict_to(&self, max_bytes: u64) -> Result<u64, CacheError> {
        let victims: Vec<(Hash, u64)> = {
            let index = self.lock();
            if index.total <= max_bytes {
                return Ok(0);
            }
            let mut by_age: Vec<(&Hash, &Entry)> = index.entries.iter().collect();
            by_age.sort_by_key(|(hash, e)| (e.used, **hash));
            let mut excess = index.total - max_bytes;
            let mut victims = Vec::new();
            for (hash, e) in by_age {
                if excess == 0 {
                    break;
                }
                excess = excess.saturating_sub(e.size);
                victims.push((*hash, e.size));
            }
            victims
        };
        let mut freed = 0;
        for (hash, size) in victims {
            if self.remove(&hash)? {
                freed += size;
            }
        }
        Ok(freed)
    }
}

/// Refreshes a chunk file's mtime; `false` if the file is gone.
fn touch(path: &Path) -> bool {
    std::fs::File::open(path).is_ok_and(|f| f.set_modified(SystemTime::now()).is_ok())
}

#[cfg(test)]
mod tests {
    // Pins that only verified chunks are stored (nothing on disk otherwise), that reads
    // re-verify and drop rotten files, the byte bound with least-recently-used eviction, and
    // that chunks and their recency survive reopening while crash leftovers are cleaned.
    use super::*;
    use crate::files::testutil::bytes;
    use std::time::Duration;

    fn chunk(seed: u8) -> (Hash, Vec<u8>) {
        let data = bytes(1000, seed);
        (hash_of(&data), data)
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).expect("ls").count()
    }

    /// Lets mtimes differ even on coarse clocks.
    fn tick() {
        std::thread::sleep(Duration::from_millis(15));
    }

    #[test]
    fn stores_only_verified_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), 1 << 20).expect("open");
        let (hash, data) = chunk(1);
        let (other, _) = chunk(2);
        let err = cache.put(&other, &data).expect_err("mismatch");
        assert!(
            matches!(err, CacheError::Corrupt { expected, actual } if expected == other && actual == hash)
        );
        assert!(!cache.has(&other));
        assert_eq!(files_in(dir.path()), 0);
        cache.put(&hash, &data).expect("put");
        cache.put(&hash, &data).expect("put again");
        assert!(cache.has(&hash));
        assert_eq!((cache.len(), cache.total_bytes()), (1, 1000));
        assert_eq!(cache.get(&hash).as_deref(), Some(&data[..]));
        assert_eq!(cache.get(&other), None);
        assert_eq!(files_in(dir.path()), 1);
        assert!(matches!(
            Cache::open(&dir.path().join("small"), 10)
                .expect("open")
                .put(&hash, &data),
            Err(CacheError::TooLarge { .. })
        ));
    }

    #[test]
    fn rotten_files_are_dropped_on_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), 1 << 20).expect("open");
        let (hash, mut data) = chunk(3);
        cache.put(&hash, &data).expect("put");
        data[10] ^= 1;
        std::fs::write(cache.path_of(&hash), &data).expect("corrupt");
        assert_eq!(cache.get(&hash), None);
        assert!(!cache.has(&hash));
        assert!(!cache.path_of(&hash).exists());
        assert_eq!(cache.total_bytes(), 0);
    }

    #[test]
    fn evicts_least_recently_used_to_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path(), 2500).expect("open");
        let (a, b, c, d) = (chunk(1), chunk(2), chunk(3), chunk(4));
        for (hash, data) in [&a, &b] {
            cache.put(hash, data).expect("put");
            tick();
        }
        assert!(cache.get(&a.0).is_some());
        tick();
        // Over the bound: b, the least recently used, goes.
        cache.put(&c.0, &c.1).expect("put");
        assert!(cache.has(&a.0) && !cache.has(&b.0) && cache.has(&c.0));
        assert_eq!(cache.total_bytes(), 2000);
        assert_eq!(files_in(dir.path()), 2);
        tick();
        cache.put(&d.0, &d.1).expect("put");
        assert!(!cache.has(&a.0) && cache.has(&c.0) && cache.has(&d.0));
        assert_eq!(cache.evict_to(1000).expect("evict"), 1000);
        assert!(!cache.has(&c.0) && cache.has(&d.0));
        assert_eq!(cache.evict_to(0).expect("evict"), 1000);
        assert!(cache.is_empty());
        assert_eq!(files_in(dir.path()), 0);
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (chunk(1), chunk(2), chunk(3));
        {
            let cache = Cache::open(dir.path(), 1 << 20).expect("open");
            for (hash, data) in [&a, &b, &c] {
                cache.put(hash, data).expect("put");
                tick();
            }
            assert!(cache.get(&a.0).is_some());
        }
        std::fs::write(
            dir.path().join(format!("{}{TMP_INFIX}1", to_hex(&a.0))),
            b"half",
        )
        .expect("tmp");
        std::fs::write(dir.path().join("README"), b"stray").expect("stray");
        // Reopened with a smaller bound: the oldest by mtime (b) is evicted at open.
        let cache = Cache::open(dir.path(), 2000).expect("reopen");
        assert!(cache.has(&a.0) && !cache.has(&b.0) && cache.has(&c.0));
        assert_eq!(cache.total_bytes(), 2000);
        assert_eq!(cache.get(&c.0).as_deref(), Some(&c.1[..]));
        assert_eq!(
            files_in(dir.path()),
            3,
            "temp file removed, stray file left alone"
        );
    }
}
