//! The `gatehouse` operator CLI.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate a gatehouse database.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Migrate the schema (the same CLI as `sea-orm-cli migrate`).
    Migrate(migration::cli::Cli),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return migration::cli::usage_error(err),
    };
    match cli.command {
        Command::Migrate(cli) => migration::cli::run(cli),
    }
}
