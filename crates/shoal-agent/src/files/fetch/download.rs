//! One chunk download: the assigned holders are tried in order until one delivers bytes that
//! hash right; they are then stored in the cache. Peers are reached through [`Holders`] (the
//! real one is [`PeerPool`], which reuses links per peer); holder host 0 is the server, asked
//! with `GetChunk` on the session, its `ChunkPart`s routed here by hash.

use super::super::cache::{Cache, CacheError};
use super::super::limit::RateLimiter;
use super::super::peer::{PeerClient, PeerError, PeerLink};
use super::super::ticket::Ticket;
use super::super::{Hash, hash_of, to_hex};
use shoal_proto::{AgentMsg, FailedFetch, PeerAddr};
use shoal_types::TaskKey;
use shoal_types::files::FileErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// A server chunk part making no progress for this long fails the attempt.
pub const PART_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle links kept per peer.
const IDLE_LINKS_PER_PEER: usize = 4;

/// Fetches a chunk from a peer (host id > 0). Implementations verify the bytes.
pub trait Holders: Clone + Send + Sync + 'static {
    /// The chunk's bytes, already verified against `hash` (a mismatch is
    /// `PeerError::Corrupt`): the executor caches them without hashing again.
    fn get(
        &self,
        holder: PeerAddr,
        ticket: &Ticket,
        hash: &Hash,
        limiter: &RateLimiter,
    ) -> impl Future<Output = Result<Vec<u8>, PeerError>> + Send;
}

/// The agent's peer client with idle links kept per peer host. Without a peer identity yet,
/// every fetch fails.
#[derive(Clone, Default)]
pub struct PeerPool {
    inner: Arc<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    client: Mutex<Option<PeerClient>>,
    idle: Mutex<HashMap<i64, Vec<PeerLink>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PeerPool {
    /// A new identity: links made with the old one are dropped.
    pub fn set_client(&self, client: PeerClient) {
        *lock(&self.inner.client) = Some(client);
        lock(&self.inner.idle).clear();
    }

    fn take_idle(&self, host: i64) -> Option<PeerLink> {
        lock(&self.inner.idle).get_mut(&host)?.pop()
    }

    fn put_idle(&self, link: PeerLink) {
        let mut idle = lock(&self.inner.idle);
        let links = idle.entry(link.host_id()).or_default();
        if links.len() < IDLE_LINKS_PER_PEER {
            links.push(link);
        }
    }
}

/// After these errors the link is still in step and can carry the next request.
fn link_reusable<T>(r: &Result<T, PeerError>) -> bool {
    matches!(
        r,
        Ok(_) | Err(PeerError::Busy | PeerError::NotFound | PeerError::Refused(_))
    )
}

impl Holders for PeerPool {
    async fn get(
        &self,
        holder: PeerAddr,
        ticket: &Ticket,
        hash: &Hash,
        limiter: &RateLimiter,
    ) -> Result<Vec<u8>, PeerError> {
        let addr = holder.addr.ok_or_else(|| {
            PeerError::Protocol(format!("no address for host {}", holder.host_id))
        })?;
        let client = lock(&self.inner.client)
            .clone()
            .ok_or_else(|| PeerError::Config("no peer identity yet".into()))?;
        if let Some(mut link) = self.take_idle(holder.host_id) {
            let r = link.get(ticket, hash, limiter).await;
            if link_reusable(&r) {
                self.put_idle(link);
                return r;
            }
            if let Err(PeerError::Corrupt { .. }) = r {
                return r;
            }
            // A stale link (the peer closed it while idle): try a fresh one.
        }
        let mut link = client.connect(addr, holder.host_id).await?;
        let r = link.get(ticket, hash, limiter).await;
        if link_reusable(&r) {
            self.put_idle(link);
        }
        r
    }
}

/// One part of a chunk the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub offset: u32,
    pub data: Vec<u8>,
    pub last: bool,
    pub error: Option<String>,
}

/// Where `ChunkPart`s of in-flight server downloads go, by hash.
pub type PartRoutes = Arc<Mutex<HashMap<Hash, mpsc::Sender<Part>>>>;

pub fn lock_routes(routes: &PartRoutes) -> MutexGuard<'_, HashMap<Hash, mpsc::Sender<Part>>> {
    lock(routes)
}

/// What every download of one fetch shares.
#[derive(Clone)]
pub struct Shared<H> {
    pub key: TaskKey,
    pub holders: H,
    pub out: mpsc::Sender<AgentMsg>,
    pub parts: PartRoutes,
    pub limiter: RateLimiter,
    pub cache: Arc<Cache>,
}

/// One chunk to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    pub hash: Hash,
    pub size: u32,
    pub holders: Vec<PeerAddr>,
    pub ticket: Ticket,
}

/// How a download ended.
#[derive(Debug)]
pub struct Done {
    pub hash: Hash,
    pub result: Result<i64, Failure>,
    /// Holders that did not deliver (for the next `WhoHas`).
    pub failed: Vec<FailedFetch>,
    /// Human-readable notes for the download log.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub enum Failure {
    /// Every holder failed (or there were none).
    Holders,
    /// Nobody's fault (the session ended): try again without counting it.
    Lost,
    /// This host cannot store it.
    Local(FileErrorCode, String),
}

enum Attempt {
    Corrupt(String),
    Failed(String),
    Lost(String),
}

