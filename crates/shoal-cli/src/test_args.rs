//! Command lines as a user types them, parsed for the crate's unit tests.

use crate::cli::{Cli, Command, RunArgs};
use clap::Parser as _;

/// `shoal ARGS...`.
pub fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("shoal").chain(args.iter().copied()))
}

/// The command of `shoal ARGS...`, which must parse.
pub fn command(args: &[&str]) -> Command {
    parse(args).expect("parses").command
}

/// The arguments of `shoal run ...`, which must parse.
pub fn run(args: &[&str]) -> RunArgs {
    match command(args) {
        Command::Run(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}
