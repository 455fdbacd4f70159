//! The agent's file-distribution runtime: the peer listener (bound at start so `Hello` can
//! announce its port), the chunk cache, what this host serves ([`Registry`]), the shared
//! upload and download rate limiters, the peer server (started, or replaced, on every
//! `PeerIdentity`), scans, and the routing of server answers to running fetches.
//!
//! Outgoing file control messages (`Manifest`, `WhoHas`, `Have`, `FileProgress`, `Served`,
//! `GetChunk`) go through one bounded queue that the session's write loop drains; they are not
//! spooled. Cheap to clone ([`Files`] is a handle).

use super::cache::Cache;
use super::fetch::download::PeerPool;
use super::fetch::{self, Event};
use super::limit::RateLimiter;
use super::peer::{self, ChunkSource, PeerClient, PeerServer, PeerServerOptions};
use super::scan;
use super::serve::Registry;
use anyhow::Context as _;
use shoal_proto::{AgentMsg, FetchSpec};
use shoal_types::files::CHUNK_SIZE;
use shoal_types::{StepId, TaskKey};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Uploads served at once; more get `busy` so the tracker steers requesters elsewhere.
pub const MAX_UPLOADS: usize = 4;
/// Peer links open at once.
pub const MAX_PEER_LINKS: usize = 64;
/// Capacity of the outgoing file message queue.
pub const OUTBOX: usize = 1024;
/// Capacity of each fetch's event queue (room for the parts of every in-flight chunk).
pub const FETCH_EVENTS: usize = 256;
/// How often `Served` is reported while chunks are being served.
pub const SERVED_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Options {
    /// Where the peer server listens (port 0: any free port).
    pub peer_listen: SocketAddr,
    /// Bound of the chunk cache under `STATE_DIR/chunks`.
    pub cache_bytes: u64,
}

#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
}

struct Inner {
    listener: Arc<TcpListener>,
    ca_pem: Vec<u8>,
    cache: Arc<Cache>,
    registry: Arc<Registry>,
    upload: RateLimiter,
    download: RateLimiter,
    pool: PeerPool,
    server_stop: Mutex<Option<oneshot::Sender<()>>>,
    out_tx: mpsc::Sender<AgentMsg>,
    out_rx: tokio::sync::Mutex<mpsc::Receiver<AgentMsg>>,
    routes: Mutex<HashMap<TaskKey, mpsc::Sender<Event>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Files {
    /// Opens the cache, binds the peer listener and starts the `Served` reporter.
    pub async fn open(opts: &Options, state_dir: &Path, ca: &Path) -> anyhow::Result<Files> {
        let ca_pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let dir = state_dir.join("chunks");
        let max = opts.cache_bytes.max(u64::from(CHUNK_SIZE));
        let cache = tokio::task::spawn_blocking(move || Cache::open(&dir, max))
            .await
            .context("opening the chunk cache")??;
        let listener = TcpListener::bind(opts.peer_listen)
            .await
            .with_context(|| format!("binding the peer port {}", opts.peer_listen))?;
        let cache = Arc::new(cache);
        let (out_tx, out_rx) = mpsc::channel(OUTBOX);
        let files = Files {
            inner: Arc::new(Inner {
                listener: Arc::new(listener),
                ca_pem,
                registry: Arc::new(Registry::new(cache.clone())),
                cache,
                upload: RateLimiter::unlimited(),
                download: RateLimiter::unlimited(),
                pool: PeerPool::default(),
                server_stop: Mutex::new(None),
                out_tx,
                out_rx: tokio::sync::Mutex::new(out_rx),
                routes: Mutex::new(HashMap::new()),
            }),
        };
        tokio::spawn(report_served(Arc::downgrade(&files.inner)));
        Ok(files)
    }

    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.listener.local_addr()
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    /// The outgoing queue, held by the session's write loop for its lifetime.
    pub async fn outbox(&self) -> tokio::sync::MutexGuard<'_, mpsc::Receiver<AgentMsg>> {
        self.inner.out_rx.lock().await
    }

    /// `PeerIdentity`: (re)starts the peer server and the client with this identity. A bad
    /// identity is logged (without the key) and leaves the previous one in place.
    pub fn on_identity(&self, cert_pem: &str, key_pem: &str, ticket_key: &str) {
        if let Err(e) = self.set_identity(cert_pem, key_pem, ticket_key) {
            tracing::warn!(error = %e, "unusable peer identity; peers cannot reach this agent");
        }
    }

