//! Peer links: agents serving chunks to each other over mutual TLS (configs and identities in
//! [`tls`]). A link carries requests one after another:
//!
//! - request: a frame (4-byte big-endian length, then JSON) `{"get": "<hash hex>", "ticket":
//!   {...}}`;
//! - response: a frame `{"ok": <size>}` followed by exactly `size` raw bytes (no JSON or
//!   base64 on the data path), or a frame `{"err": "<reason>"}` ([`ERR_BUSY`],
//!   [`ERR_NOT_FOUND`], ...).
//!
//! The server learns who is asking from the client certificate, checks the ticket (server
//! signature, issued to that host, not expired), asks its [`ChunkSource`] whether it holds the
//! chunk for that ticket, verifies the bytes against the hash before sending (a source file
//! changed since scanning is refused, not served), and paces uploads with a shared
//! [`RateLimiter`]. Concurrent uploads are capped; over the cap it answers `busy` at once so the
//! tracker can steer the requester elsewhere. The client checks the server is the host it
//! meant to reach and verifies every chunk before returning it.

pub mod tls;

use super::limit::RateLimiter;
use super::manifest::{CHUNK_SIZE, ChunkRef};
use super::ticket::Ticket;
use super::{Hash, hash_hex, hash_of};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// TCP connect and TLS handshake, each.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A link with no request for this long is closed by the server.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// One read or write making no progress for this long fails the transfer.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest header frame either side accepts.
pub const MAX_HEADER: u32 = 64 * 1024;
/// Bytes moved between two rate-limiter acquisitions.
pub const PIECE: usize = 64 * 1024;

pub const ERR_BUSY: &str = "busy";
pub const ERR_NOT_FOUND: &str = "not found";
pub const ERR_UNAVAILABLE: &str = "unavailable";

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer tls config: {0}")]
    Config(String),
    #[error("peer io: {0}")]
    Io(#[from] io::Error),
    #[error("peer timed out: {0}")]
    Timeout(&'static str),
    #[error("peer handshake failed: {0}")]
    Handshake(io::Error),
    #[error("peer is not host {expected} (certificate names {actual:?})")]
    WrongPeer { expected: i64, actual: Option<i64> },
    #[error("peer certificate names no single peer host")]
    NoIdentity,
    #[error("peer is busy")]
    Busy,
    #[error("peer does not have the chunk")]
    NotFound,
    #[error("peer refused: {0}")]
    Refused(String),
    #[error("chunk from peer does not match its hash {}", super::to_hex(hash))]
    Corrupt { hash: Hash },
    #[error("peer protocol: {0}")]
    Protocol(String),
}

/// Where the bytes of a chunk the server may serve are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    Bytes(Vec<u8>),
    /// `size` bytes at `offset` of `path` (a cache file, or a region of a source file).
    File {
        path: PathBuf,
        offset: u64,
        size: u32,
    },
}

/// What the serving agent holds. The ticket passed in is already verified (signature,
/// requester, expiry); the source checks the chunk belongs to a step of that ticket.
pub trait ChunkSource: Send + Sync + 'static {
    /// Called on the async runtime: must be a quick in-memory lookup.
    fn lookup(&self, ticket: &Ticket, peer_host: i64, hash: &Hash) -> Option<Chunk>;

    /// `bytes` of chunk `hash` were sent in full to `peer_host` (upload accounting). Called
    /// on the async runtime: must be quick.
    fn sent(&self, _ticket: &Ticket, _peer_host: i64, _hash: &Hash, _bytes: u64) {}
}

#[derive(Serialize, Deserialize)]
struct Request {
    #[serde(with = "hash_hex")]
    get: Hash,
    ticket: Ticket,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Response {
    Ok(u32),
    Err(String),
}

#[derive(Clone, Debug)]
pub struct PeerServerOptions {
    /// The server's Ed25519 public key tickets are checked against.
    pub ticket_key: Vec<u8>,
    /// Shared by all uploads of this agent.
    pub upload: RateLimiter,
    pub max_uploads: usize,
    pub max_connections: usize,
}

pub struct PeerServer {
    /// Shared so a replacement server (new identity) keeps the port announced in `Hello`.
    listener: Arc<TcpListener>,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
}

struct Shared {
    handler: Arc<dyn ChunkSource>,
    opts: PeerServerOptions,
    uploads: Semaphore,
}

impl PeerServer {
    /// Listens on `addr`. `tls` must require client certificates ([`tls::server_config`]).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        handler: Arc<dyn ChunkSource>,
        opts: PeerServerOptions,
    ) -> io::Result<PeerServer> {
        let listener = TcpListener::bind(addr).await?;
        Ok(PeerServer::from_listener(
            Arc::new(listener),
            tls,
            handler,
            opts,
        ))
    }

