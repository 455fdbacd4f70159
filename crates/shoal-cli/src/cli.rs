//! The command line, as clap types. Parsing only: the commands live in their own modules.

use crate::parse::{self, HostSpec, LabelEdit};
use clap::{ArgGroup, Args, Parser, Subcommand};
use shoal_client::{AgentStatus, HostId, HostTaskStatus, Language, RunStatus, TokenKind};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Shoal: run scripts on many hosts, and see what happened.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The server's REST address.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SHOAL_SERVER",
        default_value = "http://127.0.0.1:8680",
        value_name = "URL"
    )]
    pub server: String,
    /// API token (bearer) [default: from --token-file, else the one `shoal login` stored for
    /// this server].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SHOAL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Read the API token from this file (used when --token is not given).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SHOAL_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub token_file: Option<PathBuf>,
    /// Trust this CA certificate (PEM) for an https:// server, e.g. the server's DATA_DIR/ca.pem
    /// when it runs with --api-tls.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SHOAL_CA",
        value_name = "PATH"
    )]
    pub ca: Option<PathBuf>,
    /// Machine-readable output (JSON) on stdout.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (REST API, console, agent endpoint).
    Server(Box<ServerArgs>),
    /// List and manage hosts.
    Hosts(HostsArgs),
    /// Run a script on hosts and show the results.
    Run(RunArgs),
    /// Send files (on hosts, or local files) to target hosts; waits and shows the results.
    Push(crate::files_cli::PushArgs),
    /// Collect files from many hosts into a directory on one host (by source IP).
    Gather(crate::files_cli::GatherArgs),
    /// Inspect and control jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// API and enrollment tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Saved dynamic host groups (a name for a label selector).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Sign in and store a personal token for this server (see `shoal login --help`).
    Login(crate::cli_access::LoginArgs),
    /// Revoke the stored token of this server and forget it.
    Logout,
    /// Show the account of the token and its roles per scope.
    Whoami,
    /// Accounts: people and service accounts.
    #[command(subcommand)]
    User(crate::cli_access::UserCmd),
    /// Role bindings: who holds which role in which scope.
    #[command(subcommand)]
    Role(crate::cli_access::RoleCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(crate::cli_access::AuditCmd),
    /// Print the REST API's OpenAPI description (JSON), as the server serves it at
    /// /api/v1/openapi.json. Needs no server.
    Openapi,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Database, CA, certificates and bootstrap tokens [default: shoal-data].
    #[arg(long, env = "SHOAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL (postgres://...) instead of the SQLite file in the data dir.
    #[arg(
        long,
        env = "SHOAL_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// REST API and console address [default: 127.0.0.1:8680].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Agent TLS endpoint address [default: 0.0.0.0:8681].
    #[arg(long, value_name = "ADDR")]
    pub agent_listen: Option<SocketAddr>,
    /// Extra DNS name or IP for the server certificate (repeatable).
    #[arg(long = "agent-name", value_name = "NAME")]
    pub agent_names: Vec<String>,
    /// Seconds a disconnected agent's running tasks wait before ending as agent abnormal
    /// [default: 60].
    #[arg(long, value_name = "SECS")]
    pub agent_lost_grace: Option<u64>,
    /// Agent heartbeat interval in seconds [default: 5].
    #[arg(long, value_name = "SECS")]
    pub heartbeat_secs: Option<u32>,
    /// Per-host, per-step output cap, e.g. 5MiB [default: 5MiB].
    #[arg(long, value_parser = parse::size, value_name = "BYTES")]
    pub output_cap: Option<u64>,
    /// Serve the REST API and console over HTTPS with a certificate from the server's own CA
    /// (clients trust DATA_DIR/ca.pem, e.g. `shoal --ca`).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub api_tls: bool,
    /// Serve the REST API and console over HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Largest file accepted by `POST /api/v1/uploads`, e.g. 500MiB [default: 2GiB].
    #[arg(long, value_parser = parse::size, value_name = "BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Seconds an upload is kept after its last use (uploaded again or named by a transfer)
    /// when no running step uses it [default: 604800, 7 days].
    #[arg(long, value_name = "SECS")]
    pub upload_ttl_secs: Option<u64>,
    /// Open REST API connections allowed per client address; 0 for no limit (raise it, or
    /// use 0, behind a load balancer that connects from one address) [default: 256].
    #[arg(long, value_name = "N")]
    pub api_max_conns_per_ip: Option<usize>,
    /// Minutes a console session may stay unused before it ends [default: 120].
    #[arg(long, value_name = "MINS")]
    pub session_idle_mins: Option<u64>,
    /// Hours after sign-in a console session ends, used or not [default: 24].
    #[arg(long, value_name = "HOURS")]
    pub session_max_hours: Option<u64>,
    /// Days audit records are kept [default: 365].
    #[arg(long, value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    #[command(flatten)]
    pub oidc: crate::server_cmd::OidcArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostsArgs {
    #[command(subcommand)]
    pub cmd: Option<HostsCmd>,
    #[command(flatten)]
    pub list: HostListArgs,
}

#[derive(Debug, Subcommand)]
pub enum HostsCmd {
    /// List hosts (the default).
    List(HostListArgs),
    /// Show one host.
    Show { id: HostId },
    /// Set (KEY=VALUE) or remove (KEY-) user labels of a host.
    Label {
        id: HostId,
        #[arg(required = true, value_parser = parse::label_edit, value_name = "KEY=VALUE|KEY-")]
        edits: Vec<LabelEdit>,
        /// Replace all user labels with the given ones instead of editing them.
        #[arg(long)]
        replace: bool,
    },
    /// Revoke a host's agent credentials.
    Revoke { id: HostId },
}

#[derive(Debug, Args, Default)]
pub struct HostListArgs {
    /// online, offline or abnormal.
    #[arg(long, value_parser = parse::agent_status)]
    pub status: Option<AgentStatus>,
    /// Label selector, e.g. `role=web,env in (prod,staging)`.
    #[arg(long, value_name = "SELECTOR")]
    pub label: Option<String>,
    /// Hosts with this IP (substring).
    #[arg(long)]
    pub ip: Option<String>,
    /// Hosts in this saved group.
    #[arg(long, value_name = "ID")]
    pub group: Option<i64>,
    /// Substring of hostname or IP.
    #[arg(long, short = 'q')]
    pub search: Option<String>,
    /// At most this many hosts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["command", "file", "stdin"])))]
pub struct RunArgs {
    /// The script text.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SCRIPT",
        allow_hyphen_values = true
    )]
    pub command: Option<String>,
    /// Read the script from a file (`-` for stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// `-`: read the script from stdin.
    #[arg(value_name = "-", value_parser = parse::dash)]
    pub stdin: Option<String>,
    /// Script language: shell, python, perl, powershell, bat.
    #[arg(long, default_value = "shell", value_parser = parse::language)]
    pub lang: Language,
    /// Host ids, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub hosts: Vec<HostId>,
    /// Host IP (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "IP")]
    pub ip: Vec<String>,
    /// Label selector (repeatable: all must match).
    #[arg(long, value_name = "SELECTOR")]
    pub label: Vec<String>,
    /// Saved group id (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub group: Vec<i64>,
    /// Script parameters, split like a POSIX shell would.
    #[arg(long, allow_hyphen_values = true, value_name = "STRING")]
    pub params: Option<String>,
    /// Timeout in seconds (1 to 259200) [default: server's, 7200].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..=259_200))]
    pub timeout: Option<i64>,
    /// OS account to run as [default: the agent's].
    #[arg(long, value_name = "USER")]
    pub account: Option<String>,
    /// Run with the account's login environment.
    #[arg(long)]
    pub login_env: bool,
    /// Working directory on the hosts.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Environment variable for the script (repeatable).
    #[arg(long = "env", value_parser = parse::env_pair, value_name = "K=V")]
    pub env: Vec<(String, String)>,
    /// Job name.
    #[arg(long)]
    pub name: Option<String>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs, newest first.
    List {
        #[arg(long, value_parser = parse::run_status)]
        status: Option<RunStatus>,
        /// Substring of the job name.
        #[arg(long)]
        name: Option<String>,
        /// Jobs that targeted this IP.
        #[arg(long)]
        ip: Option<String>,
        #[arg(long)]
        operator: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Show a job: steps, counts and result groups.
    Show { job: i64 },
    /// Print a host's log (exact bytes).
    Log {
        job: i64,
        /// Host id or IP.
        #[arg(long, value_parser = parse::host_spec, value_name = "HOST_ID|IP")]
        host: HostSpec,
        /// Step id [default: the job's first step].
        #[arg(long, value_name = "SID")]
        step: Option<i64>,
        /// Attempt [default: the step's current attempt].
        #[arg(long)]
        attempt: Option<u32>,
        /// Keep printing until the host's task finishes.
        #[arg(long, short = 'F')]
        follow: bool,
    },
    /// List a job's hosts with their status.
    Hosts {
        job: i64,
        #[arg(long, value_name = "SID")]
        step: Option<i64>,
        #[arg(long)]
        attempt: Option<u32>,
        /// e.g. success, failed, nonzero, agent_abnormal, or a bk-job code.
        #[arg(long, value_parser = parse::task_status)]
        status: Option<HostTaskStatus>,
        #[arg(long)]
        ip: Option<String>,
        /// Hosts whose log contains this text.
        #[arg(long)]
        keyword: Option<String>,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Ask the job to stop.
    Terminate { job: i64 },
    /// Retry a step: its failed hosts, or all with --all.
    Retry {
        job: i64,
        /// Re-run every host, not only those that did not succeed.
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "SID")]
        step: Option<i64>,
        /// Follow the retry and show the results.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token; its secret is printed on stdout, once.
    Create {
        name: String,
        #[arg(long, default_value = "api", value_parser = parse::token_kind)]
        kind: TokenKind,
        /// Lifetime in seconds [default: does not expire].
        #[arg(long, value_name = "SECS")]
        ttl: Option<u64>,
        /// An API token for this account (name or id; e.g. a service account) instead of
        /// your own (platform admin).
        #[arg(long = "for", value_name = "USER")]
        for_user: Option<String>,
        /// The token may only read, whatever its account may do.
        #[arg(long)]
        read_only: bool,
        /// The token acts only in this scope (name or id).
        #[arg(long, value_name = "SCOPE")]
        only_scope: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    List,
    Create {
        name: String,
        selector: String,
    },
    Update {
        id: i64,
        name: String,
        selector: String,
    },
    Delete {
        id: i64,
    },
}

#[cfg(test)]
mod tests {
    //! Pins the command-line surface: global flags anywhere, comma lists, repeatable flags,
    //! the script-source rules, and that bad values are usage errors.
    use super::*;

    use crate::test_args::{parse, run as run_args};

    #[test]
    fn run_targets_and_env() {
        let r = run_args(&[
            "run",
            "-c",
            "echo hi",
            "--hosts",
            "1,2",
            "--hosts",
            "3",
            "--ip",
            "10.0.0.1",
            "--ip",
            "10.0.0.2,10.0.0.3",
            "--label",
            "role=web",
            "--group",
            "7",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--timeout",
            "30",
            "--params",
            "-v --x",
        ]);
        assert_eq!(r.command.as_deref(), Some("echo hi"));
        assert_eq!(r.hosts, vec![1, 2, 3]);
        assert_eq!(r.ip, vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(r.label, vec!["role=web"]);
        assert_eq!(r.group, vec![7]);
        assert_eq!(
            r.env,
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(r.timeout, Some(30));
        assert_eq!(r.params.as_deref(), Some("-v --x"));
        assert_eq!(r.lang, Language::Shell);
    }

    #[test]
    fn run_script_source_rules() {
        assert_eq!(
            run_args(&["run", "-", "--hosts", "1"]).stdin.as_deref(),
            Some("-")
        );
        assert!(
            run_args(&["run", "-f", "x.sh", "--lang", "python"])
                .file
                .is_some()
        );
        // Exactly one source.
        assert!(parse(&["run", "--hosts", "1"]).is_err());
        assert!(parse(&["run", "-c", "x", "-f", "y"]).is_err());
        assert!(parse(&["run", "script.sh"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["run", "-c", "x", "--hosts", "1,a"][..],
            &["run", "-c", "x", "--env", "1A=2"],
            &["run", "-c", "x", "--timeout", "0"],
            &["run", "-c", "x", "--lang", "cobol"],
            &["hosts", "--status", "up"],
            &["job", "log", "5", "--host", "web-1"],
            &["token", "create", "t", "--kind", "admin"],
        ] {
            let err = parse(args).expect_err("must fail");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&[
            "hosts",
            "--json",
            "--server",
            "http://x:1",
            "--status",
            "online",
        ])
        .expect("parses");
        assert!(cli.global.json);
        assert_eq!(cli.global.server, "http://x:1");
        match cli.command {
            Command::Hosts(h) => {
                assert!(h.cmd.is_none());
                assert_eq!(h.list.status, Some(AgentStatus::Online));
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = parse(&["--token", "t", "hosts", "label", "4", "a=b", "c-"]).expect("parses");
        assert_eq!(cli.global.token.as_deref(), Some("t"));
        match cli.command {
            Command::Hosts(HostsArgs {
                cmd: Some(HostsCmd::Label { id, edits, replace }),
                ..
            }) => {
                assert_eq!(id, 4);
                assert!(!replace);
                assert_eq!(
                    edits,
                    vec![
                        LabelEdit::Set("a".into(), "b".into()),
                        LabelEdit::Remove("c".into())
                    ]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn job_and_server_commands() {
        let cli = parse(&["job", "log", "9", "--host", "10.1.2.3", "--follow"]).expect("parses");
        match cli.command {
            Command::Job(JobCmd::Log {
                job,
                host,
                follow,
                step,
                ..
            }) => {
                assert_eq!(job, 9);
                assert_eq!(host, HostSpec::Ip("10.1.2.3".into()));
                assert!(follow);
                assert_eq!(step, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = parse(&[
            "server",
            "--listen",
            "127.0.0.1:1",
            "--agent-name",
            "a",
            "--agent-name",
            "b",
            "--output-cap",
            "1MiB",
        ])
        .expect("parses");
        match cli.command {
            Command::Server(s) => {
                assert_eq!(s.agent_names, vec!["a", "b"]);
                assert_eq!(s.output_cap, Some(1 << 20));
                assert!(s.data_dir.is_none() || std::env::var_os("SHOAL_DATA_DIR").is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
