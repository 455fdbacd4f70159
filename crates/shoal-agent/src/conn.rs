//! The agent link: TLS (trusting only the configured CA), length-delimited JSON frames, and
//! one session (enroll, or hello then run until the link breaks).

use crate::files::fetch::Event;
use crate::files::fetch::download::Part;
use crate::files::runtime::Files;
use crate::identity::Identity;
use crate::spool::{Work, read_output};
use crate::tasks::Tasks;
use futures::{SinkExt, StreamExt as _};
use rustls::pki_types::ServerName;
use shoal_proto::{AgentMsg, PROTOCOL_VERSION, RejectCode, ServerMsg};
use shoal_types::{HostFacts, Labels};
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// TCP connect, TLS handshake, and waiting for the answer to `Enroll`/`Hello`, each.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A session with no message from the server for this many heartbeats is dropped.
pub const SILENCE_HEARTBEATS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("invalid server name {0:?}")]
    ServerName(String),
    #[error("CA file {0}: {1}")]
    Ca(String, String),
    #[error("protocol: {0}")]
    Protocol(#[from] shoal_proto::Error),
    #[error("rejected by the server ({code:?}): {message}")]
    Rejected { code: RejectCode, message: String },
    #[error("unexpected message from the server: {0}")]
    Unexpected(&'static str),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("connection closed by the server")]
    Closed,
    #[error("enrollment token: {0}")]
    Token(String),
}

impl Error {
    /// Rejections a retry will not fix without a person acting; the agent retries slowly.
    pub fn needs_operator(&self) -> bool {
        matches!(self, Error::Rejected { .. } | Error::Token(_))
    }
}

/// A TLS client config that trusts only the CA certificates in the PEM file `ca`.
pub fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    let ca_err = |e: &dyn std::fmt::Display| Error::Ca(ca.display().to_string(), e.to_string());
    let pem = std::fs::read(ca).map_err(|e| ca_err(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.map_err(|e| ca_err(&e))?)?;
    }
    if roots.is_empty() {
        return Err(ca_err(&"no certificate found"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

pub async fn connect(
    server: &str,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<TlsStream, Error> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| Error::ServerName(server_name.into()))?;
    let tcp = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| Error::Timeout("tcp connect"))??;
    tcp.set_nodelay(true)?;
    let stream = timeout(
        HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| Error::Timeout("tls handshake"))??;
    Ok(stream)
}

pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(shoal_proto::MAX_FRAME_BYTES)
        .new_codec()
}

pub async fn send<W: AsyncWrite + Unpin>(
    w: &mut FramedWrite<W, LengthDelimitedCodec>,
    msg: &AgentMsg,
) -> Result<(), Error> {
    w.send(Bytes::from(shoal_proto::encode(msg)?)).await?;
    Ok(())
}

/// The next message, `Err(Closed)` at EOF, `Err(Timeout)` after `silence` without a frame.
pub async fn recv<R: AsyncRead + Unpin>(
    r: &mut FramedRead<R, LengthDelimitedCodec>,
    silence: Duration,
) -> Result<ServerMsg, Error> {
    match timeout(silence, r.next()).await {
        Err(_) => Err(Error::Timeout("no message from the server")),
        Ok(None) => Err(Error::Closed),
        Ok(Some(frame)) => Ok(shoal_proto::decode(&frame?)?),
    }
}

/// First contact: exchanges the enrollment token for an identity.
pub async fn enroll<S: AsyncRead + AsyncWrite>(
    stream: S,
    token: String,
    facts: HostFacts,
    labels: Labels,
) -> Result<Identity, Error> {
    let (r, w) = tokio::io::split(stream);
    let (mut reader, mut writer) = (FramedRead::new(r, codec()), FramedWrite::new(w, codec()));
    send(
        &mut writer,
        &AgentMsg::Enroll {
            protocol: PROTOCOL_VERSION,
            token,
            facts,
            labels,
        },
    )
    .await?;
    match recv(&mut reader, HANDSHAKE_TIMEOUT).await? {
        ServerMsg::Enrolled {
            host_id,
            agent_id,
            secret,
        } => Ok(Identity {
            host_id,
            agent_id,
            secret,
        }),
        ServerMsg::Rejected { code, message } => Err(Error::Rejected { code, message }),
        _ => Err(Error::Unexpected("expected enrolled or rejected")),
    }
}

/// What a session learnt at `Welcome`.
#[derive(Debug, Clone, Copy)]
pub struct Welcome {
    pub host_id: i64,
    pub generation: i64,
    pub heartbeat: Duration,
}

/// Says hello, then serves the server's requests and sends spooled results until the link
/// breaks, and returns why. `on_welcome` runs once the session is established.
pub async fn serve<S: AsyncRead + AsyncWrite>(
    stream: S,
    identity: &Identity,
    facts: HostFacts,
    labels: Labels,
    tasks: &Tasks,
    files: Option<&Files>,
    on_welcome: impl FnOnce(Welcome),
) -> Error {
    match serve_inner(stream, identity, facts, labels, tasks, files, on_welcome).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn serve_inner<S: AsyncRead + AsyncWrite>(
    stream: S,
    identity: &Identity,
    facts: HostFacts,
    labels: Labels,
    tasks: &Tasks,
    files: Option<&Files>,
    on_welcome: impl FnOnce(Welcome),
) -> Result<Infallible, Error> {
    let (r, w) = tokio::io::split(stream);
    let (mut reader, mut writer) = (FramedRead::new(r, codec()), FramedWrite::new(w, codec()));
    let hello = AgentMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent_id: identity.agent_id.clone(),
        secret: identity.secret.clone(),
        facts,
        labels,
        known_tasks: tasks.known(),
        peer_port: files.and_then(|f| f.peer_addr().ok()).map(|a| a.port()),
    };
    send(&mut writer, &hello).await?;
    let welcome = match recv(&mut reader, HANDSHAKE_TIMEOUT).await? {
        ServerMsg::Welcome {
            host_id,
            generation,
            heartbeat_secs,
        } => Welcome {
            host_id,
            generation,
            heartbeat: Duration::from_secs(u64::from(heartbeat_secs.clamp(1, 3600))),
        },
        ServerMsg::Rejected { code, message } => return Err(Error::Rejected { code, message }),
        _ => return Err(Error::Unexpected("expected welcome or rejected")),
    };
    if welcome.host_id != identity.host_id {
        tracing::warn!(
            identity = identity.host_id,
            welcome = welcome.host_id,
            "server reports another host id"
        );
    }
    on_welcome(welcome);
    tasks.begin_session();
    let mut outbox = match files {
        Some(f) => Some(f.outbox().await),
        None => None,
    };
    if let Some(f) = files {
        f.begin_session();
    }
    let silence = welcome.heartbeat * SILENCE_HEARTBEATS;
    tokio::select! {
        r = read_loop(&mut reader, tasks, files, silence) => r,
        r = write_loop(&mut writer, tasks, outbox.as_deref_mut(), welcome.heartbeat) => r,
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut FramedRead<R, LengthDelimitedCodec>,
    tasks: &Tasks,
    files: Option<&Files>,
    silence: Duration,
) -> Result<Infallible, Error> {
    loop {
        let msg = recv(reader, silence).await?;
        let msg = match (msg, files) {
            (ServerMsg::Fetch { key, spec }, _) => {
                tasks.fetch(key, spec, files);
                continue;
            }
            (msg, Some(files)) => match on_file_message(msg, files) {
                Some(msg) => msg,
                None => continue,
            },
            (msg, None) => msg,
        };
        match msg {
            ServerMsg::Run {
                key,
                spec,
                output_cap,
            } => tasks.run(key, std::sync::Arc::unwrap_or_clone(spec), output_cap),
            ServerMsg::Kill { key } => tasks.kill(&key),
            ServerMsg::Ack {
                key,
                output_offset,
                finished,
            } => tasks.ack(&key, output_offset, finished),
            ServerMsg::Forget { key } => tasks.forget(&key),
            ServerMsg::Rejected { code, message } => return Err(Error::Rejected { code, message }),
            ServerMsg::Heartbeat => {}
            ServerMsg::Welcome { .. } | ServerMsg::Enrolled { .. } => {
                tracing::debug!("ignoring handshake message in an established session");
            }
            ServerMsg::PeerIdentity { .. }
            | ServerMsg::Scan { .. }
            | ServerMsg::Fetch { .. }
            | ServerMsg::Peers { .. }
            | ServerMsg::ChunkPart { .. }
            | ServerMsg::Release { .. } => {
                tracing::debug!("ignoring a file message: file distribution is off");
            }
        }
    }
}

/// Hands a file message to the file runtime; returns any other message.
fn on_file_message(msg: ServerMsg, files: &Files) -> Option<ServerMsg> {
    match msg {
        ServerMsg::PeerIdentity {
            cert_pem,
            key_pem,
            ticket_key,
        } => files.on_identity(&cert_pem, &key_pem, &ticket_key),
        ServerMsg::Scan {
            key,
            paths,
            account,
            upload_limit,
        } => files.scan(key, paths, account, upload_limit),
        ServerMsg::Peers {
            key,
            ticket,
            assign,
            retry_ms,
        } => files.route(
            &key,
            Event::Peers {
                ticket,
                assign,
                retry_ms,
            },
        ),
        ServerMsg::ChunkPart {
            key,
            hash,
            offset,
            data,
            last,
            error,
        } => files.route(
            &key,
            Event::Part {
                hash,
                part: Part {
                    offset,
                    data,
                    last,
                    error,
                },
            },
        ),
        ServerMsg::Release { step_id, attempt } => files.release(step_id, attempt),
        other => return Some(other),
    }
    None
}

/// Sends heartbeats and everything the spool has to send, reading output back from disk.
async fn write_loop<W: AsyncWrite + Unpin>(
    writer: &mut FramedWrite<W, LengthDelimitedCodec>,
    tasks: &Tasks,
    mut outbox: Option<&mut mpsc::Receiver<AgentMsg>>,
    heartbeat: Duration,
) -> Result<Infallible, Error> {
    let mut next_heartbeat = Instant::now() + heartbeat;
    loop {
        // File control messages first, a bounded batch, so a chatty task cannot starve them.
        if let Some(rx) = outbox.as_deref_mut() {
            for _ in 0..OUTBOX_BATCH {
                let Ok(msg) = rx.try_recv() else { break };
                feed(writer, &msg).await?;
            }
        }
        if Instant::now() >= next_heartbeat {
            let beat = AgentMsg::Heartbeat {
                running: tasks.running(),
            };
            writer
                .feed(Bytes::from(shoal_proto::encode(&beat)?))
                .await?;
            next_heartbeat = Instant::now() + heartbeat;
        }
        let Some(work) = tasks.next_work() else {
            SinkExt::<Bytes>::flush(writer).await?;
            tokio::select! {
                () = tasks.changed() => {}
                () = tokio::time::sleep_until(next_heartbeat) => {}
                Some(msg) = recv_opt(&mut outbox) => feed(writer, &msg).await?,
            }
            continue;
        };
        if let Some(msg) = work_message(work).await {
            writer.feed(Bytes::from(shoal_proto::encode(&msg)?)).await?;
        }
    }
}

/// File messages sent between two spool messages, at most.
const OUTBOX_BATCH: usize = 64;

async fn feed<W: AsyncWrite + Unpin>(
    writer: &mut FramedWrite<W, LengthDelimitedCodec>,
    msg: &AgentMsg,
) -> Result<(), Error> {
    match shoal_proto::encode(msg) {
        Ok(bytes) => writer.feed(Bytes::from(bytes)).await?,
        // A message too large to frame is a bug here, not a reason to drop the session.
        Err(e) => tracing::warn!(error = %e, "dropping an unencodable file message"),
    }
    Ok(())
}

async fn recv_opt(outbox: &mut Option<&mut mpsc::Receiver<AgentMsg>>) -> Option<AgentMsg> {
    match outbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn work_message(work: Work) -> Option<AgentMsg> {
    Some(match work {
        Work::Started { key, at } => AgentMsg::Started { key, at },
        Work::Finished { key, outcome } => AgentMsg::Finished { key, outcome },
        Work::Output {
            key,
            offset,
            len,
            stream,
            path,
        } => {
            let data = tokio::task::spawn_blocking(move || read_output(&path, offset, len)).await;
            let data = match data {
                Ok(Ok(d)) if !d.is_empty() => d,
                Ok(Ok(_)) => return None,
                Ok(Err(e)) => {
                    // Forgotten meanwhile, or the spool file was damaged.
                    tracing::debug!(task = %key, error = %e, "reading spooled output");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(task = %key, error = %e, "reading spooled output");
                    return None;
                }
            };
            AgentMsg::Output {
                key,
                offset,
                stream,
                data,
            }
        }
    })
}