/// Tries `job`'s holders in order; caches the first verified copy.
pub async fn download<H: Holders>(shared: Shared<H>, job: Job) -> Done {
    let mut done = Done {
        hash: job.hash,
        result: Err(Failure::Holders),
        failed: Vec::new(),
        notes: Vec::new(),
    };
    let short = &to_hex(&job.hash)[..12];
    for holder in &job.holders {
        let got = if holder.host_id == 0 {
            from_server(&shared, &job).await
        } else {
            shared
                .holders
                .get(*holder, &job.ticket, &job.hash, &shared.limiter)
                .await
                .map_err(|e| match e {
                    PeerError::Corrupt { .. } => Attempt::Corrupt(e.to_string()),
                    other => Attempt::Failed(other.to_string()),
                })
        };
        let stored = match got {
            Ok(bytes) => store(&shared.cache, job.hash, bytes).await,
            Err(e) => Err(StoreOr::Attempt(e)),
        };
        let (corrupt, why) = match stored {
            Ok(()) => {
                done.result = Ok(holder.host_id);
                return done;
            }
            Err(StoreOr::Local(code, message)) => {
                done.result = Err(Failure::Local(code, message));
                return done;
            }
            Err(StoreOr::Attempt(Attempt::Lost(why))) => {
                done.notes.push(format!("chunk {short}: {why}; will retry"));
                done.result = Err(Failure::Lost);
                return done;
            }
            Err(StoreOr::Attempt(Attempt::Corrupt(why))) => (true, why),
            Err(StoreOr::Attempt(Attempt::Failed(why))) => (false, why),
        };
        tracing::debug!(task = %shared.key, chunk = short, holder = holder.host_id, corrupt, error = %why, "chunk fetch failed");
        done.notes.push(format!(
            "chunk {short} from {}: {why}",
            holder_name(holder.host_id)
        ));
        done.failed.push(FailedFetch {
            hash: job.hash,
            host_id: holder.host_id,
            corrupt,
        });
    }
    done
}

pub fn holder_name(host_id: i64) -> String {
    if host_id == 0 {
        "the server".to_owned()
    } else {
        format!("host {host_id}")
    }
}

enum StoreOr {
    Attempt(Attempt),
    Local(FileErrorCode, String),
}

impl From<Attempt> for StoreOr {
    fn from(a: Attempt) -> StoreOr {
        StoreOr::Attempt(a)
    }
}

/// Caches bytes already verified against `hash` on arrival (both download paths check them),
/// off the runtime.
async fn store(cache: &Arc<Cache>, hash: Hash, bytes: Vec<u8>) -> Result<(), StoreOr> {
    let cache = cache.clone();
    let put = tokio::task::spawn_blocking(move || cache.put_verified(&hash, &bytes)).await;
    match put {
        Ok(Ok(())) => Ok(()),
        Ok(Err(CacheError::Corrupt { .. })) => {
            Err(Attempt::Corrupt("data does not match the chunk hash".into()).into())
        }
        Ok(Err(CacheError::Io(e))) if e.raw_os_error() == Some(nix::libc::ENOSPC) => Err(
            StoreOr::Local(FileErrorCode::DiskFull, format!("chunk cache: {e}")),
        ),
        Ok(Err(e)) => Err(StoreOr::Local(FileErrorCode::Other, e.to_string())),
        Err(e) => Err(StoreOr::Local(
            FileErrorCode::Other,
            format!("chunk cache: {e}"),
        )),
    }
}

/// Removes the part route of a download when it ends, however it ends.
struct RouteGuard<'a> {
    parts: &'a PartRoutes,
    hash: Hash,
}

impl Drop for RouteGuard<'_> {
    fn drop(&mut self) {
        lock(self.parts).remove(&self.hash);
    }
}

/// Asks the server for the chunk and reassembles its parts in order.
async fn from_server<H>(shared: &Shared<H>, job: &Job) -> Result<Vec<u8>, Attempt> {
    let (tx, mut rx) = mpsc::channel(32);
    lock(&shared.parts).insert(job.hash, tx);
    let _guard = RouteGuard {
        parts: &shared.parts,
        hash: job.hash,
    };
    let ask = AgentMsg::GetChunk {
        key: shared.key,
        hash: job.hash,
    };
    if shared.out.try_send(ask).is_err() {
        return Err(Attempt::Lost("the session is not sending".into()));
    }
    let mut bytes = Vec::with_capacity(job.size as usize);
    loop {
        let part = match tokio::time::timeout(PART_TIMEOUT, rx.recv()).await {
            Err(_) => return Err(Attempt::Failed("the server stopped sending".into())),
            Ok(None) => return Err(Attempt::Lost("the session ended".into())),
            Ok(Some(part)) => part,
        };
        if let Some(error) = part.error {
            return Err(Attempt::Failed(format!(
                "the server cannot serve it: {error}"
            )));
        }
        if part.offset as usize != bytes.len() {
            return Err(Attempt::Failed(format!(
                "part at offset {} where {} was expected",
                part.offset,
                bytes.len()
            )));
        }
        if bytes.len() + part.data.len() > job.size as usize {
            return Err(Attempt::Corrupt("more bytes than the chunk holds".into()));
        }
        shared.limiter.acquire(part.data.len() as u64).await;
        bytes.extend_from_slice(&part.data);
        if part.last {
            break;
        }
    }
    if hash_of(&bytes) != job.hash {
        return Err(Attempt::Corrupt(
            "data does not match the chunk hash".into(),
        ));
    }
    Ok(bytes)
}
