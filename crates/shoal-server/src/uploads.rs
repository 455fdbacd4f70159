//! Files uploaded through the API, stored content-addressed under `DATA_DIR/uploads/`: one
//! file per 4 MiB chunk named by its BLAKE3 hash, and a record per upload in the store.
//!
//! Layout:
//! - `chunks/<hex hash>`: the chunks, each written through a temporary file, fsync and rename,
//!   so a chunk file is either absent or complete. Chunks are shared: content (or a 4 MiB
//!   aligned part of it) uploaded twice is stored once.
//! - `manifests/<upload id>`: the chunk hashes of each upload, one per line. They are this
//!   server's record of which chunks are in use: a chunk no manifest names is garbage.
//! - `tmp/`: temporary files being written.
//!
//! Expiry ([`Uploads::sweep`], every minute from [`Sweeper`]): uploads not used for the
//! TTL that no live step refers to are deleted from the store, then their manifests, then every
//! chunk no remaining manifest names. One async lock ([`Uploads::state`]) serialises a sweep
//! with the last step of every upload (manifest + store record) and with [`Uploads::acquire`],
//! so a sweep never deletes content an upload or a new transfer is about to use; chunks an
//! upload in progress has written are "pending" and never collected.

use crate::app::App;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use shoal_store::{NewUpload, Store, Upload};
use shoal_types::UnixMs;
use shoal_types::files::{CHUNK_SIZE, Hash, from_hex, to_hex};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the expiry sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Temporary files older than this are leftovers of a crash and are removed by a sweep.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// Orphan manifests (no store record) checked per sweep at most.
const ORPHAN_CHECKS_MAX: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload body could not be read: {0}")]
    Body(String),
    #[error("upload storage: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] shoal_store::Error),
}

/// What one expiry sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub uploads: usize,
    pub chunks: usize,
    pub bytes: u64,
}

/// The upload store. Cheap to share (`App::uploads`).
pub struct Uploads {
    dir: PathBuf,
    /// Chunks written by uploads in progress (with how many uploads hold each). Also the lock
    /// that serialises sweeps with the final step of uploads.
    state: tokio::sync::Mutex<HashMap<Hash, usize>>,
    /// Set when an upload was abandoned after writing chunks: the next sweep collects them.
    dirty: AtomicBool,
}

/// An upload received in full, not yet recorded.
struct Received {
    id: String,
    size: u64,
    chunks: Vec<Hash>,
}

impl Uploads {
    pub fn new(data_dir: &Path) -> Uploads {
        Uploads {
            dir: data_dir.join("uploads"),
            state: Default::default(),
            // The first sweep after a start looks for leftovers.
            dirty: AtomicBool::new(true),
        }
    }

    fn chunk_path(&self, hash: &Hash) -> PathBuf {
        self.dir.join("chunks").join(to_hex(hash))
    }

