//! Command line and config file, merged into one validated [`Options`] tree.
//!
//! Layers: defaults < config file (`--config FILE`, JSON, unknown keys are errors) < environment
//! (`SHOAL_ENROLL_TOKEN`) < flags. Secrets (the enrollment token) never appear in `Debug`.

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use shoal_types::Labels;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "shoal-agent",
    version,
    about = "The Shoal agent: runs scripts for the shoal server."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run N simulated agents (no-fork executor, in-memory spool) in one process, for benchmarks.
    Simulate(SimArgs),
}

/// Connection flags shared by the agent and the simulator.
#[derive(Debug, Default, Args)]
pub struct ConnArgs {
    /// Server agent endpoint, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// PEM file with the CA certificate(s) the server's certificate must chain to.
    #[arg(long, value_name = "PATH")]
    pub ca: Option<PathBuf>,
    /// TLS name to verify the server certificate against [default: the host part of --server].
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Directory for the identity, the spool and script files.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// File holding the enrollment token (used only when there is no identity yet); wins over
    /// --enroll-token.
    #[arg(long, value_name = "PATH")]
    pub enroll_token_file: Option<PathBuf>,
    /// Enrollment token (prefer --enroll-token-file; command lines are visible to other users).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHOAL_ENROLL_TOKEN",
        hide_env_values = true
    )]
    pub enroll_token: Option<String>,
}

#[derive(Debug, Default, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// JSON config file with the same keys as the flags (snake_case); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A label reported to the server, KEY=VALUE; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Local upper bound on stored output per task, in bytes (the server's cap applies too).
    #[arg(long, value_name = "BYTES")]
    pub output_cap: Option<u64>,
    /// Address the peer server (chunks for other agents, mutual TLS) listens on
    /// [default: 0.0.0.0:0, any free port, announced to the server]. Set a fixed port when a
    /// firewall must let peers in.
    #[arg(long, value_name = "ADDR")]
    pub peer_listen: Option<std::net::SocketAddr>,
    /// Bound of the chunk cache under STATE_DIR/chunks, in MiB [default: 4096].
    #[arg(long, value_name = "MIB")]
    pub chunk_cache_mb: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Number of simulated agents.
    #[arg(long)]
    pub count: u32,
    /// How many sessions may be connecting (TLS handshake + hello) at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency_connect: usize,
}

/// The config file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub ca: Option<PathBuf>,
    pub server_name: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub enroll_token_file: Option<PathBuf>,
    pub enroll_token: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    pub output_cap: Option<u64>,
    pub peer_listen: Option<std::net::SocketAddr>,
    pub chunk_cache_mb: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| Error::Parse {
            path: path.into(),
            source,
        })
    }
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the enrollment token comes from. A file is read when the token is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Inline(Secret),
}

impl TokenSource {
    pub fn read(&self) -> std::io::Result<Secret> {
        match self {
            TokenSource::Inline(s) => Ok(s.clone()),
            TokenSource::File(p) => Ok(Secret(std::fs::read_to_string(p)?.trim().to_owned())),
        }
    }
}

/// Where and how to connect; shared by the agent and the simulator.
#[derive(Clone, Debug)]
pub struct Conn {
    /// `HOST:PORT`.
    pub server: String,
    pub server_name: String,
    pub ca: PathBuf,
    pub state_dir: PathBuf,
    pub enroll_token: Option<TokenSource>,
}

/// The validated agent configuration.
#[derive(Clone, Debug)]
pub struct Options {
    pub conn: Conn,
    pub labels: Labels,
    /// Local cap on stored output per task; the effective cap is the smaller of this and the
    /// server's.
    pub output_cap: Option<u64>,
    /// File distribution: the peer listener and the chunk cache.
    pub files: crate::files::runtime::Options,
}

/// Default `--peer-listen`: every address, any free port.
pub const PEER_LISTEN_DEFAULT: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
/// Default `--chunk-cache-mb`.
pub const CHUNK_CACHE_MB_DEFAULT: u64 = 4096;

