//! The migration CLI, generic over any `MigratorTrait`: one implementation
//! behind `sea-orm-cli migrate`, `cargo run -p gatehouse-migration`,
//! `gatehouse migrate` and an application's own migration binary, whose
//! `main.rs` is one line:
//!
//! ```no_run
//! # struct AppMigrator;
//! # impl gatehouse_migration::MigratorTrait for AppMigrator {
//! #     fn migrations() -> Vec<Box<dyn gatehouse_migration::MigrationTrait>> { gatehouse_migration::migrations() }
//! # }
//! fn main() -> std::process::ExitCode {
//!     gatehouse_migration::cli::run::<AppMigrator>()
//! }
//! ```
//!
//! It accepts what `sea-orm-cli migrate` passes on (`up [-n N]`, `down
//! [-n N]`, `status`, `fresh`, `refresh`, `reset`, `-v`, `DATABASE_URL`,
//! `DATABASE_SCHEMA`) and adds checksums (`verify`), previews (`sql`,
//! `--dry-run`), locking, failure recovery (`repair`), targets (`--to`,
//! `mark-applied`, `baseline`) and `create`. `DATABASE_MIGRATION_URL`, when
//! set, is the database migrations connect to instead of `DATABASE_URL`
//! (which may go through a transaction-pooling PgBouncer, refused, see
//! [`crate::runner::pooler`]). Exit codes: 0 done, 1 the database refused or
//! a check failed, 2 bad arguments or configuration (among them a command
//! that writes run against a read-only standby or replica: refused before any
//! change; `status`, `verify`, `sql` and dry runs work there).

mod create;
mod output;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{DbBackend, DbErr};

use crate::Migrator;
use crate::redact;
use crate::render::{Direction, render_sql};
use crate::runner::pooler::{self, PoolMode};
use crate::runner::{self, Event, Options, Ownership, Runner, Target};

/// Where the database lives when neither `--database-url` nor `DATABASE_URL`
/// says: gatehouse's default, the SQLite file `./gatehouse.db` (also for an
/// application's migrator; set `DATABASE_URL` to use another).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db?mode=rwc";

/// Apply, check, preview and repair a database's code-defined migrations.
#[derive(Parser, Debug)]
#[command(
    name = "migration",
    version,
    about = "Apply, check, preview and repair a database's code-defined migrations"
)]
pub struct Cli {
    /// Which database to migrate, and how (the global options).
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// What to do; `None` (no command given) runs `up`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which database to migrate, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Database URL: postgres://, mysql:// (also MariaDB) or sqlite://.
    /// Defaults to the SQLite file ./gatehouse.db (gatehouse's default).
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Database URL for migrations only, used instead of --database-url
    /// (DATABASE_URL) when set: the database directly, or a session-pooling
    /// port, when DATABASE_URL goes through PgBouncer in transaction pooling
    /// (DATABASE_POOL_MODE=transaction), which migrations refuse.
    #[arg(
        long,
        env = "DATABASE_MIGRATION_URL",
        global = true,
        hide_env_values = true
    )]
    pub migration_url: Option<String>,

    /// PostgreSQL schema to migrate (default: the connection's search path).
    #[arg(short = 's', long, env = "DATABASE_SCHEMA", global = true)]
    pub database_schema: Option<String>,

    /// Longest wait for another migrator's lock, e.g. `90s`, `10m`, or milliseconds.
    #[arg(long, env = "MIGRATE_LOCK_TIMEOUT", global = true, default_value = "10m", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// Longest a single statement may run (PostgreSQL, MariaDB), e.g. `600s`,
    /// or milliseconds as in DATABASE_QUERY_TIMEOUT.
    #[arg(long, env = "DATABASE_QUERY_TIMEOUT", global = true, value_parser = parse_duration)]
    pub statement_timeout: Option<Duration>,

    /// `human` (default) or `json`, for `status` and `verify`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Log every statement sea-orm runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// Output format.
// The variants' doc comments are for rustdoc only: `help = None` keeps them
// out of `--help`, which lists the values without descriptions.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text for people.
    #[value(help = None::<&str>)]
    Human,
    /// JSON, for scripts.
    #[value(help = None::<&str>)]
    Json,
}

