//! One agent connection: authenticate (enroll or hello), register, reconcile open tasks, then
//! relay frames both ways until the link ends, is replaced, or goes silent.

use super::registry::SessionHandle;
use crate::app::App;
use crate::auth::{hash_secret, new_secret};
use crate::clock::now_ms;
use crate::writer::Report;
use futures::{SinkExt, StreamExt as _};
use shoal_proto::{AgentMsg, PROTOCOL_VERSION, RejectCode, ServerMsg};
use shoal_store::{AgentStatusChange, NewHost, TokenKind};
use shoal_types::{AgentStatus, HostId, RunStatus, TaskKey};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

type Conn<S> = Framed<S, LengthDelimitedCodec>;

/// Outgoing messages queued per session before senders back off.
const SESSION_QUEUE: usize = 512;

/// Runs one agent connection. `pre_auth` is its place among unauthenticated connections,
/// given back once the first frame arrives, which must be before `deadline`.
pub async fn run<S>(
    app: App,
    stream: S,
    peer: SocketAddr,
    pre_auth: crate::per_address::Slot,
    deadline: tokio::time::Instant,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(shoal_proto::MAX_FRAME_BYTES)
        .new_codec();
    let mut conn = Framed::new(stream, codec);
    let first = match tokio::time::timeout_at(deadline, conn.next()).await {
        Ok(Some(Ok(frame))) => frame,
        _ => return,
    };
    drop(pre_auth);
    let msg: AgentMsg = match shoal_proto::decode(&first) {
        Ok(m) => m,
        Err(e) => {
            reject(&mut conn, RejectCode::Malformed, &e.to_string()).await;
            return;
        }
    };
    match msg {
        AgentMsg::Enroll {
            protocol,
            token,
            facts,
            labels,
        } => {
            if protocol != PROTOCOL_VERSION {
                return reject_version(&mut conn, protocol).await;
            }
            enroll(&app, &mut conn, peer, &token, facts, labels).await;
        }
        AgentMsg::Hello {
            protocol,
            agent_id,
            secret,
            facts,
            labels,
            known_tasks,
            peer_port,
        } => {
            if protocol != PROTOCOL_VERSION {
                return reject_version(&mut conn, protocol).await;
            }
            let auth = match app.store.agent_auth(&agent_id).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "agent authentication failed: storage error");
                    return;
                }
            };
            let host_id = match auth {
                Some(a) if a.revoked => {
                    return reject(
                        &mut conn,
                        RejectCode::Revoked,
                        "this agent's identity was revoked",
                    )
                    .await;
                }
                Some(a) if a.secret_hash == hash_secret(&secret) => a.host_id,
                Some(_) => {
                    return reject(&mut conn, RejectCode::BadToken, "wrong agent secret").await;
                }
                None => {
                    return reject(&mut conn, RejectCode::UnknownAgent, "unknown agent id").await;
                }
            };
            let generation = match app
                .store
                .host_connected(host_id, &facts, &labels, now_ms())
                .await
            {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(host_id, error = %e, "recording an agent connection failed");
                    return;
                }
            };
            // Peers reach the agent at the address it connected from.
            let peer_addr = peer_port.map(|port| SocketAddr::new(peer.ip(), port));
            let session = Session {
                host_id,
                generation,
                peer_addr,
            };
            connected(app, conn, session, known_tasks, shutdown).await;
        }
        _ => reject(&mut conn, RejectCode::Malformed, "expected enroll or hello").await,
    }
}

/// Scripts above this size count as large frames.
const LARGE_SCRIPT: usize = 256 * 1024;
/// Large frames being encoded and written at once, across all sessions: a multi-MiB script sent
/// to 10,000 hosts must not hold 10,000 encoded copies in write buffers.
const LARGE_FRAMES_IN_FLIGHT: usize = 16;

fn large_frames() -> &'static tokio::sync::Semaphore {
    static SEM: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SEM.get_or_init(|| tokio::sync::Semaphore::new(LARGE_FRAMES_IN_FLIGHT))
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, msg: &ServerMsg) -> bool {
    let _permit = match msg {
        ServerMsg::Run { spec, .. } if spec.content.len() > LARGE_SCRIPT => {
            large_frames().acquire().await.ok()
        }
        _ => None,
    };
    match shoal_proto::encode(msg) {
        Ok(bytes) => conn.send(bytes::Bytes::from(bytes)).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "encoding a message for an agent failed");
            false
        }
    }
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>) {
    let _ = SinkExt::<bytes::Bytes>::close(conn).await;
}

