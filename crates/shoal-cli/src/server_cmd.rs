//! `shoal server`: flags to `shoal_server::Options`, logging, signals, then the server library.

use crate::cli::ServerArgs;
use crate::exit::{Exit, usage};
use shoal_server::{ApiTls, Options};
use std::time::Duration;

pub fn options(args: ServerArgs) -> Options {
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
    o
}

pub async fn run(args: ServerArgs) -> anyhow::Result<Exit> {
    init_logging();
    let opts = options(args);
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
            Command::Server(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let d = Options::default();
        let o = options(server_args(&["server", "--data-dir", "/tmp/x"]));
        assert_eq!(o.listen, d.listen);
        assert_eq!(o.heartbeat_secs, d.heartbeat_secs);
        assert_eq!(o.output_cap, d.output_cap);
        assert_eq!(o.upload_max_bytes, d.upload_max_bytes);
        assert_eq!(o.upload_ttl, d.upload_ttl);
        assert_eq!(o.data_dir, std::path::PathBuf::from("/tmp/x"));
        let o = options(server_args(&[
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
        ]));
        assert_eq!(o.listen.port(), 1);
        assert_eq!(o.agent_listen.port(), 2);
        assert_eq!(o.agent_lost_grace, Duration::from_secs(7));
        assert_eq!(o.heartbeat_secs, 3);
        assert_eq!(o.output_cap, 2 << 20);
        assert_eq!(o.agent_names, vec!["ops.example"]);
        assert_eq!(o.upload_max_bytes, 10 << 20);
        assert_eq!(o.upload_ttl, Duration::from_secs(3600));
        assert!(o.validate().is_ok());
        let bad = options(server_args(&["server", "--upload-ttl-secs", "5"]));
        assert!(bad.validate().is_err());
        let bad = options(server_args(&["server", "--heartbeat-secs", "0"]));
        assert!(bad.validate().is_err());
    }
}
