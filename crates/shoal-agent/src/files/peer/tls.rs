//! Peer TLS: configs for both ends of a peer link from the PEM documents the server hands out
//! (its CA, and this agent's peer certificate and key), and the peer identity a certificate
//! proves: exactly one DNS SAN `host-<id>.peer.shoal`.
//!
//! Both configs are TLS 1.3 only and trust only the server's CA; the server config requires a
//! client certificate, so every peer link is mutually authenticated.

use super::PeerError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// The suffix of every peer certificate's name.
pub const PEER_DOMAIN: &str = "peer.shoal";

/// The DNS name a host's peer certificate carries: `host-<id>.peer.shoal`.
pub fn peer_name(host_id: i64) -> String {
    format!("host-{host_id}.{PEER_DOMAIN}")
}

/// The host id in a peer name, if it is one (canonical digits, positive).
pub fn parse_peer_name(name: &str) -> Option<i64> {
    let digits = name
        .strip_prefix("host-")?
        .strip_suffix(PEER_DOMAIN)?
        .strip_suffix('.')?;
    let id: i64 = digits.parse().ok()?;
    (id > 0 && id.to_string() == digits).then_some(id)
}

/// The server name a client checks the serving peer's certificate against.
pub fn server_name(host_id: i64) -> Result<ServerName<'static>, PeerError> {
    ServerName::try_from(peer_name(host_id))
        .map_err(|e| PeerError::Config(format!("peer name for host {host_id}: {e}")))
}

/// The host a (chain-verified) end-entity certificate belongs to: its only peer-name SAN.
/// `None` for a certificate without one, or with names of several hosts.
pub fn host_id_of(cert: &CertificateDer<'_>) -> Option<i64> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let mut ids = cert.valid_dns_names().filter_map(parse_peer_name);
    let id = ids.next()?;
    ids.all(|other| other == id).then_some(id)
}

/// A server config: presents `cert_pem`/`key_pem`, requires a client certificate from the CA.
pub fn server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, PeerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots(ca_pem)?);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| PeerError::Config(format!("client verifier: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert_pem)?, key(key_pem)?)
        .map_err(config_err)?;
    Ok(Arc::new(config))
}

/// A client config: trusts only the CA, presents `cert_pem`/`key_pem`.
pub fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ClientConfig>, PeerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(certs(cert_pem)?, key(key_pem)?)
        .map_err(config_err)?;
    Ok(Arc::new(config))
}

fn config_err(e: rustls::Error) -> PeerError {
    PeerError::Config(e.to_string())
}

fn roots(ca_pem: &[u8]) -> Result<rustls::RootCertStore, PeerError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca_pem)? {
        roots.add(cert).map_err(config_err)?;
    }
    Ok(roots)
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PeerError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PeerError::Config(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(PeerError::Config("no certificate in PEM".into()));
    }
    Ok(certs)
}

fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, PeerError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| PeerError::Config(format!("key PEM: {e}")))?
        .ok_or_else(|| PeerError::Config("no private key in PEM".into()))
}

#[cfg(test)]
mod tests {
    // Pins the peer-name grammar (only canonical positive ids are accepted).
    use super::*;

    #[test]
    fn peer_names_round_trip_and_reject_lookalikes() {
        assert_eq!(peer_name(12), "host-12.peer.shoal");
        assert_eq!(parse_peer_name(&peer_name(12)), Some(12));
        for bad in [
            "host-012.peer.shoal",
            "host-0.peer.shoal",
            "host--1.peer.shoal",
            "host-+1.peer.shoal",
            "host-1.peer.shoal.evil",
            "host-1xpeer.shoal",
            "host-.peer.shoal",
            "x.host-1.peer.shoal",
            "host-1.other",
        ] {
            assert_eq!(parse_peer_name(bad), None, "{bad}");
        }
    }
}
