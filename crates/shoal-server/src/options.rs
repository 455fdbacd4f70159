//! Server options: one typed tree, filled from flags by the CLI, validated before use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The largest `--upload-max-bytes` accepted.
const UPLOAD_MAX_LIMIT: u64 = 16 << 40;

#[derive(Clone, Debug)]
pub struct Options {
    /// Holds the SQLite database, the dev CA and server certificate, and the bootstrap tokens.
    pub data_dir: PathBuf,
    /// `postgres://...` selects PostgreSQL; `None` uses `data_dir/shoal.db`.
    pub database_url: Option<String>,
    /// REST API and console.
    pub listen: SocketAddr,
    /// Agent TLS endpoint.
    pub agent_listen: SocketAddr,
    /// Extra names (DNS or IP) the server certificate is valid for, besides localhost and the
    /// host's own addresses.
    pub agent_names: Vec<String>,
    /// How long the running tasks of a disconnected agent wait for it to come back before they
    /// end as "agent abnormal".
    pub agent_lost_grace: Duration,
    /// Agents heartbeat at this interval; a session silent for three intervals is dropped.
    pub heartbeat_secs: u32,
    /// Per-host, per-step output cap in bytes.
    pub output_cap: u64,
    /// Whether and how the REST API and console are served over TLS.
    pub api_tls: ApiTls,
    /// Largest file accepted by `POST /api/v1/uploads`, in bytes.
    pub upload_max_bytes: u64,
    /// Uploads not used for this long (uploaded again, or named by a new transfer) and not
    /// referenced by a running step are deleted.
    pub upload_ttl: Duration,
    /// Open REST API connections allowed per client address (0: no limit).
    pub api_max_conns_per_ip: usize,
    /// A console session unused for this long ends.
    pub session_idle: Duration,
    /// A console session ends this long after sign-in, used or not.
    pub session_max: Duration,
    /// Audit records older than this many days are deleted.
    pub audit_retention_days: u32,
    /// Single sign-on through an OpenID Connect provider; `None`: sign-in by password only.
    pub oidc: Option<crate::oidc::OidcOptions>,
}

/// TLS for the REST API and console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ApiTls {
    /// Plain HTTP (fine on loopback; put a TLS proxy in front otherwise).
    #[default]
    Off,
    /// HTTPS with a certificate issued by the server's own CA (`ca.pem` in the data directory),
    /// valid for localhost, the host's addresses and `--agent-name`s.
    SelfIssued,
    /// HTTPS with the operator's certificate chain and key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: PathBuf::from("shoal-data"),
            database_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8680)),
            agent_listen: SocketAddr::from(([0, 0, 0, 0], 8681)),
            agent_names: Vec::new(),
            agent_lost_grace: Duration::from_secs(60),
            heartbeat_secs: 5,
            output_cap: shoal_types::limits::OUTPUT_CAP_DEFAULT,
            api_tls: ApiTls::Off,
            upload_max_bytes: shoal_types::files::limits::UPLOAD_MAX_DEFAULT,
            upload_ttl: Duration::from_secs(7 * 24 * 3600),
            api_max_conns_per_ip: 256,
            session_idle: Duration::from_secs(2 * 3600),
            session_max: Duration::from_secs(24 * 3600),
            audit_retention_days: 365,
            oidc: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=300).contains(&self.heartbeat_secs),
            "--heartbeat-secs must be between 1 and 300"
        );
        anyhow::ensure!(
            self.agent_lost_grace >= Duration::from_secs(1),
            "--agent-lost-grace must be at least 1 second"
        );
        anyhow::ensure!(
            (1024..=1024 * 1024 * 1024).contains(&self.output_cap),
            "--output-cap must be between 1 KiB and 1 GiB"
        );
        anyhow::ensure!(
            (1..=UPLOAD_MAX_LIMIT).contains(&self.upload_max_bytes),
            "--upload-max-bytes must be between 1 byte and 16 TiB"
        );
        anyhow::ensure!(
            self.upload_ttl >= Duration::from_secs(60),
            "--upload-ttl-secs must be at least 60"
        );
        anyhow::ensure!(
            self.session_idle >= Duration::from_secs(60) && self.session_idle <= self.session_max,
            "--session-idle-mins must be at least 1 and at most --session-max-hours"
        );
        anyhow::ensure!(
            self.session_max <= Duration::from_secs(90 * 24 * 3600),
            "--session-max-hours must be at most 2160 (90 days)"
        );
        anyhow::ensure!(
            (1..=36_500).contains(&self.audit_retention_days),
            "--audit-retention-days must be between 1 and 36500"
        );
        if let ApiTls::Files { cert, key } = &self.api_tls {
            for (what, path) in [("--tls-cert", cert), ("--tls-key", key)] {
                anyhow::ensure!(
                    path.is_file(),
                    "{what} {} is not a readable file",
                    path.display()
                );
            }
        }
        if let Some(url) = &self.database_url {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "--database-url must be a postgres:// URL (SQLite is the default and needs no URL)"
            );
        }
        if let Some(oidc) = &self.oidc {
            oidc.validate()?;
        }
        Ok(())
    }

    pub fn ca_cert_path(&self) -> PathBuf {
        self.data_dir.join("ca.pem")
    }
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }
    /// The built-in admin's generated password, written at first start.
    pub fn admin_password_path(&self) -> PathBuf {
        self.data_dir.join("admin.password")
    }
    pub fn enroll_token_path(&self) -> PathBuf {
        self.data_dir.join("enroll.token")
    }
}
