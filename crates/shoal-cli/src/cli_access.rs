//! The command line of signing in, accounts, roles and the audit trail, as clap types.

use crate::parse;
use clap::{Args, Subcommand};
use shoal_client::Role;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account name [default: asked on the terminal].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the password from the first line of stdin instead of asking.
    #[arg(long, conflicts_with = "token_stdin")]
    pub password_stdin: bool,
    /// Store an API token read from stdin (checked with whoami) instead of signing in with a
    /// password: the way for single sign-on users, who create a personal token in the console.
    #[arg(long, conflicts_with = "user")]
    pub token_stdin: bool,
    /// Lifetime of the token in seconds [default: the server's, 30 days].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
    pub ttl: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List accounts (platform admin, or a scope owner).
    List,
    /// Show one account.
    Show {
        /// Account name or id.
        user: String,
    },
    /// Create a person's account (asks for its password on a terminal) or a service account.
    Create {
        name: String,
        /// A service account: no password, acts through tokens (`shoal token create --for`).
        #[arg(long)]
        service: bool,
        /// Platform admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin.
        #[arg(long, conflicts_with = "service")]
        password_stdin: bool,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Change an account's display name, email or admin flag.
    Update {
        /// Account name or id.
        user: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Make the account a platform admin.
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// Take the platform admin flag away.
        #[arg(long)]
        no_admin: bool,
    },
    /// Disable an account: its sessions and tokens stop working at once.
    Disable {
        /// Account name or id.
        user: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Account name or id.
        user: String,
    },
    /// Change your own password, or (platform admin) set another account's.
    Passwd {
        /// Account name or id [default: your own; asks for the current password].
        user: Option<String>,
        /// Read from stdin: for your own, the current and the new password on two lines;
        /// for another account, the new password.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// List role bindings.
    List {
        /// Only bindings in this scope (name or id).
        #[arg(long, value_name = "SCOPE")]
        scope: Option<String>,
        /// Only bindings of this account (name or id).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Give an account a role in a scope (replacing the role it had there).
    Grant {
        /// Account name or id.
        user: String,
        /// viewer, operator, developer or owner.
        #[arg(value_parser = parse::role)]
        role: Role,
        /// The scope (name or id).
        #[arg(long, value_name = "SCOPE")]
        scope: String,
        /// Limit execution to hosts matching this label selector, e.g. `env!=prod`.
        #[arg(long, value_name = "SELECTOR")]
        hosts: Option<String>,
    },
    /// Remove a role binding.
    Revoke { binding_id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit records, newest first.
    List {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// At most this many records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "all")]
        limit: u64,
        /// Every matching record.
        #[arg(long)]
        all: bool,
    },
    /// Every matching record as JSON lines on stdout (`shoal audit export > audit.jsonl`).
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Records of the last span: 30m, 2h, 7d.
    #[arg(long, value_parser = crate::when::span_ms, value_name = "SPAN", conflicts_with = "from")]
    pub since: Option<i64>,
    /// At or after: YYYY-MM-DD[ HH:MM[:SS]] (UTC) or Unix ms.
    #[arg(long, value_parser = crate::when::instant, value_name = "TIME")]
    pub from: Option<i64>,
    /// Before: YYYY-MM-DD[ HH:MM[:SS]] (UTC) or Unix ms.
    #[arg(long, value_parser = crate::when::instant, value_name = "TIME")]
    pub to: Option<i64>,
    /// Account name.
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// An action (`auth.login`) or a prefix ending in `.` (`job.`).
    #[arg(long)]
    pub action: Option<String>,
    /// Scope name or id.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// An exact resource: `job:42`, `user:alice`, `token:7`.
    #[arg(long)]
    pub resource: Option<String>,
    /// ok, denied, failed or throttled.
    #[arg(long, value_parser = parse::outcome)]
    pub outcome: Option<String>,
    /// Client address.
    #[arg(long)]
    pub address: Option<String>,
}