/// What [`Cli`] does with the database.
// `--help` shows `Cli`'s about, which clap sets after this doc comment.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Apply pending migrations: all, the next N, or up to and including one.
    Up {
        /// Number of pending migrations to apply.
        #[arg(short, long, conflicts_with = "to")]
        num: Option<u32>,
        /// Apply up to and including this migration.
        #[arg(long)]
        to: Option<String>,
        /// Print what would run and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even though an applied migration changed since it was applied.
        #[arg(long)]
        allow_changed: bool,
    },
    /// Roll back applied migrations: the last one, the last N, or back to one (kept).
    Down {
        /// Number of applied migrations to roll back (default 1).
        #[arg(short, long, conflicts_with = "to")]
        num: Option<u32>,
        /// Roll back every migration applied after this one, keeping it.
        #[arg(long)]
        to: Option<String>,
        /// Print what would run and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List every migration as applied (with when), pending, failed or changed.
    Status,
    /// Check applied migrations against their recorded checksums; exit 1 on any problem.
    Verify,
    /// Print the SQL of migrations for a backend, without a database.
    Sql {
        /// Backend to render for.
        #[arg(long, value_enum, default_value_t = Backend::Postgres)]
        backend: Backend,
        /// Print the rollback statements instead (newest migration first).
        #[arg(long)]
        down: bool,
        /// Migrations to print (default: all).
        names: Vec<String>,
    },
    /// Record a pending migration as applied without running it.
    MarkApplied {
        /// The migration.
        name: String,
    },
    /// Adopt a database built from `migrate sql` or by plain `sea-orm-cli migrate`: record checksums.
    Baseline {
        /// Record up to and including this migration (default: all).
        #[arg(long)]
        to: Option<String>,
    },
    /// Clear a migration's failure record after fixing the database by hand.
    Repair {
        /// The migration.
        name: String,
        /// Instead of clearing it: how many of its statements took effect before an
        /// interrupted statement-wise run stopped (MySQL/MariaDB, or a PostgreSQL
        /// migration without a transaction); `up` continues after them.
        #[arg(long, value_name = "N")]
        statements_done: Option<usize>,
    },
    /// Write a new migration file from the template and register it in the migration crate's lib.rs.
    Create {
        /// Name in snake case, e.g. `add_user_locale`.
        name: String,
        /// The migration crate's `src` directory (default: that of the crate `cargo run`
        /// runs, else ./migration/src, else ./src).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Drop the tables this Migrator manages (every table with --all), then apply all migrations.
    Fresh {
        /// Drop every table in the database/schema, not only those this Migrator manages.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Roll back all applied migrations, then apply them all again.
    Refresh,
    /// Roll back all applied migrations and remove the migration records.
    Reset,
}

/// A backend to render SQL for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    #[value(help = None::<&str>)]
    Postgres,
    /// MySQL and MariaDB.
    #[value(help = None::<&str>)]
    Mysql,
    /// SQLite.
    #[value(help = None::<&str>)]
    Sqlite,
}

impl From<Backend> for DbBackend {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => DbBackend::Postgres,
            Backend::Mysql => DbBackend::MySql,
            Backend::Sqlite => DbBackend::Sqlite,
        }
    }
}

/// The longest `--lock-timeout` or `--statement-timeout`: a day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A duration as `500ms`, `30s`, `10m`, `1h`, or a bare number of
/// milliseconds, at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let too_long = || format!("`{text}` is longer than the most allowed, 24h");
    let value: u64 = match number.parse() {
        Ok(value) => value,
        Err(_) if !number.is_empty() => return Err(too_long()),
        Err(_) => {
            return Err(format!(
                "`{text}` is not a duration; write e.g. 500ms, 30s, 10m or a number of milliseconds"
            ));
        }
    };
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ));
        }
    };
    match value.checked_mul(factor).map(Duration::from_millis) {
        Some(duration) if duration <= MAX_DURATION => Ok(duration),
        _ => Err(too_long()),
    }
}

/// What went wrong, and which exit code it gets.
enum Failure {
    /// Bad arguments or configuration (exit 2).
    Usage(String),
    /// The database refused, or a check failed (exit 1).
    Failed(String),
}

impl From<DbErr> for Failure {
    fn from(err: DbErr) -> Self {
        Self::Failed(message(&err))
    }
}

