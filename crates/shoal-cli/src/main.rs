//! The `shoal` binary: `shoal server` starts the server (the `shoal-server` library); every
//! other command is a client of the REST API through `shoal-client`.
//!
//! Data goes to stdout, progress, warnings and errors to stderr; exit codes are documented in
//! [`exit`]. This crate owns presentation only: no server logic, no storage.

mod account;
mod admin;
mod audit;
mod cli;
mod cli_access;
mod credentials;
mod exit;
mod files_cli;
mod files_view;
mod follow;
mod hosts;
mod jobs;
mod launch;
mod output;
mod parse;
mod prompt;
mod run;
mod server_cmd;
#[cfg(test)]
mod test_args;
mod transfer;
mod users_cli;
mod when;

use crate::cli::{Cli, Command, Global};
use crate::exit::{Exit, usage};
use clap::Parser as _;
use shoal_client::Client;

/// What every client command needs.
pub struct Ctx {
    pub client: Client,
    pub json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shoal: error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(Exit::Failed.code());
        }
    };
    let result = runtime.block_on(dispatch(cli));
    let exit = match result {
        Ok(exit) => exit,
        Err(err) if exit::is_broken_pipe(&err) => Exit::Ok,
        Err(err) => {
            eprintln!("shoal: error: {err:#}");
            if let Some(hint) = exit::hint_for(&err) {
                eprintln!("shoal: hint: {hint}");
            }
            exit::exit_for(&err)
        }
    };
    // Do not wait for stray tasks (e.g. a half-read event stream).
    runtime.shutdown_background();
    std::process::ExitCode::from(exit.code())
}

async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let Cli { global, command } = cli;
    match command {
        Command::Server(args) => server_cmd::run(*args).await,
        Command::Openapi => {
            output::stdout_str(&shoal_server::openapi())?;
            Ok(Exit::Ok)
        }
        Command::Login(args) => account::login(&global, args).await,
        Command::Logout => account::logout(&global).await,
        command => {
            let (ctx, stored) = ctx(&global)?;
            client_command(&ctx, command)
                .await
                .map_err(|e| match stored {
                    Some(path) if is_unauthenticated(&e) => e.context(exit::StoredRefused(path)),
                    _ => e,
                })
        }
    }
}

async fn client_command(ctx: &Ctx, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Hosts(args) => hosts::run(ctx, args).await,
        Command::Run(args) => run::run(ctx, args).await,
        Command::Push(args) => transfer::push(ctx, args).await,
        Command::Gather(args) => transfer::gather(ctx, args).await,
        Command::Job(cmd) => jobs::run(ctx, cmd).await,
        Command::Token(cmd) => admin::token(ctx, cmd).await,
        Command::Group(cmd) => admin::group(ctx, cmd).await,
        Command::Whoami => account::whoami(ctx).await,
        Command::User(cmd) => users_cli::user(ctx, cmd).await,
        Command::Role(cmd) => users_cli::role(ctx, cmd).await,
        Command::Audit(cmd) => audit::run(ctx, cmd).await,
        Command::Server(_) | Command::Openapi | Command::Login(_) | Command::Logout => {
            Err(anyhow::anyhow!("this command needs no API client"))
        }
    }
}

fn is_unauthenticated(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|c| c.downcast_ref::<shoal_client::Error>())
        .any(|e| e.status() == Some(401))
}

/// The client of a command and, when its token is the one `shoal login` stored, that file.
fn ctx(global: &Global) -> anyhow::Result<(Ctx, Option<std::path::PathBuf>)> {
    let (token, stored) = match token(global)? {
        Some(t) => (Some(t), None),
        None => match credentials::load(&global.server)? {
            Some(entry) => (Some(entry.token), Some(credentials::path()?)),
            None => (None, None),
        },
    };
    let ctx = Ctx {
        client: client_with(global, token)?,
        json: global.json,
    };
    Ok((ctx, stored))
}

/// A client of `--server` (trusting `--ca`) with `token`.
pub fn client_with(global: &Global, token: Option<String>) -> anyhow::Result<Client> {
    let Some(path) = &global.ca else {
        return Ok(Client::new(global.server.clone(), token));
    };
    let pem = std::fs::read(path)
        .map_err(|e| usage(format!("cannot read the CA file {}: {e}", path.display())))?;
    Client::with_ca(global.server.clone(), token, &pem)
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// `--token` (or SHOAL_TOKEN) wins over `--token-file` (or SHOAL_TOKEN_FILE); an empty token
/// counts as none. Without either, the caller falls back to the stored credentials.
fn token(global: &Global) -> anyhow::Result<Option<String>> {
    if let Some(t) = global
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(t.to_string()));
    }
    let Some(path) = &global.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Err(usage(format!("the token file {} is empty", path.display())));
    }
    Ok(Some(t.to_string()))
}

#[cfg(test)]
mod tests {
    //! Pins token resolution: flag over file, whitespace trimmed, unreadable or empty file is a
    //! usage error.
    use super::*;

    fn global(token: Option<&str>, file: Option<std::path::PathBuf>) -> Global {
        Global {
            server: "http://x".into(),
            token: token.map(String::from),
            token_file: file,
            ca: None,
            json: false,
        }
    }

    #[test]
    fn token_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("t");
        std::fs::write(&f, "secret\n").expect("write");
        assert_eq!(
            token(&global(Some("a"), Some(f.clone()))).expect("ok"),
            Some("a".into())
        );
        assert_eq!(
            token(&global(None, Some(f.clone()))).expect("ok"),
            Some("secret".into())
        );
        assert_eq!(
            token(&global(Some(" "), Some(f))).expect("ok"),
            Some("secret".into())
        );
        assert_eq!(token(&global(None, None)).expect("ok"), None);
        let missing = token(&global(None, Some(dir.path().join("nope")))).expect_err("missing");
        assert_eq!(exit::exit_for(&missing), Exit::Usage);
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        assert!(token(&global(None, Some(empty))).is_err());
    }
}
