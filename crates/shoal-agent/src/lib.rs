//! `shoal-agent`: the process on every managed host. It dials the server over TLS, enrolls
//! once, runs scripts as the requested account in a cgroup of their own, streams their
//! output and spools every result on disk until the server acknowledges it. For file steps it
//! scans sources, serves chunks to its peers, and fetches files as a spooled task.
//!
//! Codemap: [`config`] (flags and config file), [`agent`] (main loop and reconnects),
//! [`conn`] (TLS, framing, one session), [`tasks`] (runs, fetches and acks), [`spool`]
//! (on-disk results), [`exec`] / [`launch`] / [`output`] / [`contain`] (the executor and task
//! containment), [`files`] (file distribution: `files::runtime` is what the session talks
//! to), [`facts`], [`identity`], [`backoff`], [`sim`] (many simulated agents for benchmarks).
//!
//! It must stay small: no storage, HTTP-server or console crates, and nothing of the server.

pub mod agent;
pub mod backoff;
pub mod config;
pub mod conn;
pub mod contain;
#[cfg(test)]
mod escape_tree;
pub mod exec;
pub mod facts;
pub mod files;
pub mod identity;
pub mod launch;
pub mod output;
pub mod sim;
pub mod spool;
pub mod tasks;

use config::{Cli, Command, Options, SimOptions};

/// Runs what the command line asks for until SIGINT or SIGTERM.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let opts = Options::from_args(cli.agent)?;
            // One thread is plenty for an agent and keeps its footprint small.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(agent::run(opts, shutdown_signal()))
        }
        Some(Command::Simulate(args)) => {
            let opts = SimOptions::from_args(args)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(sim::run(opts, shutdown_signal()))
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