impl From<runner::Error> for Failure {
    /// A read-only server is a configuration error: `DATABASE_URL` names a
    /// standby or replica instead of the primary.
    fn from(err: runner::Error) -> Self {
        match err {
            runner::Error::ReadOnly(read_only) => Self::Usage(read_only.to_string()),
            runner::Error::Db(err) => err.into(),
        }
    }
}

/// A DbErr as one line.
fn message(err: &DbErr) -> String {
    let text = match err {
        DbErr::Migration(m) | DbErr::Custom(m) => m.clone(),
        other => other.to_string(),
    };
    text.replace('\n', " ")
}

/// Runs the CLI with the process arguments for `M`, a migrator that holds
/// every migration of the database (an application's, with gatehouse's
/// first): what an application's migration `main` calls.
pub fn run<M: MigratorTrait>() -> ExitCode {
    match parse_args::<Cli>() {
        Ok(cli) => run_parsed::<M>(cli, Ownership::Whole),
        Err(err) => usage_error(err),
    }
}

/// Runs the CLI with the process arguments for gatehouse's own [`Migrator`],
/// on a database that may also hold an application's migrations (listed as
/// the application's, see [`Ownership::Part`]): what the
/// `gatehouse-migration` binary calls.
pub fn main() -> ExitCode {
    match parse_args::<Cli>() {
        Ok(cli) => run_parsed::<Migrator>(cli, Ownership::Part),
        Err(err) => usage_error(err),
    }
}

/// Parses the process arguments after loading `.env` from the working
/// directory (variables already set win), so that an argument read from the
/// environment (`DATABASE_URL`, `DATABASE_SCHEMA`, …) sees `.env` as well.
///
/// # Errors
/// The parse error, for [`usage_error`].
pub fn parse_args<C: clap::Parser>() -> Result<C, clap::Error> {
    let _ = dotenvy::dotenv();
    C::try_parse()
}

/// Prints a command-line error as one line and exits 2; help and version print in full.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    eprintln!("{first} (see --help)");
    ExitCode::from(2)
}

/// Runs a parsed command line for `M` to completion on a fresh Tokio runtime.
pub fn run_parsed<M: MigratorTrait>(cli: Cli, ownership: Ownership) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run_async::<M>(cli, ownership))
}