async fn reject<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    code: RejectCode,
    message: &str,
) {
    send(
        conn,
        &ServerMsg::Rejected {
            code,
            message: message.to_string(),
        },
    )
    .await;
    close(conn).await;
}

async fn reject_version<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, got: u32) {
    let msg =
        format!("protocol version {got} is not supported; this server speaks {PROTOCOL_VERSION}");
    reject(conn, RejectCode::ProtocolVersion, &msg).await
}

async fn enroll<S: AsyncRead + AsyncWrite + Unpin>(
    app: &App,
    conn: &mut Conn<S>,
    peer: SocketAddr,
    token: &str,
    facts: shoal_types::HostFacts,
    labels: shoal_types::Labels,
) {
    let now = now_ms();
    let record = match app.store.find_token(&hash_secret(token)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "enrollment failed: storage error");
            return;
        }
    };
    let Some(record) = record.filter(|r| r.kind == TokenKind::Enroll && r.is_usable(now)) else {
        tracing::info!(%peer, "enrollment refused: invalid, expired or revoked token");
        return reject(
            conn,
            RejectCode::BadToken,
            "invalid, expired or revoked enrollment token",
        )
        .await;
    };
    let agent_id = new_secret("agent");
    let secret = new_secret("as");
    let host = NewHost {
        scope_id: record.scope_id,
        agent_id: agent_id.clone(),
        secret_hash: hash_secret(&secret),
        facts,
        agent_labels: labels,
        now,
    };
    match app.store.create_host(host).await {
        Ok(host) => {
            tracing::info!(host_id = host.id, hostname = %host.hostname, "agent enrolled");
            send(
                conn,
                &ServerMsg::Enrolled {
                    host_id: host.id,
                    agent_id,
                    secret,
                },
            )
            .await;
            close(conn).await;
        }
        Err(e) => tracing::warn!(%peer, error = %e, "enrollment failed: storage error"),
    }
}

/// Who an authenticated session is.
struct Session {
    host_id: HostId,
    generation: i64,
    /// Where peers fetch chunks from this agent; `None` without file distribution.
    peer_addr: Option<SocketAddr>,
}

async fn connected<S: AsyncRead + AsyncWrite + Unpin + Send>(
    app: App,
    mut conn: Conn<S>,
    session: Session,
    known_tasks: Vec<TaskKey>,
    shutdown: CancellationToken,
) {
    let Session {
        host_id,
        generation,
        peer_addr,
    } = session;
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(SESSION_QUEUE);
    let handle = SessionHandle {
        generation,
        tx,
        last_frame: Arc::new(AtomicI64::new(now_ms())),
        abnormal: Arc::new(AtomicBool::new(false)),
        peer_addr,
    };
    let last_frame = handle.last_frame.clone();
    // Only the registry holds the queue's sender: when a newer session replaces this one, or
    // the host is revoked, the sender is dropped and this loop ends.
    app.registry.register(host_id, handle);
    metrics::gauge!("shoal_agents_connected").set(app.registry.count() as f64);
    let heartbeat_secs = app.opts.heartbeat_secs;
    if !send(
        &mut conn,
        &ServerMsg::Welcome {
            host_id,
            generation,
            heartbeat_secs,
        },
    )
    .await
    {
        return disconnected(&app, host_id, generation).await;
    }
    tracing::debug!(host_id, generation, peer = ?peer_addr, "agent connected");
    if peer_addr.is_some() {
        // Identity first: the agent needs it before any file message.
        crate::transfer::host_link(&app, host_id, peer_addr).await;
    }
    reconcile(&app, host_id, peer_addr.is_some(), &known_tasks).await;

    let silence = Duration::from_secs(u64::from(heartbeat_secs) * 3);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            out = rx.recv() => {
                let Some(msg) = out else { break }; // replaced by a newer session
                if !send(&mut conn, &msg).await { break }
            }
            frame = tokio::time::timeout(silence, conn.next()) => {
                let frame = match frame {
                    Ok(Some(Ok(f))) => f,
                    Ok(Some(Err(e))) => {
                        tracing::debug!(host_id, error = %e, "agent link error");
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        tracing::info!(host_id, "agent silent for three heartbeats; dropping the session");
                        break;
                    }
                };
                last_frame.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
                let msg: AgentMsg = match shoal_proto::decode(&frame) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(host_id, error = %e, "malformed frame from agent; dropping the session");
                        break;
                    }
                };
                if !handle_msg(&app, &mut conn, host_id, msg).await { break }
            }
        }
    }
    disconnected(&app, host_id, generation).await;
}