    /// The bytes of chunk `hash`, verified against it (blocking IO on a blocking thread).
    pub async fn read_chunk(&self, hash: &Hash) -> std::io::Result<Vec<u8>> {
        let path = self.chunk_path(hash);
        let bytes = tokio::fs::read(&path).await?;
        if *blake3::hash(&bytes).as_bytes() != *hash {
            return Err(std::io::Error::other(format!(
                "stored chunk {} is corrupt",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Receives an upload from `body` (chunked, hashed and written as it arrives; at most one
    /// chunk is in memory), refusing it with [`Error::TooLarge`] as soon as it passes
    /// `max_bytes`, and records it. On any failure nothing new stays on disk.
    pub async fn put_stream<S, E>(
        &self,
        store: &dyn Store,
        body: S,
        name: &str,
        created_by: &str,
        max_bytes: u64,
        now: UnixMs,
    ) -> Result<Upload, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut held = Vec::new();
        let mut created = false;
        let received = self.receive(body, max_bytes, &mut held, &mut created).await;
        match received {
            Ok(received) => {
                self.commit(store, received, name, created_by, now, held)
                    .await
            }
            Err(e) => {
                let mut state = self.state.lock().await;
                release(&mut state, &held);
                if created {
                    // Collect what this upload wrote now, so a refused upload leaves nothing.
                    let pending = state.keys().copied().collect();
                    if let Err(gc) = collect(self.dir.clone(), pending).await {
                        self.dirty.store(true, Ordering::Relaxed);
                        tracing::warn!(error = %gc, "cleaning up an abandoned upload failed");
                    }
                }
                Err(e)
            }
        }
    }

    /// Stores small content given whole (inline files), like [`Uploads::put_stream`].
    pub async fn put_bytes(
        &self,
        store: &dyn Store,
        content: Bytes,
        name: &str,
        created_by: &str,
        now: UnixMs,
    ) -> Result<Upload, Error> {
        let size = content.len() as u64;
        let body = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(content) });
        self.put_stream(store, body, name, created_by, size, now)
            .await
    }

    /// The upload `id`, marked used at `now` so that it does not expire before a step
    /// references it (`Store::ref_upload`); `None` if there is no such upload.
    pub async fn acquire(
        &self,
        store: &dyn Store,
        id: &str,
        now: UnixMs,
    ) -> Result<Option<Upload>, Error> {
        let id = id.to_ascii_lowercase();
        if from_hex(&id).is_none() {
            return Ok(None);
        }
        let _serialised = self.state.lock().await;
        let Some(upload) = store.get_upload(&id).await? else {
            return Ok(None);
        };
        Ok(Some(
            store
                .put_upload(NewUpload {
                    id: upload.id,
                    name: upload.name,
                    size: upload.size,
                    chunks: upload.chunks,
                    created_by: upload.created_by,
                    now,
                })
                .await?,
        ))
    }

    async fn receive<S, E>(
        &self,
        body: S,
        max_bytes: u64,
        held: &mut Vec<Hash>,
        created: &mut bool,
    ) -> Result<Received, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || disk::prepare_dirs(&dir))
            .await
            .map_err(join_error)??;
        let mut body = std::pin::pin!(body);
        let chunk_size = CHUNK_SIZE as usize;
        let mut buf: Vec<u8> = Vec::new();
        let mut whole = blake3::Hasher::new();
        let mut size = 0u64;
        let mut chunks = Vec::new();
        while let Some(item) = body.next().await {
            let mut data = item.map_err(|e| Error::Body(e.to_string()))?;
            size += data.len() as u64;
            if size > max_bytes {
                return Err(Error::TooLarge { limit: max_bytes });
            }
            while !data.is_empty() {
                let take = (chunk_size - buf.len()).min(data.len());
                buf.extend_from_slice(&data.split_to(take));
                if buf.len() == chunk_size {
                    let (hash, back) = self.store_chunk(buf, &mut whole, held, created).await?;
                    chunks.push(hash);
                    buf = back;
                    buf.clear();
                }
            }
        }
        if !buf.is_empty() {
            let (hash, _) = self.store_chunk(buf, &mut whole, held, created).await?;
            chunks.push(hash);
        }
        Ok(Received {
            id: whole.finalize().to_hex().to_string(),
            size,
            chunks,
        })
    }

    /// Hashes a chunk, marks it pending and writes it unless an intact copy is stored already.
    /// Gives the buffer back for reuse.
    async fn store_chunk(
        &self,
        buf: Vec<u8>,
        whole: &mut blake3::Hasher,
        held: &mut Vec<Hash>,
        created: &mut bool,
    ) -> Result<(Hash, Vec<u8>), Error> {
        let mut hasher = std::mem::take(whole);
        let (hasher, buf, hash) = tokio::task::spawn_blocking(move || {
            hasher.update(&buf);
            let hash = *blake3::hash(&buf).as_bytes();
            (hasher, buf, hash)
        })
        .await
        .map_err(join_error)?;
        *whole = hasher;
        *self.state.lock().await.entry(hash).or_insert(0) += 1;
        held.push(hash);
        let dir = self.dir.clone();
        let (wrote, buf) = tokio::task::spawn_blocking(move || {
            disk::write_chunk(&dir, &hash, &buf).map(|wrote| (wrote, buf))
        })
        .await
        .map_err(join_error)??;
        *created |= wrote;
        Ok((hash, buf))
    }

    /// Makes a received upload durable and records it, under the sweep lock.
    async fn commit(
        &self,
        store: &dyn Store,
        received: Received,
        name: &str,
        created_by: &str,
        now: UnixMs,
        held: Vec<Hash>,
    ) -> Result<Upload, Error> {
        let mut state = self.state.lock().await;
        let dir = self.dir.clone();
        let id = received.id.clone();
        let chunks = received.chunks.clone();
        let written = tokio::task::spawn_blocking(move || disk::write_manifest(&dir, &id, &chunks))
            .await
            .map_err(join_error)
            .and_then(|r| r.map_err(Error::from));
        let result = match written {
            Ok(()) => store
                .put_upload(NewUpload {
                    id: received.id,
                    name: name.to_string(),
                    size: received.size,
                    chunks: received.chunks.iter().map(to_hex).collect(),
                    created_by: created_by.to_string(),
                    now,
                })
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        // A manifest without a record is an orphan that a later sweep removes; chunks it names
        // stay until then, which errs on the side of keeping data.
        release(&mut state, &held);
        result
    }

    /// One expiry pass: deletes uploads last used before `unused_before` that no live step
    /// refers to, and every chunk no remaining upload names.
    pub async fn sweep(
        &self,
        store: &dyn Store,
        unused_before: UnixMs,
    ) -> Result<SweepStats, Error> {
        let state = self.state.lock().await;
        let expired = store.expired_uploads(unused_before).await?;
        let deleted = if expired.is_empty() {
            Vec::new()
        } else {
            store.delete_uploads(&expired).await?
        };
        let dir = self.dir.clone();
        let stale_before = ms_to_time(unused_before);
        let old = tokio::task::spawn_blocking(move || disk::old_manifests(&dir, stale_before))
            .await
            .map_err(join_error)??;
        let mut remove = deleted.clone();
        for id in old.into_iter().take(ORPHAN_CHECKS_MAX) {
            if !deleted.contains(&id) && store.get_upload(&id).await?.is_none() {
                remove.push(id);
            }
        }
        let mut stats = SweepStats {
            uploads: deleted.len(),
            ..SweepStats::default()
        };
        let dirty = self.dirty.swap(false, Ordering::Relaxed);
        if remove.is_empty() && !dirty {
            return Ok(stats);
        }
        let dir = self.dir.clone();
        let removed = tokio::task::spawn_blocking(move || disk::remove_manifests(&dir, &remove))
            .await
            .map_err(join_error)?;
        if let Err(e) = removed {
            self.dirty.store(true, Ordering::Relaxed);
            return Err(e.into());
        }
        let pending = state.keys().copied().collect();
        match collect(self.dir.clone(), pending).await {
            Ok((chunks, bytes)) => {
                stats.chunks = chunks;
                stats.bytes = bytes;
                Ok(stats)
            }
            Err(e) => {
                self.dirty.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

fn release(state: &mut HashMap<Hash, usize>, held: &[Hash]) {
    for hash in held {
        if let Some(n) = state.get_mut(hash) {
            *n -= 1;
            if *n == 0 {
                state.remove(hash);
            }
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Io(std::io::Error::other(format!(
        "a blocking task failed: {e}"
    )))
}

fn ms_to_time(ms: UnixMs) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Deletes every chunk that no manifest names and no upload in progress holds, and stale
/// temporary files. Returns the chunks and bytes removed. Call with the sweep lock held.
async fn collect(dir: PathBuf, pending: HashSet<Hash>) -> Result<(usize, u64), Error> {
    tokio::task::spawn_blocking(move || disk::collect(&dir, &pending))
        .await
        .map_err(join_error)?
        .map_err(Error::from)
}

/// Runs [`Uploads::sweep`] every minute (the first at once) until `cancel`. A failed sweep is
/// logged and tried again at the next tick.
/// The expiry sweep component.
pub struct Sweeper {
    app: App,
}

impl Sweeper {
    pub fn new(app: App) -> Sweeper {
        Sweeper { app }
    }

    pub async fn run(self, cancel: CancellationToken) {
        sweep_loop(self.app, cancel).await
    }
}

async fn sweep_loop(app: App, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ttl_ms = i64::try_from(app.opts.upload_ttl.as_millis()).unwrap_or(i64::MAX);
        let before = crate::clock::now_ms().saturating_sub(ttl_ms);
        // Never raced against shutdown: a store call dropped mid-transaction could leave the
        // connection unusable. A sweep is short; shutdown waits for it.
        match app.uploads.sweep(&*app.store, before).await {
            Ok(stats) if stats != SweepStats::default() => tracing::info!(
                uploads = stats.uploads,
                chunks = stats.chunks,
                bytes = stats.bytes,
                "expired uploads removed"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the upload expiry sweep failed"),
        }
    }
}

mod disk;
#[cfg(test)]
mod tests;