/// Runs a parsed command line for `M` on the caller's runtime.
pub async fn run_async<M: MigratorTrait>(cli: Cli, ownership: Ownership) -> ExitCode {
    let _ = dotenvy::dotenv();
    init_logging(cli.connection.verbose);
    let command = cli.command.clone().unwrap_or(Command::Up {
        num: None,
        to: None,
        dry_run: false,
        allow_changed: false,
    });
    match execute::<M>(&cli.connection, command, ownership).await {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: bool) {
    let filter = if verbose {
        "sea_orm=info,sea_orm_migration=info,sqlx=info"
    } else {
        "off"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// The database URL the arguments name and the variable it came from:
/// `DATABASE_MIGRATION_URL` when set, else `DATABASE_URL` (or the SQLite
/// default, said on stderr); checked for a supported scheme.
fn database_url(args: &ConnectionArgs) -> Result<(String, &'static str), Failure> {
    let given = |url: &Option<String>| {
        url.as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
    };
    let (url, var) = if let Some(url) = given(&args.migration_url) {
        (url, pooler::MIGRATION_URL_VAR)
    } else if let Some(url) = given(&args.database_url) {
        (url, "DATABASE_URL")
    } else {
        eprintln!(
            "DATABASE_URL is not set; using the SQLite file ./gatehouse.db \
             (set DATABASE_URL or pass --database-url for PostgreSQL or MySQL)"
        );
        (DEFAULT_DATABASE_URL.to_owned(), "DATABASE_URL")
    };
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(
        scheme.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    ) {
        return Err(Failure::Usage(format!(
            "unsupported database URL scheme `{scheme}:` in {var} ({}); use postgres://, mysql:// or sqlite://",
            redact::url(&url)
        )));
    }
    Ok((url, var))
}

/// Refuses a PostgreSQL schema name that cannot be quoted safely: sea-orm
/// writes it into `SET search_path = "<name>"` without escaping, so a `"`
/// would end the identifier and let the rest run as SQL.
fn check_schema(schema: Option<&str>) -> Result<(), Failure> {
    let Some(schema) = schema else {
        return Ok(());
    };
    let problem = if schema.is_empty() {
        Some("is empty")
    } else if schema.len() > 63 {
        Some("is longer than 63 bytes (PostgreSQL's limit)")
    } else if schema.contains('"') {
        Some("contains a double quote")
    } else if schema.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Failure::Usage(format!(
            "--database-schema (DATABASE_SCHEMA) {problem}; give the name of an existing schema"
        ))),
        None => Ok(()),
    }
}

/// Prints the runner's events as the CLI always has: progress on stdout,
/// waiting notices on stderr.
fn print_event(event: &Event) {
    if event.is_notice() {
        eprintln!("{event}");
    } else {
        println!("{event}");
    }
}

async fn connect<M: MigratorTrait>(
    args: &ConnectionArgs,
    allow_changed: bool,
    ownership: Ownership,
) -> Result<Runner<M>, Failure> {
    check_schema(args.database_schema.as_deref())?;
    let (url, var) = database_url(args)?;
    // DATABASE_POOL_MODE describes DATABASE_URL, not the migration URL.
    let pool_mode = if var == pooler::MIGRATION_URL_VAR {
        PoolMode::Session
    } else {
        PoolMode::from_env()
            .map_err(|reason| Failure::Usage(format!("{} {reason}", pooler::POOL_MODE_VAR)))?
    };
    let options = Options {
        lock_timeout: Some(args.lock_timeout),
        statement_timeout: args.statement_timeout,
        allow_changed,
        ownership,
        on_event: Some(std::sync::Arc::new(print_event)),
        pool_mode,
        url_var: Some(var),
    };
    let flag = if var == pooler::MIGRATION_URL_VAR {
        "--migration-url"
    } else {
        "--database-url"
    };
    Runner::connect(&url, args.database_schema.as_deref(), options)
        .await
        .map_err(|err| match err {
            // The runner refused the connection (transaction pooling): its message says what to set.
            DbErr::Migration(_) => Failure::Usage(message(&err)),
            _ => Failure::Usage(format!(
                "cannot connect to {}: {}. Check that the server is running and that {var} \
                 (or {flag}) is right.",
                redact::url(&url),
                redact::text(&message(&err), &url)
            )),
        })
}

/// Refuses a migration name this build does not have, before any connection.
fn known<M: MigratorTrait>(name: &str) -> Result<(), Failure> {
    if M::migrations().iter().any(|m| m.name() == name) {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "no migration is named `{name}`; `migrate status` lists them"
        )))
    }
}