impl Default for crate::files::runtime::Options {
    fn default() -> Self {
        crate::files::runtime::Options {
            peer_listen: PEER_LISTEN_DEFAULT,
            cache_bytes: CHUNK_CACHE_MB_DEFAULT << 20,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub conn: Conn,
    pub count: u32,
    pub concurrency_connect: usize,
}

impl Options {
    pub fn from_args(args: AgentArgs) -> Result<Options, Error> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Options::merge(args, file)
    }

    /// Flags win over the file; labels merge key by key with the flag's value winning.
    pub fn merge(args: AgentArgs, file: FileConfig) -> Result<Options, Error> {
        let mut labels = file.labels.clone();
        for label in &args.labels {
            let (k, v) = parse_label(label)?;
            labels.insert(k, v);
        }
        let output_cap = args.output_cap.or(file.output_cap);
        if output_cap == Some(0) {
            return Err(Error::Invalid("--output-cap must be greater than 0".into()));
        }
        let chunk_cache_mb = args
            .chunk_cache_mb
            .or(file.chunk_cache_mb)
            .unwrap_or(CHUNK_CACHE_MB_DEFAULT);
        if chunk_cache_mb == 0 {
            return Err(Error::Invalid(
                "--chunk-cache-mb must be greater than 0".into(),
            ));
        }
        let files = crate::files::runtime::Options {
            peer_listen: args
                .peer_listen
                .or(file.peer_listen)
                .unwrap_or(PEER_LISTEN_DEFAULT),
            cache_bytes: chunk_cache_mb.saturating_mul(1 << 20),
        };
        Ok(Options {
            conn: Conn::merge(args.conn, file)?,
            labels,
            output_cap,
            files,
        })
    }
}

impl SimOptions {
    pub fn from_args(args: SimArgs) -> Result<SimOptions, Error> {
        if args.count == 0 {
            return Err(Error::Invalid("--count must be at least 1".into()));
        }
        Ok(SimOptions {
            conn: Conn::merge(args.conn, FileConfig::default())?,
            count: args.count,
            concurrency_connect: args.concurrency_connect.max(1),
        })
    }
}

impl Conn {
    fn merge(args: ConnArgs, file: FileConfig) -> Result<Conn, Error> {
        let missing = |flag: &str| Error::Invalid(format!("--{flag} is required (flag or config)"));
        let server = args
            .server
            .or(file.server)
            .ok_or_else(|| missing("server"))?;
        let host = server_host(&server)?;
        let server_name = args.server_name.or(file.server_name).unwrap_or(host);
        let ca = args.ca.or(file.ca).ok_or_else(|| missing("ca"))?;
        let state_dir = args
            .state_dir
            .or(file.state_dir)
            .ok_or_else(|| missing("state-dir"))?;
        // Scripts run in other working directories, so every path derived from the state
        // directory must be absolute.
        let state_dir = std::path::absolute(&state_dir)
            .map_err(|e| Error::Invalid(format!("--state-dir {}: {e}", state_dir.display())))?;
        // A flag of either kind beats the file's token of either kind.
        let enroll_token = match (args.enroll_token_file, args.enroll_token) {
            (Some(p), _) => Some(TokenSource::File(p)),
            (None, Some(t)) => Some(TokenSource::Inline(Secret(t))),
            (None, None) => match (file.enroll_token_file, file.enroll_token) {
                (Some(p), _) => Some(TokenSource::File(p)),
                (None, Some(t)) => Some(TokenSource::Inline(Secret(t))),
                (None, None) => None,
            },
        };
        Ok(Conn {
            server,
            server_name,
            ca,
            state_dir,
            enroll_token,
        })
    }