    /// Serves on a listener bound earlier (the agent binds its peer port at start, before it
    /// has a peer identity).
    pub fn from_listener(
        listener: Arc<TcpListener>,
        tls: Arc<rustls::ServerConfig>,
        handler: Arc<dyn ChunkSource>,
        opts: PeerServerOptions,
    ) -> PeerServer {
        PeerServer {
            listener,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
            connections: Arc::new(Semaphore::new(opts.max_connections)),
            shared: Arc::new(Shared {
                handler,
                uploads: Semaphore::new(opts.max_uploads),
                opts,
            }),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; then open links are dropped mid-request (the
    /// requester fetches elsewhere). Accept errors are logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut links = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            while links.try_join_next().is_some() {}
            let (tcp, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                tracing::debug!(%addr, "too many peer links, dropping one");
                continue;
            };
            let (acceptor, shared) = (self.acceptor.clone(), self.shared.clone());
            links.spawn(async move {
                if let Err(e) = serve_link(tcp, acceptor, shared).await {
                    tracing::debug!(%addr, error = %e, "peer link ended");
                }
                drop(permit);
            });
        }
    }
}

async fn serve_link(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) -> Result<(), PeerError> {
    tcp.set_nodelay(true)?;
    let mut stream = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| PeerError::Timeout("tls handshake"))?
        .map_err(PeerError::Handshake)?;
    let peer_host = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(tls::host_id_of)
        .ok_or(PeerError::NoIdentity)?;
    loop {
        let header = match timeout(IDLE_TIMEOUT, read_frame(&mut stream)).await {
            Err(_) => return Ok(()),
            Ok(Err(PeerError::Io(e))) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(result) => result?,
        };
        let Ok(req) = serde_json::from_slice::<Request>(&header) else {
            write_response(&mut stream, &Response::Err("bad request".into())).await?;
            return Ok(());
        };
        serve_request(&mut stream, &shared, peer_host, req).await?;
    }
}

async fn serve_request<S: AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Shared,
    peer_host: i64,
    req: Request,
) -> Result<(), PeerError> {
    if let Err(e) = req
        .ticket
        .verify(&shared.opts.ticket_key, peer_host, crate::exec::now_ms())
    {
        tracing::debug!(peer_host, error = %e, "refusing chunk: bad ticket");
        return write_response(stream, &Response::Err(format!("ticket: {e}"))).await;
    }
    let Ok(_permit) = shared.uploads.try_acquire() else {
        return write_response(stream, &Response::Err(ERR_BUSY.into())).await;
    };
    let Some(chunk) = shared.handler.lookup(&req.ticket, peer_host, &req.get) else {
        return write_response(stream, &Response::Err(ERR_NOT_FOUND.into())).await;
    };
    let hash = req.get;
    let bytes = tokio::task::spawn_blocking(move || load(chunk, &hash))
        .await
        .map_err(|e| PeerError::Io(io::Error::other(e)))?;
    let Some(bytes) = bytes else {
        return write_response(stream, &Response::Err(ERR_UNAVAILABLE.into())).await;
    };
    write_response(stream, &Response::Ok(bytes.len() as u32)).await?;
    for piece in bytes.chunks(PIECE) {
        shared.opts.upload.acquire(piece.len() as u64).await;
        timeout(STALL_TIMEOUT, stream.write_all(piece))
            .await
            .map_err(|_| PeerError::Timeout("sending chunk"))??;
    }
    timeout(STALL_TIMEOUT, stream.flush())
        .await
        .map_err(|_| PeerError::Timeout("sending chunk"))??;
    shared
        .handler
        .sent(&req.ticket, peer_host, &hash, bytes.len() as u64);
    Ok(())
}

/// The chunk's bytes if they still hash to `hash` (blocking).
fn load(chunk: Chunk, hash: &Hash) -> Option<Vec<u8>> {
    let bytes = match chunk {
        Chunk::Bytes(bytes) => bytes,
        Chunk::File { size, .. } if size > CHUNK_SIZE => return None,
        Chunk::File { path, offset, size } => {
            let chunk = ChunkRef { hash: *hash, size };
            match super::manifest::read_verified(&path, offset, &chunk) {
                Ok(bytes) => return Some(bytes),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot serve chunk");
                    return None;
                }
            }
        }
    };
    (hash_of(&bytes) == *hash && bytes.len() <= CHUNK_SIZE as usize).then_some(bytes)
}

/// Fetches chunks from peers with one client config (this agent's peer certificate).
#[derive(Clone)]
pub struct PeerClient {
    connector: tokio_rustls::TlsConnector,
}

