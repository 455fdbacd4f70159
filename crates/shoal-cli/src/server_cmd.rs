//! `shoal server`: flags to `shoal_server::Options`, logging, signals, then the server library.

use crate::cli::ServerArgs;
use crate::exit::{Exit, usage};
use clap::Args;
use shoal_server::oidc::{GroupRole, OidcOptions};
use shoal_server::{ApiTls, Options};
use std::path::PathBuf;
use std::time::Duration;

/// Single sign-on through an OpenID Connect provider (all optional; --oidc-issuer turns it on).
#[derive(Debug, Args)]
#[command(next_help_heading = "Single sign-on (OpenID Connect)")]
pub struct OidcArgs {
    /// The provider's issuer URL (its discovery document is ISSUER/.well-known/openid-configuration).
    #[arg(long, value_name = "URL", requires_all = ["oidc_client_id", "oidc_redirect_url"])]
    pub oidc_issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long, value_name = "ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// A file holding the client secret (never pass secrets on the command line); omit for a
    /// public client.
    #[arg(long, value_name = "PATH", requires = "oidc_issuer")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Where the provider sends the browser back, as registered at the provider.
    #[arg(long, value_name = "URL", requires = "oidc_issuer")]
    pub oidc_redirect_url: Option<String>,
    /// A scope to ask for besides openid (repeatable) [default: profile, email].
    #[arg(long = "oidc-scope", value_name = "SCOPE", requires = "oidc_issuer")]
    pub oidc_scopes: Vec<String>,
    /// The claim that lists the user's groups [default: groups].
    #[arg(long, value_name = "CLAIM", requires = "oidc_issuer")]
    pub oidc_groups_claim: Option<String>,
    /// The claim that names the user (else email, else the subject) [default: preferred_username].
    #[arg(long, value_name = "CLAIM", requires = "oidc_issuer")]
    pub oidc_username_claim: Option<String>,
    /// The sign-in button's text [default: SSO].
    #[arg(long, value_name = "TEXT", requires = "oidc_issuer")]
    pub oidc_label: Option<String>,
    /// What members of a provider group get (repeatable): GROUP=admin, GROUP=ROLE@SCOPE or
    /// GROUP=ROLE@SCOPE:SELECTOR, e.g. ops=operator@default:env!=prod.
    #[arg(
        long = "oidc-group-role",
        value_name = "GROUP=GRANT",
        value_parser = GroupRole::parse,
        requires = "oidc_issuer"
    )]
    pub oidc_group_roles: Vec<GroupRole>,
}

