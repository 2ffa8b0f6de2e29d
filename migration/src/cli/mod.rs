//! The migration CLI: one implementation behind `sea-orm-cli migrate`,
//! `cargo run -p migration` and `gatehouse migrate`.
//!
//! It accepts what `sea-orm-cli migrate` passes on (`up [-n N]`, `down
//! [-n N]`, `status`, `fresh`, `refresh`, `reset`, `-v`, `DATABASE_URL`,
//! `DATABASE_SCHEMA`), falls back to a SQLite file when no database is named,
//! and says what it does.

use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::{MigrationStatus, MigratorTrait};

use crate::Migrator;
use crate::render::{Direction, render_sql};

/// Where the database lives when neither `--database-url` nor `DATABASE_URL` says.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db?mode=rwc";

/// Migrate the gatehouse schema.
#[derive(Parser, Debug)]
#[command(name = "migration", version, about = "Migrate the gatehouse schema")]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which database to migrate.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Database URL: postgres://, mysql:// (also MariaDB) or sqlite://.
    /// Defaults to the SQLite file ./gatehouse.db.
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// PostgreSQL schema to migrate (default: the connection's search path).
    #[arg(short = 's', long, env = "DATABASE_SCHEMA", global = true)]
    pub database_schema: Option<String>,

    /// Log every statement sea-orm runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Apply pending migrations (all, or the next N).
    Up {
        /// Number of pending migrations to apply.
        #[arg(short, long)]
        num: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or the last N).
    Down {
        /// Number of applied migrations to roll back.
        #[arg(short, long, default_value_t = 1)]
        num: u32,
    },
    /// List every migration as applied (with when) or pending.
    Status,
    /// Drop every table, then apply all migrations.
    Fresh,
    /// Roll back all applied migrations, then apply them all again.
    Refresh,
    /// Roll back all applied migrations.
    Reset,
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
}

/// A backend to render SQL for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Mysql,
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

/// Runs the CLI with the process arguments; what a `main` calls.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

/// Runs a parsed command line to completion on a fresh Tokio runtime.
pub fn run(cli: Cli) -> ExitCode {
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
    runtime.block_on(run_async(cli))
}

/// Runs a parsed command line on the caller's runtime.
pub async fn run_async(cli: Cli) -> ExitCode {
    let _ = dotenvy::dotenv();
    init_logging(cli.connection.verbose);
    if let Some(Command::Sql {
        backend,
        down,
        names,
    }) = &cli.command
    {
        return match print_sql((*backend).into(), *down, names).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        };
    }
    let db = match connect(&cli.connection).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Up { num: None });
    let result = execute(&db, &command).await;
    let _ = db.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: bool) {
    let filter = if verbose {
        "sea_orm=info,sea_orm_migration=info,sqlx=info"
    } else {
        "warn"
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

/// The URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                if credentials.contains(':') {
                    format!("{scheme}://{user}:***@{host}")
                } else {
                    format!("{scheme}://{user}@{host}")
                }
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Connects to the database the arguments name, checking the URL first so a
/// typo is reported as such rather than as a driver error.
///
/// # Errors
/// A message saying which setting is wrong and what to do.
pub async fn connect(args: &ConnectionArgs) -> Result<DatabaseConnection, String> {
    let url = match args.database_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => url.to_owned(),
        _ => {
            eprintln!(
                "DATABASE_URL is not set; using the SQLite file ./gatehouse.db \
                 (set DATABASE_URL or pass --database-url for PostgreSQL or MySQL)"
            );
            DEFAULT_DATABASE_URL.to_owned()
        }
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
        return Err(format!(
            "unsupported database URL scheme `{scheme}:` in DATABASE_URL ({}); \
             use postgres://, mysql:// or sqlite://",
            redact(&url)
        ));
    }
    let mut options = ConnectOptions::new(url.clone());
    options
        .sqlx_logging(args.verbose)
        .connect_timeout(std::time::Duration::from_secs(10))
        .acquire_timeout(std::time::Duration::from_secs(30));
    if let Some(schema) = &args.database_schema {
        options.set_schema_search_path(schema.clone());
    }
    Database::connect(options).await.map_err(|err| {
        format!(
            "cannot connect to {}: {err}. Check that the server is running and that \
             DATABASE_URL (or --database-url) is right.",
            redact(&url)
        )
    })
}

