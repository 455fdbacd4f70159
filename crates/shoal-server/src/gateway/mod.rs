//! The agent gateway: a TLS listener, one session task per connected agent, and the registry
//! of live sessions that the dispatcher and the result writer send through.

mod registry;
mod session;

pub use registry::Registry;

use crate::app::App;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Accepts agent connections until `shutdown` is cancelled. Each connection becomes a named
/// session task; a failed handshake only ends that connection.
pub async fn serve(
    app: App,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    // Bounds concurrent TLS handshakes so 10,000 agents reconnecting at once do not starve
    // established sessions of CPU.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(256));
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
        let _ = tcp.set_nodelay(true);
        let (app, acceptor, handshakes, shutdown) = (
            app.clone(),
            acceptor.clone(),
            handshakes.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let Ok(permit) = handshakes.acquire_owned().await else {
                return;
            };
            let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            drop(permit);
            match tls {
                Ok(Ok(stream)) => session::run(app, stream, peer, shutdown).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "agent tls handshake failed"),
                Err(_) => tracing::debug!(%peer, "agent tls handshake timed out"),
            }
        });
    }
}