/// The single sign-on options, reading the client secret from its file.
fn oidc_options(a: OidcArgs) -> anyhow::Result<Option<OidcOptions>> {
    let Some(issuer) = a.oidc_issuer else {
        return Ok(None);
    };
    let d = OidcOptions::default();
    let client_secret = match a.oidc_client_secret_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                usage(format!(
                    "--oidc-client-secret-file {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        None => None,
    };
    Ok(Some(OidcOptions {
        issuer,
        client_id: a.oidc_client_id.unwrap_or_default(),
        client_secret,
        redirect_url: a.oidc_redirect_url.unwrap_or_default(),
        scopes: if a.oidc_scopes.is_empty() {
            d.scopes
        } else {
            a.oidc_scopes
        },
        groups_claim: a.oidc_groups_claim.unwrap_or(d.groups_claim),
        username_claim: a.oidc_username_claim.unwrap_or(d.username_claim),
        label: a.oidc_label.unwrap_or(d.label),
        group_roles: a.oidc_group_roles,
    }))
}

/// The server's options from its flags; fails when a file a flag names cannot be read.
pub fn options(args: ServerArgs) -> anyhow::Result<Options> {
    let mut o = Options::default();
    if let Some(d) = args.data_dir {
        o.data_dir = d;
    }
    o.database_url = args.database_url.filter(|u| !u.is_empty());
    if let Some(a) = args.listen {
        o.listen = a;
    }
    if let Some(a) = args.agent_listen {
        o.agent_listen = a;
    }
    o.agent_names = args.agent_names;
    if let Some(s) = args.agent_lost_grace {
        o.agent_lost_grace = Duration::from_secs(s);
    }
    if let Some(h) = args.heartbeat_secs {
        o.heartbeat_secs = h;
    }
    if let Some(c) = args.output_cap {
        o.output_cap = c;
    }
    if let Some(b) = args.upload_max_bytes {
        o.upload_max_bytes = b;
    }
    if let Some(s) = args.upload_ttl_secs {
        o.upload_ttl = Duration::from_secs(s);
    }
    if let Some(n) = args.api_max_conns_per_ip {
        o.api_max_conns_per_ip = n;
    }
    if let Some(m) = args.session_idle_mins {
        o.session_idle = Duration::from_secs(m.saturating_mul(60));
    }
    if let Some(h) = args.session_max_hours {
        o.session_max = Duration::from_secs(h.saturating_mul(3600));
    }
    if let Some(d) = args.audit_retention_days {
        o.audit_retention_days = d;
    }
    o.api_tls = match (args.api_tls, args.tls_cert, args.tls_key) {
        (_, Some(cert), Some(key)) => ApiTls::Files { cert, key },
        (true, _, _) => ApiTls::SelfIssued,
        _ => ApiTls::Off,
    };
    o.oidc = oidc_options(args.oidc)?;
    Ok(o)
}

pub async fn run(args: ServerArgs) -> anyhow::Result<Exit> {
    init_logging();
    let opts = options(args)?;
    opts.validate().map_err(|e| usage(format!("{e:#}")))?;
    shoal_server::run(opts, shutdown_signal()).await?;
    Ok(Exit::Ok)
}

/// `SHOAL_LOG` (an `EnvFilter` directive, e.g. `info,shoal_server=debug`), default `info`, to
/// stderr.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("SHOAL_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("shoal: warning: ignoring SHOAL_LOG={spec:?}: {e}");
            EnvFilter::new("info")
        }),
        Err(_) => EnvFilter::new("info"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    //! Pins the flag-to-Options mapping: unset flags keep the library's defaults.
    use super::*;
    use crate::cli::Command;

    fn server_args(a: &[&str]) -> ServerArgs {
        match crate::test_args::command(a) {
            Command::Server(s) => *s,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The options of `shoal ARGS...`, which must parse and map.
    fn opts(a: &[&str]) -> Options {
        options(server_args(a)).expect("options")
    }

    #[test]
    fn defaults_and_overrides() {
        let d = Options::default();
        let o = opts(&["server", "--data-dir", "/tmp/x"]);
        assert_eq!(o.listen, d.listen);
        assert_eq!(o.heartbeat_secs, d.heartbeat_secs);
        assert_eq!(o.output_cap, d.output_cap);
        assert_eq!(o.upload_max_bytes, d.upload_max_bytes);
        assert_eq!(o.upload_ttl, d.upload_ttl);
        assert_eq!(o.data_dir, std::path::PathBuf::from("/tmp/x"));
        let o = opts(&[
            "server",
            "--listen",
            "127.0.0.1:1",
            "--agent-listen",
            "127.0.0.1:2",
            "--agent-lost-grace",
            "7",
            "--heartbeat-secs",
            "3",
            "--output-cap",
            "2MiB",
            "--agent-name",
            "ops.example",
            "--upload-max-bytes",
            "10MiB",
            "--upload-ttl-secs",
            "3600",
        ]);
        assert_eq!(o.listen.port(), 1);
        assert_eq!(o.agent_listen.port(), 2);
        assert_eq!(o.agent_lost_grace, Duration::from_secs(7));
        assert_eq!(o.heartbeat_secs, 3);
        assert_eq!(o.output_cap, 2 << 20);
        assert_eq!(o.agent_names, vec!["ops.example"]);
        assert_eq!(o.upload_max_bytes, 10 << 20);
        assert_eq!(o.upload_ttl, Duration::from_secs(3600));
        assert!(o.validate().is_ok());
        let bad = opts(&["server", "--upload-ttl-secs", "5"]);
        assert!(bad.validate().is_err());
        let bad = opts(&["server", "--heartbeat-secs", "0"]);
        assert!(bad.validate().is_err());
        assert_eq!(o.oidc, None, "no --oidc-issuer, no single sign-on");
    }

    #[test]
    fn oidc_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").expect("write secret");
        let secret = secret.to_str().expect("utf-8 path");
        let base = [
            "server",
            "--oidc-issuer",
            "https://id.example",
            "--oidc-client-id",
            "shoal",
            "--oidc-redirect-url",
            "https://shoal.example/callback",
        ];
        let o = opts(&base).oidc.expect("oidc options");
        let d = OidcOptions::default();
        assert_eq!(
            (o.scopes, o.groups_claim, o.username_claim, o.label),
            (d.scopes, d.groups_claim, d.username_claim, d.label)
        );
        assert_eq!(o.client_secret, None);

        let mut all = base.to_vec();
        all.extend([
            "--oidc-client-secret-file",
            secret,
            "--oidc-scope",
            "profile",
            "--oidc-scope",
            "groups",
            "--oidc-groups-claim",
            "roles",
            "--oidc-username-claim",
            "email",
            "--oidc-label",
            "Company SSO",
            "--oidc-group-role",
            "ops=operator@default:env!=prod",
            "--oidc-group-role",
            "admins=admin",
        ]);
        let o = opts(&all);
        assert!(o.validate().is_ok());
        let oidc = o.oidc.expect("oidc options");
        assert_eq!(oidc.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(oidc.scopes, vec!["profile", "groups"]);
        assert_eq!(
            (oidc.groups_claim.as_str(), oidc.username_claim.as_str()),
            ("roles", "email")
        );
        assert_eq!(oidc.label, "Company SSO");
        assert_eq!(
            oidc.group_roles,
            vec![
                GroupRole::parse("ops=operator@default:env!=prod").expect("parses"),
                GroupRole::parse("admins=admin").expect("parses"),
            ]
        );

        // Each mistake is refused with a message that names it.
        let refused = |args: &[&str], part: &str| {
            let e = crate::test_args::parse(args).expect_err(part).to_string();
            assert!(e.contains(part), "{e}");
        };
        let mut bad_role = base.to_vec();
        bad_role.extend(["--oidc-group-role", "ops=king@default"]);
        refused(&bad_role, "unknown role \"king\"");
        refused(&["server", "--oidc-client-id", "x"], "--oidc-issuer");
        refused(
            &["server", "--oidc-issuer", "https://id.example"],
            "--oidc-client-id",
        );
        refused(
            &["server", "--oidc-client-secret", "x"],
            "--oidc-client-secret",
        );

        let mut missing = base.to_vec();
        missing.extend(["--oidc-client-secret-file", "/nonexistent/secret"]);
        let e = options(server_args(&missing)).expect_err("unreadable secret file");
        assert!(e.to_string().contains("--oidc-client-secret-file"), "{e}");
        let mut http = base.to_vec();
        http[2] = "http://id.example";
        let e = opts(&http).validate().expect_err("plain http issuer");
        assert!(e.to_string().contains("--oidc-issuer"), "{e}");
    }
}