/// Runs one migration command against an open connection, printing progress.
///
/// # Errors
/// The database error of the step that failed.
pub async fn execute(db: &DatabaseConnection, command: &Command) -> Result<(), DbErr> {
    match command {
        Command::Up { num } => up(db, *num).await,
        Command::Down { num } => down(db, Some(*num)).await,
        Command::Status => status(db).await,
        Command::Fresh => {
            println!("Dropping every table in the database");
            Migrator::fresh(db).await?;
            println!("Applied all {} migrations", Migrator::migrations().len());
            Ok(())
        }
        Command::Refresh => {
            down(db, None).await?;
            up(db, None).await
        }
        Command::Reset => {
            down(db, None).await?;
            Migrator::uninstall(db).await
        }
        Command::Sql {
            backend,
            down,
            names,
        } => print_sql((*backend).into(), *down, names).await,
    }
}

/// Prints the statements of the named migrations (all when `names` is
/// empty), in the order they would run, each ending in `;`.
async fn print_sql(backend: DbBackend, down: bool, names: &[String]) -> Result<(), DbErr> {
    let mut migrations = Migrator::migrations();
    if let Some(unknown) = names
        .iter()
        .find(|n| !migrations.iter().any(|m| m.name() == n.as_str()))
    {
        return Err(DbErr::Migration(format!(
            "no migration is named `{unknown}`; `status` lists them"
        )));
    }
    if !names.is_empty() {
        migrations.retain(|m| names.iter().any(|n| n == m.name()));
    }
    if down {
        migrations.reverse();
    }
    let direction = if down { Direction::Down } else { Direction::Up };
    for migration in &migrations {
        println!("-- {}", migration.name());
        for statement in render_sql(migration.as_ref(), backend, direction).await? {
            println!("{statement};");
        }
    }
    Ok(())
}

async fn up(db: &DatabaseConnection, num: Option<u32>) -> Result<(), DbErr> {
    let pending = Migrator::get_pending_migrations(db).await?;
    let todo: Vec<String> = pending
        .iter()
        .take(num.map_or(usize::MAX, |n| n as usize))
        .map(|m| m.name().to_owned())
        .collect();
    if todo.is_empty() {
        println!("Nothing to apply: the database is up to date");
        return Ok(());
    }
    for name in &todo {
        let started = Instant::now();
        Migrator::up(db, Some(1)).await.map_err(|err| {
            DbErr::Migration(format!(
                "migration {name} failed and was not recorded: {err}"
            ))
        })?;
        println!("Applied    {name} ({} ms)", started.elapsed().as_millis());
    }
    println!("Applied {} migration(s)", todo.len());
    Ok(())
}

async fn down(db: &DatabaseConnection, num: Option<u32>) -> Result<(), DbErr> {
    let applied = Migrator::get_applied_migrations(db).await?;
    let todo: Vec<String> = applied
        .iter()
        .rev()
        .take(num.map_or(usize::MAX, |n| n as usize))
        .map(|m| m.name().to_owned())
        .collect();
    if todo.is_empty() {
        println!("Nothing to roll back: no migration is applied");
        return Ok(());
    }
    for name in &todo {
        let started = Instant::now();
        Migrator::down(db, Some(1))
            .await
            .map_err(|err| DbErr::Migration(format!("rolling back {name} failed: {err}")))?;
        println!("Rolled back {name} ({} ms)", started.elapsed().as_millis());
    }
    println!("Rolled back {} migration(s)", todo.len());
    Ok(())
}

async fn status(db: &DatabaseConnection) -> Result<(), DbErr> {
    let records = Migrator::get_migration_models(db).await?;
    let migrations = Migrator::get_migration_with_status(db).await?;
    let width = migrations.iter().map(|m| m.name().len()).max().unwrap_or(0);
    println!("Database: {}", backend_name(db.get_database_backend()));
    let mut applied = 0;
    for migration in &migrations {
        let state = match migration.status() {
            MigrationStatus::Applied => {
                applied += 1;
                let when = records
                    .iter()
                    .find(|r| r.version == migration.name())
                    .and_then(|r| DateTime::<Utc>::from_timestamp(r.applied_at, 0))
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                format!("applied  {when}")
            }
            MigrationStatus::Pending => "pending".to_owned(),
        };
        println!("{:<width$}  {state}", migration.name());
    }
    let total = migrations.len();
    println!(
        "{applied} applied, {} pending, {total} total",
        total - applied
    );
    Ok(())
}

fn backend_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        DbBackend::Sqlite => "SQLite",
        _ => "unknown",
    }
}
