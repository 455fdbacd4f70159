//! TLS for the agent endpoint. On first start the server creates its own CA in the data
//! directory (`ca.pem`, `ca.key`, mode 0600 for the key); agents trust that CA. On every start it
//! issues a fresh server certificate from that CA for localhost, the host's addresses and the
//! configured names, so adding `--agent-name` takes effect on restart.

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use std::sync::Arc;

const CA_NAME: &str = "Shoal agent CA";

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// The server's CA: signs the agent endpoint's certificate and the agents' peer certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// Loads the CA from the data directory, creating CA and key on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Ca> {
        let ca_key_path = data_dir.join("ca.key");
        let ca_pem_path = data_dir.join("ca.pem");
        let key = if ca_key_path.exists() && ca_pem_path.exists() {
            let pem = std::fs::read_to_string(&ca_key_path)
                .with_context(|| format!("reading {}", ca_key_path.display()))?;
            KeyPair::from_pem(&pem).context("parsing the CA key")?
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            crate::fsutil::write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            crate::fsutil::write_atomic(&ca_pem_path, cert.pem().as_bytes(), 0o600)?;
            key
        };
        // Re-signing the same subject with the same key yields an issuer that verifies against
        // the ca.pem agents already trust.
        let cert = ca_params()?.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// A throwaway CA (tests).
    #[cfg(test)]
    pub fn ephemeral() -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// The CA certificate, PEM (what agents trust).
    #[cfg(test)]
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A fresh peer identity for `host_id`: a new key and a certificate for
    /// `host-<id>.peer.shoal`, usable as TLS server and client, valid for [`PEER_CERT_DAYS`].
    /// Returns `(cert_pem, key_pem)`; the key is a secret and must never be logged.
    pub fn peer_identity(&self, host_id: shoal_types::HostId) -> anyhow::Result<(String, String)> {
        let name = format!("host-{host_id}.peer.shoal");
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let day_ms = 86_400_000;
        let now = crate::clock::now_ms();
        let ymd = |ms: i64| {
            let t = shoal_plan::plan::UtcTime::from_unix_ms(ms);
            rcgen::date_time_ymd(t.year, t.month, t.day)
        };
        params.not_before = ymd(now - day_ms);
        params.not_after = ymd(now + PEER_CERT_DAYS * day_ms);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Validity of a peer certificate; agents get a fresh one on every connection.
pub const PEER_CERT_DAYS: i64 = 30;

/// The rustls server config for the agent listener: a fresh certificate from `ca` for
/// localhost, this host's addresses and the configured names.
pub fn server_config(ca: &Ca, names: &[String]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut all_names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    all_names.extend(local_addresses());
    all_names.extend(names.iter().cloned());
    all_names.sort();
    all_names.dedup();
    let mut params = CertificateParams::new(all_names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "shoal server");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.cert, &ca.key)?;

    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    Ok(Arc::new(config))
}

/// Non-loopback addresses of this host, so agents can dial it by IP.
fn local_addresses() -> Vec<String> {
    let Ok(out) = std::process::Command::new("hostname").arg("-I").output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string)
        .collect()
}

/// The TLS configuration of the REST API, if it is served over TLS: the agent endpoint's
/// certificate (issued by the server's CA) or the operator's PEM files, with HTTP/2 offered.
pub fn api_config(
    api_tls: &crate::options::ApiTls,
    agent: &Arc<rustls::ServerConfig>,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    use crate::options::ApiTls;
    let mut config = match api_tls {
        ApiTls::Off => return Ok(None),
        ApiTls::SelfIssued => (**agent).clone(),
        ApiTls::Files { cert, key } => {
            let open = |p: &Path| {
                std::fs::File::open(p)
                    .map(std::io::BufReader::new)
                    .with_context(|| format!("opening {}", p.display()))
            };
            let chain = rustls_pemfile::certs(&mut open(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("reading certificates from {}", cert.display()))?;
            anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
            let key_der = rustls_pemfile::private_key(&mut open(key)?)
                .with_context(|| format!("reading the key from {}", key.display()))?
                .with_context(|| format!("{} holds no private key", key.display()))?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
                .context("the API certificate and key do not match")?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
