//! Serves the REST API and console over plain HTTP/1.1 or TLS (HTTP/1.1 and HTTP/2 by ALPN),
//! with the limits a public endpoint needs before any authentication: at most
//! `max_conns_per_ip` open connections per client address (the next one gets a 503 and is
//! closed), a deadline for the TLS handshake, a deadline for each request's headers (a client
//! that sends a partial request line is dropped, not kept for minutes), and a graceful drain on
//! shutdown.

use crate::per_address::PerAddress;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client has to send a request's headers (also the idle keep-alive limit).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests (event streams included) get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// More headers than the API accepts, so that the API's own check (and its JSON answer) sees
/// requests with too many headers rather than hyper's bare 431.
const HYPER_MAX_HEADERS: usize = 256;

/// The answer to a connection over its address's limit, in the API's error format; written as
/// is, then the connection is closed.
fn too_many() -> Vec<u8> {
    let body = r#"{"error":{"code":"UNAVAILABLE","message":"too many open connections from this address"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub struct Limits {
    /// Open connections allowed per client address; 0 means no limit.
    pub max_conns_per_ip: usize,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and gives
/// open requests [`DRAIN_TIMEOUT`] to finish.
/// The API endpoint component.
pub struct HttpServer {
    pub listener: TcpListener,
    pub router: Router,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
}

impl HttpServer {
    pub async fn run(self, cancel: CancellationToken) {
        serve(self.listener, self.router, self.tls, self.limits, cancel).await
    }
}

async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let per_ip = PerAddress::new(limits.max_conns_per_ip, 0);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.take(peer.ip()) else {
            tracing::debug!(%peer, "too many API connections from this address");
            let _ = tcp.try_write(&too_many());
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // Handlers see the client's address (audit records, sign-in throttling).
        let router = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let (acceptor, watcher) = (acceptor.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_http1(TokioIo::new(tcp), router, watcher).await,
                Some(acceptor) => serve_tls(tcp, acceptor, router, watcher).await,
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("open API requests did not finish in time; closing them");
    }
}

async fn serve_tls(tcp: TcpStream, acceptor: TlsAcceptor, router: Router, watcher: Watcher) {
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(error = %e, "api tls handshake failed"),
        Err(_) => return tracing::debug!("api tls handshake timed out"),
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    if h2 {
        let service = TowerToHyperService::new(router);
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(20)))
            .serve_connection(io, service);
        let _ = watcher.watch(conn).await;
    } else {
        serve_http1(io, router, watcher).await;
    }
}

async fn serve_http1<I>(io: I, router: Router, watcher: Watcher)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(HYPER_MAX_HEADERS)
        .serve_connection(io, service);
    let _ = watcher.watch(conn).await;
}