/// Handles one message of an established session; false ends the session.
async fn handle_msg<S: AsyncRead + AsyncWrite + Unpin>(
    app: &App,
    conn: &mut Conn<S>,
    host_id: HostId,
    msg: AgentMsg,
) -> bool {
    let report = match msg {
        AgentMsg::Heartbeat { .. } => return send(conn, &ServerMsg::Heartbeat).await,
        AgentMsg::Started { key, at } => Report::Started { key, at },
        AgentMsg::Output {
            key,
            offset,
            stream,
            data,
        } => Report::Output {
            key,
            offset,
            stream,
            data,
        },
        AgentMsg::Finished { key, outcome } => Report::Finished { key, outcome },
        AgentMsg::Enroll { .. } | AgentMsg::Hello { .. } => {
            tracing::warn!(
                host_id,
                "agent repeated its handshake; dropping the session"
            );
            return false;
        }
        file => return crate::transfer::handle_agent_msg(app, host_id, file).await,
    };
    if report.key().host_id != host_id {
        tracing::warn!(
            host_id,
            "agent reported a task of another host; dropping the session"
        );
        return false;
    }
    app.writer.send(report).await
}

async fn disconnected(app: &App, host_id: HostId, generation: i64) {
    if !app.registry.unregister(host_id, generation) {
        return; // a newer session took over
    }
    metrics::gauge!("shoal_agents_connected").set(app.registry.count() as f64);
    tracing::debug!(host_id, generation, "agent disconnected");
    crate::transfer::host_link(app, host_id, None).await;
    let change = AgentStatusChange {
        host_id,
        status: AgentStatus::Offline,
        generation: Some(generation),
    };
    if let Err(e) = app.store.set_agent_status(&[change], now_ms()).await {
        tracing::warn!(host_id, error = %e, "recording an agent disconnection failed");
    }
}

/// After a (re)connection: tasks the agent still knows will report on their own (those of a
/// stopping step get their `Kill` again: one sent while the host had no session, or lost with
/// a dropped one, would never arrive); tasks never handed to an agent are sent now; tasks it
/// was running but no longer knows were lost with the agent's process and end as agent
/// abnormal. A file task for an agent that came back without file distribution ends as agent
/// abnormal too.
async fn reconcile(app: &App, host_id: HostId, peer_capable: bool, known: &[TaskKey]) {
    let known: HashSet<TaskKey> = known.iter().copied().collect();
    let mut lost = Vec::new();
    let mut too_old = Vec::new();
    for (key, task) in app.active.tasks_of_host(host_id) {
        if known.contains(&key) {
            let stopping = app
                .active
                .step(key.step_id)
                .is_some_and(|s| s.attempt == key.attempt && s.status == RunStatus::Stopping);
            if stopping {
                app.registry.send(host_id, ServerMsg::Kill { key });
            }
            continue;
        }
        if task.sent {
            lost.push(key);
            continue;
        }
        let Some(msg) = app.active.run_message(key, app.opts.output_cap) else {
            continue;
        };
        if matches!(msg, ServerMsg::Fetch { .. }) && !peer_capable {
            app.active.remove_task(&key);
            too_old.push(key);
        } else if app.registry.send(host_id, msg) {
            app.active.mark_sent(key);
        }
    }
    if !lost.is_empty() {
        let reason = "the agent restarted and no longer knows this task";
        app.writer.settle_lost(lost, reason).await;
    }
    if !too_old.is_empty() {
        app.writer
            .settle_lost(too_old, crate::transfer::TOO_OLD)
            .await;
    }
}
