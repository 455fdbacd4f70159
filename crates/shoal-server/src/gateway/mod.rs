//! The agent gateway: a TLS listener, one session task per connected agent, and the registry
//! of live sessions that the dispatcher and the result writer send through.

mod registry;
mod session;

pub use registry::Registry;

use crate::app::App;
use crate::per_address::PerAddress;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a connection may take from accept to its first frame (the agent's hello):
/// connections that have not authenticated by then are closed.
const PRE_AUTH_DEADLINE: Duration = Duration::from_secs(5);
/// Connections not yet authenticated, per client address and in all. Past either, a new
/// connection is closed at once (an agent retries with back-off).
const PRE_AUTH_PER_ADDRESS: usize = 256;
const PRE_AUTH_TOTAL: usize = 4096;
/// Concurrent TLS handshakes (the CPU-heavy part), so 10,000 agents reconnecting at once do
/// not starve established sessions.
const HANDSHAKES: usize = 256;

/// Accepts agent connections until `shutdown` is cancelled. Each connection becomes a named
/// session task; a failed handshake only ends that connection.
///
/// Before authentication a connection holds only a place in the per-address table: it takes
/// a handshake slot once its first bytes arrive, so idle connections (a flood that never sends
/// a ClientHello) cannot hold the slots honest agents need.
/// The agent endpoint component.
pub struct Gateway {
    app: App,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
}

impl Gateway {
    pub fn new(app: App, listener: TcpListener, tls: Arc<rustls::ServerConfig>) -> Gateway {
        Gateway { app, listener, tls }
    }

    pub async fn run(self, cancel: CancellationToken) {
        serve(self.app, self.listener, self.tls, cancel).await
    }
}

async fn serve(
    app: App,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    let pre_auth = PerAddress::new(PRE_AUTH_PER_ADDRESS, PRE_AUTH_TOTAL);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an agent connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = pre_auth.take(peer.ip()) else {
            tracing::debug!(%peer, "too many unauthenticated agent connections; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, acceptor, handshakes, shutdown) = (
            app.clone(),
            acceptor.clone(),
            handshakes.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            match pre_auth_tls(tcp, &acceptor, &handshakes).await {
                Ok((stream, deadline)) => {
                    session::run(app, stream, peer, slot, deadline, shutdown).await;
                }
                Err(e) => tracing::debug!(%peer, error = %e, "agent tls handshake failed"),
            }
        });
    }
}

/// Waits (without a handshake slot) for the first bytes, then runs the TLS handshake in a
/// slot. Each phase has [`PRE_AUTH_DEADLINE`]; the deadline returned is the one the agent's
/// first frame must meet.
async fn pre_auth_tls(
    tcp: tokio::net::TcpStream,
    acceptor: &TlsAcceptor,
    handshakes: &Arc<tokio::sync::Semaphore>,
) -> std::io::Result<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    tokio::time::Instant,
)> {
    let timed_out =
        |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_string());
    // `peek`, not `readable`: readiness may be reported before any byte has arrived.
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(PRE_AUTH_DEADLINE, tcp.peek(&mut first))
        .await
        .map_err(|_| timed_out("no client hello"))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let _permit = handshakes.acquire().await.map_err(std::io::Error::other)?;
    let deadline = tokio::time::Instant::now() + PRE_AUTH_DEADLINE;
    let stream = tokio::time::timeout_at(deadline, acceptor.accept(tcp))
        .await
        .map_err(|_| timed_out("tls handshake timed out"))??;
    Ok((stream, deadline))
}