    pub fn identity_path(&self) -> PathBuf {
        self.state_dir.join("identity.json")
    }
}

/// The host part of `HOST:PORT` (`[v6]:PORT` allowed); checks the port.
pub fn server_host(server: &str) -> Result<String, Error> {
    let bad = || Error::Invalid(format!("--server {server:?} is not HOST:PORT"));
    let (host, port) = server.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || (host.contains(':') && !server.starts_with('[')) {
        return Err(bad());
    }
    Ok(host.to_owned())
}

pub fn parse_label(label: &str) -> Result<(String, String), Error> {
    match label.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(Error::Invalid(format!(
            "--label {label:?} is not KEY=VALUE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    // Pins config layering: flags beat the file, labels merge per key, unknown file keys are
    // rejected, the TLS name defaults to the host of --server, and tokens never print.
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shoal-agent").chain(args.iter().copied()))
            .expect("parse")
    }

    #[test]
    fn flags_override_file() {
        let cli = parse(&[
            "--server", "srv:8681", "--label", "a=flag", "--label", "c=3",
        ]);
        let file: FileConfig = serde_json::from_str(
            r#"{"server":"other:1","ca":"/ca.pem","state_dir":"/st","labels":{"a":"file","b":"2"},
                "enroll_token":"tok","output_cap":1000}"#,
        )
        .expect("json");
        let opts = Options::merge(cli.agent, file).expect("merge");
        assert_eq!(opts.conn.server, "srv:8681");
        assert_eq!(opts.conn.server_name, "srv");
        assert_eq!(opts.conn.ca, PathBuf::from("/ca.pem"));
        assert_eq!(opts.labels.get("a").map(String::as_str), Some("flag"));
        assert_eq!(opts.labels.get("b").map(String::as_str), Some("2"));
        assert_eq!(opts.output_cap, Some(1000));
        assert_eq!(opts.files.peer_listen, PEER_LISTEN_DEFAULT);
        assert_eq!(opts.files.cache_bytes, 4096 << 20);
        assert_eq!(
            opts.conn.enroll_token,
            Some(TokenSource::Inline(Secret("tok".into())))
        );
        assert!(!format!("{opts:?}").contains("tok\""));
    }

    #[test]
    fn file_flags() {
        // Pins --peer-listen and --chunk-cache-mb: flags beat the file, 0 MiB is refused.
        let cli = parse(&["--server", "h:1", "--peer-listen", "127.0.0.1:9000"]);
        let file: FileConfig = serde_json::from_str(
            r#"{"ca":"/ca.pem","state_dir":"/st","peer_listen":"0.0.0.0:1","chunk_cache_mb":8}"#,
        )
        .expect("json");
        let opts = Options::merge(cli.agent, file).expect("merge");
        assert_eq!(opts.files.peer_listen.to_string(), "127.0.0.1:9000");
        assert_eq!(opts.files.cache_bytes, 8 << 20);
        let cli = parse(&["--server", "h:1", "--ca", "c", "--state-dir", "s"]);
        let zero = FileConfig {
            chunk_cache_mb: Some(0),
            ..FileConfig::default()
        };
        assert!(Options::merge(cli.agent, zero).is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(serde_json::from_str::<FileConfig>(r#"{"sever":"x:1"}"#).is_err());
        let cli = parse(&["--server", "nohost", "--ca", "c", "--state-dir", "s"]);
        assert!(Options::merge(cli.agent, FileConfig::default()).is_err());
        let cli = parse(&["--server", "h:1", "--state-dir", "s"]);
        assert!(Options::merge(cli.agent, FileConfig::default()).is_err());
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn server_host_forms() {
        assert_eq!(
            server_host("example.com:8681").expect("host"),
            "example.com"
        );
        assert_eq!(server_host("10.0.0.1:1").expect("host"), "10.0.0.1");
        assert_eq!(server_host("[::1]:8681").expect("host"), "::1");
        assert!(server_host("::1:8681").is_err());
        assert!(server_host("h:notaport").is_err());
    }

    #[test]
    fn simulate_subcommand() {
        let cli = parse(&[
            "simulate",
            "--count",
            "3",
            "--server",
            "h:1",
            "--ca",
            "c",
            "--state-dir",
            "s",
            "--enroll-token-file",
            "t",
        ]);
        let Some(Command::Simulate(args)) = cli.command else {
            panic!("no subcommand")
        };
        let sim = SimOptions::from_args(args).expect("sim");
        assert_eq!(sim.count, 3);
        assert_eq!(sim.concurrency_connect, 64);
        assert_eq!(sim.conn.enroll_token, Some(TokenSource::File("t".into())));
    }
}