    fn set_identity(&self, cert_pem: &str, key_pem: &str, ticket_key: &str) -> anyhow::Result<()> {
        let inner = &self.inner;
        let ticket_key = hex::decode(ticket_key).context("ticket key is not hex")?;
        let (cert, key) = (cert_pem.as_bytes(), key_pem.as_bytes());
        let server_tls = peer::tls::server_config(&inner.ca_pem, cert, key)?;
        let client_tls = peer::tls::client_config(&inner.ca_pem, cert, key)?;
        inner.pool.set_client(PeerClient::new(client_tls));
        let server = PeerServer::from_listener(
            inner.listener.clone(),
            server_tls,
            inner.registry.clone() as Arc<dyn ChunkSource>,
            PeerServerOptions {
                ticket_key,
                upload: inner.upload.clone(),
                max_uploads: MAX_UPLOADS,
                max_connections: MAX_PEER_LINKS,
            },
        );
        let (stop, stopped) = oneshot::channel();
        if let Some(old) = lock(&inner.server_stop).replace(stop) {
            let _ = old.send(());
        }
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        tracing::info!(peer_addr = ?self.peer_addr().ok(), "peer server started");
        Ok(())
    }

    /// `Scan`: expands and hashes off the runtime, registers the chunks for serving, answers
    /// `Manifest`.
    pub fn scan(&self, key: TaskKey, paths: Vec<String>, account: String, limit: Option<u64>) {
        self.inner.upload.set_rate(limit);
        let this = self.clone();
        tokio::spawn(async move {
            let scanned = tokio::task::spawn_blocking(move || scan::scan(&paths, &account)).await;
            let scanned = match scanned {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(task = %key, error = %e, "scan failed");
                    return;
                }
            };
            this.inner.registry.add_scan(key, &scanned.files);
            tracing::info!(task = %key, files = scanned.files.len(), errors = scanned.errors.len(), "scanned");
            let msg = AgentMsg::Manifest {
                key,
                files: scanned.files,
                errors: scanned.errors,
            };
            if this.inner.out_tx.send(msg).await.is_err() {
                tracing::warn!(task = %key, "manifest not sent: the agent is stopping");
            }
        });
    }

    /// Routes `Peers` or a `ChunkPart` to the running fetch of `key`; dropped if none runs or
    /// its queue is full (the fetch asks again).
    pub fn route(&self, key: &TaskKey, event: Event) {
        let tx = lock(&self.inner.routes).get(key).cloned();
        match tx {
            Some(tx) => {
                if tx.try_send(event).is_err() {
                    tracing::debug!(task = %key, "fetch event dropped: queue full");
                }
            }
            None => tracing::debug!(task = %key, "file message for no running fetch"),
        }
    }

    /// A new session: running fetches re-announce what they hold and ask again.
    pub fn begin_session(&self) {
        for tx in lock(&self.inner.routes).values() {
            let _ = tx.try_send(Event::Session);
        }
    }

    /// `Release`: forgets the step attempt's scans and fetch registrations, and removes its
    /// cached chunks no other fetch needs.
    pub fn release(&self, step_id: StepId, attempt: u32) {
        let hashes = self.inner.registry.release((step_id, attempt));
        tracing::info!(
            step_id,
            attempt,
            chunks = hashes.len(),
            "releasing file state"
        );
        if hashes.is_empty() {
            return;
        }
        let cache = self.inner.cache.clone();
        tokio::task::spawn_blocking(move || {
            for hash in hashes {
                if let Err(e) = cache.remove(&hash) {
                    tracing::warn!(error = %e, "removing a released chunk");
                }
            }
        });
    }

    /// Registers a fetch (routing, serving its cached chunks, limits) and returns what its
    /// executor works with. [`Files::end_fetch`] undoes the routing.
    pub fn start_fetch(
        &self,
        key: TaskKey,
        spec: &FetchSpec,
        output_cap: u64,
    ) -> fetch::Ctx<PeerPool> {
        let inner = &self.inner;
        let chunks = spec
            .files
            .iter()
            .flat_map(|f| f.chunks.iter().map(|c| (c.hash, c.size)))
            .collect();
        inner.registry.add_fetch(key, chunks);
        inner.upload.set_rate(spec.upload_limit);
        let (tx, events) = mpsc::channel(FETCH_EVENTS);
        lock(&inner.routes).insert(key, tx);
        fetch::Ctx {
            key,
            cache: inner.cache.clone(),
            holders: inner.pool.clone(),
            out: inner.out_tx.clone(),
            events,
            download: inner.download.clone(),
            output_cap,
        }
    }

    pub fn end_fetch(&self, key: &TaskKey) {
        lock(&self.inner.routes).remove(key);
    }
}

/// Reports served bytes about once a second until the runtime is dropped.
async fn report_served(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(SERVED_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        for (key, files) in inner.registry.take_served() {
            if inner
                .out_tx
                .try_send(AgentMsg::Served { key, files })
                .is_err()
            {
                tracing::debug!(task = %key, "served report dropped: queue full");
            }
        }
    }
}