async fn execute<M: MigratorTrait>(
    args: &ConnectionArgs,
    command: Command,
    ownership: Ownership,
) -> Result<ExitCode, Failure> {
    match command {
        Command::Sql {
            backend,
            down,
            names,
        } => {
            for name in &names {
                known::<M>(name)?;
            }
            print_sql::<M>(backend.into(), down, &names).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Create { name, dir } => {
            let path = create::create(&name, dir.as_deref()).map_err(Failure::Usage)?;
            println!("Created     {}", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Up {
            to: Some(ref name), ..
        }
        | Command::Down {
            to: Some(ref name), ..
        }
        | Command::Baseline { to: Some(ref name) }
        | Command::MarkApplied { ref name }
        | Command::Repair { ref name, .. } => known::<M>(name)?,
        _ => {}
    }
    let allow_changed = matches!(
        command,
        Command::Up {
            allow_changed: true,
            ..
        }
    );
    let runner = connect::<M>(args, allow_changed, ownership).await?;
    let result = execute_on(&runner, args, command).await;
    runner.close().await;
    result
}

async fn execute_on<M: MigratorTrait>(
    runner: &Runner<M>,
    args: &ConnectionArgs,
    command: Command,
) -> Result<ExitCode, Failure> {
    match command {
        Command::Up {
            num, to, dry_run, ..
        } => {
            let target = match (num, to) {
                (Some(n), _) => Target::Count(n),
                (_, Some(name)) => Target::To(name),
                _ => Target::All,
            };
            if dry_run {
                output::plan(&runner.plan_up(&target).await?, "apply");
                return Ok(ExitCode::SUCCESS);
            }
            summary(
                runner.up(&target).await?,
                "Applied",
                "Nothing to apply: the database is up to date",
            );
        }
        Command::Down { num, to, dry_run } => {
            let target = match (num, to) {
                (_, Some(name)) => Target::To(name),
                (n, _) => Target::Count(n.unwrap_or(1)),
            };
            if dry_run {
                output::plan(&runner.plan_down(&target).await?, "roll back");
                return Ok(ExitCode::SUCCESS);
            }
            summary(
                runner.down(&target).await?,
                "Rolled back",
                "Nothing to roll back: no migration is applied",
            );
        }
        Command::Status => output::status(runner.backend(), &runner.status().await?, args.format),
        Command::Verify => {
            let entries = runner.status().await?;
            if !output::verify(&entries, args.format) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::MarkApplied { name } => {
            runner.mark_applied(&name).await?;
            println!("Marked      {name} as applied (not run)");
        }
        Command::Baseline { to } => {
            let names = runner.baseline(to.as_deref()).await?;
            for name in &names {
                println!("Baselined   {name}");
            }
            println!(
                "Recorded {} migration(s) as applied, with checksums",
                names.len()
            );
        }
        Command::Repair {
            name,
            statements_done: None,
        } => {
            runner.repair(&name).await?;
            println!(
                "Repaired    {name}: its failure record is cleared; `migrate up` starts it afresh"
            );
        }
        Command::Repair {
            name,
            statements_done: Some(done),
        } => {
            runner.repair_at(&name, done).await?;
            println!(
                "Repaired    {name}: statements 1 to {done} recorded as applied; `migrate up` continues at statement {}",
                done + 1
            );
        }
        Command::Fresh { all, yes } => {
            // Before the question: a standby is refused without asking.
            runner.ensure_writable().await?;
            let tables = runner.tables_to_drop(all).await?;
            if !tables.is_empty() && !yes {
                confirm(&tables)?;
            }
            let applied = runner.fresh(&tables).await?;
            println!(
                "Dropped {} table(s); applied {} migration(s)",
                tables.len(),
                applied.len()
            );
        }
        Command::Refresh => {
            summary(
                runner.down(&Target::All).await?,
                "Rolled back",
                "Nothing to roll back: no migration is applied",
            );
            summary(
                runner.up(&Target::All).await?,
                "Applied",
                "Nothing to apply: the database is up to date",
            );
        }
        Command::Reset => {
            let names = runner.reset().await?;
            println!(
                "Rolled back {} migration(s) and removed the migration records",
                names.len()
            );
        }
        Command::Sql { .. } | Command::Create { .. } => unreachable!("handled without a database"),
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(names: Vec<String>, verb: &str, nothing: &str) {
    if names.is_empty() {
        println!("{nothing}");
    } else {
        println!("{verb} {} migration(s)", names.len());
    }
}

/// Asks on the terminal before `fresh` drops tables; refuses without one.
fn confirm(tables: &[String]) -> Result<(), Failure> {
    let list = tables.join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "fresh would drop {} table(s) ({list}) and there is no terminal to confirm on; pass --yes",
            tables.len()
        )));
    }
    print!(
        "fresh drops {} table(s) and their data: {list}.\nType `yes` to continue: ",
        tables.len()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::Usage(
            "fresh cancelled; nothing was dropped".into(),
        ))
    }
}

/// Prints the statements of the named migrations (all when `names` is
/// empty), in the order they would run.
async fn print_sql<M: MigratorTrait>(
    backend: DbBackend,
    down: bool,
    names: &[String],
) -> Result<(), Failure> {
    let mut migrations = M::migrations();
    if !names.is_empty() {
        migrations.retain(|m| names.iter().any(|n| n == m.name()));
    }
    if down {
        migrations.reverse();
    }
    let direction = if down { Direction::Down } else { Direction::Up };
    let mut out = std::io::stdout().lock();
    for migration in &migrations {
        let mut text = format!("-- {}\n", migration.name());
        for statement in render_sql(migration.as_ref(), backend, direction).await? {
            text.push_str(&statement);
            text.push('\n');
        }
        if out.write_all(text.as_bytes()).is_err() {
            break; // the reader went away (a pipe into `head`): stop quietly
        }
    }
    Ok(())
}