/// An open link to one peer, for several requests in a row.
pub struct PeerLink {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    host_id: i64,
}

impl PeerClient {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> PeerClient {
        PeerClient {
            connector: tokio_rustls::TlsConnector::from(tls),
        }
    }

    /// Connects to `addr`, which must prove to be host `expected_host`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        expected_host: i64,
    ) -> Result<PeerLink, PeerError> {
        let name = tls::server_name(expected_host)?;
        let tcp = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::Timeout("tcp connect"))??;
        tcp.set_nodelay(true)?;
        let stream = timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, tcp))
            .await
            .map_err(|_| PeerError::Timeout("tls handshake"))?
            .map_err(|e| {
                if is_wrong_name(&e) {
                    PeerError::WrongPeer {
                        expected: expected_host,
                        actual: None,
                    }
                } else {
                    PeerError::Handshake(e)
                }
            })?;
        // The verifier checked the name; this pins that it is the only host the cert names.
        let actual = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(tls::host_id_of);
        if actual != Some(expected_host) {
            return Err(PeerError::WrongPeer {
                expected: expected_host,
                actual,
            });
        }
        Ok(PeerLink {
            stream,
            host_id: expected_host,
        })
    }

    /// One chunk from host `expected_host` at `addr`, verified, on a fresh link.
    pub async fn get_chunk(
        &self,
        addr: SocketAddr,
        expected_host: i64,
        ticket: &Ticket,
        hash: &Hash,
        limiter: &RateLimiter,
    ) -> Result<Vec<u8>, PeerError> {
        self.connect(addr, expected_host)
            .await?
            .get(ticket, hash, limiter)
            .await
    }
}

impl PeerLink {
    pub fn host_id(&self) -> i64 {
        self.host_id
    }

    /// Asks for chunk `hash` and returns its bytes once they match the hash. After an error
    /// other than `Busy`, `NotFound`, `Refused` and `Corrupt` the link is unusable.
    pub async fn get(
        &mut self,
        ticket: &Ticket,
        hash: &Hash,
        limiter: &RateLimiter,
    ) -> Result<Vec<u8>, PeerError> {
        let req = Request {
            get: *hash,
            ticket: ticket.clone(),
        };
        let header = serde_json::to_vec(&req).map_err(|e| PeerError::Protocol(e.to_string()))?;
        timeout(STALL_TIMEOUT, write_frame(&mut self.stream, &header))
            .await
            .map_err(|_| PeerError::Timeout("sending request"))??;
        let header = timeout(STALL_TIMEOUT, read_frame(&mut self.stream))
            .await
            .map_err(|_| PeerError::Timeout("waiting for the answer"))??;
        let size = match serde_json::from_slice::<Response>(&header) {
            Ok(Response::Ok(size)) if size <= CHUNK_SIZE => size as usize,
            Ok(Response::Ok(size)) => {
                return Err(PeerError::Protocol(format!(
                    "chunk of {size} bytes announced"
                )));
            }
            Ok(Response::Err(reason)) if reason == ERR_BUSY => return Err(PeerError::Busy),
            Ok(Response::Err(reason)) if reason == ERR_NOT_FOUND => {
                return Err(PeerError::NotFound);
            }
            Ok(Response::Err(reason)) => return Err(PeerError::Refused(reason)),
            Err(e) => return Err(PeerError::Protocol(format!("bad answer: {e}"))),
        };
        let mut bytes = vec![0u8; size];
        for piece in bytes.chunks_mut(PIECE) {
            limiter.acquire(piece.len() as u64).await;
            timeout(STALL_TIMEOUT, self.stream.read_exact(piece))
                .await
                .map_err(|_| PeerError::Timeout("receiving chunk"))??;
        }
        if hash_of(&bytes) != *hash {
            return Err(PeerError::Corrupt { hash: *hash });
        }
        Ok(bytes)
    }
}

/// The handshake failed because the server's certificate is not for the expected host.
fn is_wrong_name(e: &io::Error) -> bool {
    use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(
            NotValidForName | NotValidForNameContext { .. }
        ))
    )
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, PeerError> {
    let len = r.read_u32().await?;
    if len > MAX_HEADER {
        return Err(PeerError::Protocol(format!("header frame of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame).await?;
    w.flush().await
}

async fn write_response<W: AsyncWrite + Unpin>(
    w: &mut W,
    resp: &Response,
) -> Result<(), PeerError> {
    let payload = serde_json::to_vec(resp).map_err(|e| PeerError::Protocol(e.to_string()))?;
    timeout(STALL_TIMEOUT, write_frame(w, &payload))
        .await
        .map_err(|_| PeerError::Timeout("sending answer"))??;
    Ok(())
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
