//! The `gatehouse` operator CLI: accounts, roles and permissions, API keys,
//! MFA, login and sessions, key rotation, audit maintenance and a health check, over the
//! database `DATABASE_URL` names (default: the SQLite file `./gatehouse.db`),
//! plus `migrate` (the migration CLI).
//!
//! Passwords, keys, tokens and codes are read from stdin (one per line) or,
//! in a terminal, from a hidden prompt; never from the command line.
//! Exit codes: 0 done, 1 denied or invalid, 2 usage or configuration error
//! (among them a command that writes run against a read-only standby or
//! replica: refused before any change; reading commands work there).
//! `--format json` prints one JSON document on stdout.

mod apikey;
mod context;
mod doctor;
mod input;
mod keys;
mod maintenance;
mod mfa;
mod output;
mod role;
mod session;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use context::{CommonArgs, Failure};

/// Operate a gatehouse database.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Migrate the schema (the same CLI as `sea-orm-cli migrate`).
    Migrate(gatehouse_migration::cli::Cli),
    /// Create, list, lock and unlock accounts.
    User(user::Args),
    /// Grant, revoke and list roles; create, change and delete custom roles and their permissions.
    Role(role::Args),
    /// Check a user's permission (exit 0 allowed, 1 denied).
    Perm(role::PermArgs),
    /// Issue, verify, list and revoke API keys.
    Apikey(apikey::Args),
    /// Enroll a user in TOTP MFA and confirm or check codes.
    Mfa(mfa::Args),
    /// Check a password (and second factor) end to end and issue a session.
    Login(session::LoginArgs),
    /// Validate, revoke and clean up sessions.
    Session(session::Args),
    /// Prune the audit trail by its retention.
    Audit(maintenance::AuditArgs),
    /// Compute the daily security metrics.
    Metrics(maintenance::MetricsArgs),
    /// Rotate and list the recorded keys (HMAC_KEY, DATA_ENCRYPTION_KEY).
    Keys(keys::Args),
    /// Check configuration, database, pending migrations, schema drift and the key ring.
    Doctor(doctor::Args),
}

/// Runs the CLI with the process arguments; what `main` calls.
pub fn main() -> ExitCode {
    let cli = match gatehouse_migration::cli::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(err) => return gatehouse_migration::cli::usage_error(err),
    };
    if let Command::Migrate(cli) = cli.command {
        // gatehouse's migrations; an application's own are listed as the application's.
        return gatehouse_migration::cli::run_parsed::<gatehouse_migration::Migrator>(
            cli,
            gatehouse_migration::runner::Ownership::Part,
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Migrate(_) => unreachable!("handled above"),
            Command::User(args) => user::run(args).await,
            Command::Role(args) => role::run(args).await,
            Command::Perm(args) => role::run_perm(args).await,
            Command::Apikey(args) => apikey::run(args).await,
            Command::Mfa(args) => mfa::run(args).await,
            Command::Login(args) => session::run_login(args).await,
            Command::Session(args) => session::run(args).await,
            Command::Audit(args) => maintenance::run_audit(args).await,
            Command::Metrics(args) => maintenance::run_metrics(args).await,
            Command::Keys(args) => keys::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
