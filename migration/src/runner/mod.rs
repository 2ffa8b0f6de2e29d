//! Applies and rolls back migrations safely, on top of sea-orm-migration's
//! `MigratorTrait`: one migrator at a time (a database lock), a ledger of
//! every run with the checksum of the SQL it ran, statement-level recovery
//! where a migration does not run in one transaction (MySQL/MariaDB, and
//! PostgreSQL migrations whose `use_transaction()` is `Some(false)`),
//! previews, targets, baselining and repair.
//!
//! Every migration is first rendered to its statements (see
//! [`crate::render`]); those statements are what a dry run prints, what the
//! checksum covers and what runs.
//!
//! The runner prints nothing: progress and notices are [`Event`]s, sent as
//! `tracing` events (target `gatehouse_migration`) and to the callback in
//! [`Options::on_event`].

/// Runs `$body` (an expression using `$conn`) holding the migration lock: on
/// PostgreSQL and MySQL/MariaDB with `$conn` the runner's connection (on
/// Galera the lease, kept in the runner while the body runs), on SQLite
/// inside the write transaction that is the lock, committed at the end
/// (failure records included).
macro_rules! locked {
    ($runner:expr, $conn:ident => $body:expr) => {{
        match $runner.backend() {
            DbBackend::Sqlite => {
                let txn = $runner.begin_sqlite_write().await?;
                let $conn = &txn;
                let result = $body.await;
                txn.commit().await?;
                result
            }
            _ => {
                let lease = lock::acquire(&$runner.db, $runner.options.lock_timeout, &|e| {
                    $runner.notify(e)
                })
                .await?;
                *$runner.lease() = lease;
                let $conn = &$runner.db;
                let result = $body.await;
                let lease = $runner.lease().take();
                let _ = lock::release(&$runner.db, lease).await;
                result
            }
        }
    }};
}

mod admin;
mod exec;
pub mod ledger;
pub mod lock;
pub mod pooler;
mod rerun;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

use crate::read_only::{self, ReadOnly};
use crate::render::{Direction, checksum, render, to_sql};
use ledger::Record;
use pooler::{Evidence, PoolMode};

/// Why a run that writes (`up`, `down`, `baseline`, `repair`, `fresh`, ...)
/// did not happen or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server accepts no writes (a hot standby, a read-only replica):
    /// point the runner at the primary. Found before anything changed, or
    /// refused by the server.
    #[error("{0}")]
    ReadOnly(ReadOnly),
    /// Any other failure: a refused or failed migration, a lock timeout, a
    /// database error.
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for Error {
    /// A read-only refusal becomes [`Error::ReadOnly`]; anything else stays a `DbErr`.
    fn from(err: DbErr) -> Self {
        if read_only::is_refusal(&err) {
            Self::ReadOnly(ReadOnly::Refused)
        } else {
            Self::Db(err)
        }
    }
}

impl From<Error> for DbErr {
    /// For callers whose errors are `DbErr`s: [`Error::ReadOnly`] becomes
    /// `DbErr::Migration` with its message.
    fn from(err: Error) -> Self {
        match err {
            Error::ReadOnly(read_only) => DbErr::Migration(read_only.to_string()),
            Error::Db(err) => err,
        }
    }
}

/// How a run behaves.
#[derive(Clone, Default)]
pub struct Options {
    /// Longest wait for another migrator's lock; `None` waits as long as it takes.
    pub lock_timeout: Option<Duration>,
    /// Longest a single statement may run (PostgreSQL, MariaDB); `None` for no limit.
    pub statement_timeout: Option<Duration>,
    /// Apply even though an applied migration's SQL changed since.
    pub allow_changed: bool,
    /// Whose migrations the database holds besides the migrator's.
    pub ownership: Ownership,
    /// Called with every [`Event`] (besides the `tracing` event), e.g. to
    /// print progress; `None` for none.
    pub on_event: Option<OnEvent>,
    /// How the connection's URL is pooled, as the application declares it
    /// ([`pooler::POOL_MODE_VAR`]): [`PoolMode::Transaction`] is refused
    /// before connecting. Undeclared transaction pooling is detected anyway
    /// ([`pooler::refuse_transaction_pooling`]).
    pub pool_mode: PoolMode,
    /// Where the connection's URL came from, for messages, e.g.
    /// `DATABASE_MIGRATION_URL`; `None` says `DATABASE_URL`.
    pub url_var: Option<&'static str>,
}

impl Options {
    /// The name messages give the connection's URL.
    fn url_var(&self) -> &'static str {
        self.url_var.unwrap_or("DATABASE_URL")
    }

    /// Refuses a connection declared to pool per transaction.
    fn refuse_declared_pooling(&self) -> Result<(), DbErr> {
        match self.pool_mode {
            PoolMode::Transaction => Err(pooler::transaction_pooling_error(
                self.url_var(),
                Evidence::Declared,
            )),
            PoolMode::Session => Ok(()),
        }
    }
}

/// A callback for the runner's [`Event`]s.
pub type OnEvent = Arc<dyn Fn(&Event) + Send + Sync>;

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("lock_timeout", &self.lock_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("allow_changed", &self.allow_changed)
            .field("ownership", &self.ownership)
            .field("on_event", &self.on_event.as_ref().map(|_| "callback"))
            .field("pool_mode", &self.pool_mode)
            .field("url_var", &self.url_var)
            .finish()
    }
}

/// Whether the migrator holds every migration of the database, and so what
/// an applied migration it does not contain is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// The migrator holds every migration (an application's migrator, with
    /// gatehouse's first): an applied migration it lacks was applied by a
    /// newer build, [`State::MissingFromCode`], and `up` refuses.
    #[default]
    Whole,
    /// The migrator holds only its own part of the database's migrations
    /// (gatehouse's [`crate::Migrator`] on an application's database): an
    /// applied migration it lacks is the application's,
    /// [`State::Application`], listed but neither checked nor refused.
    Part,
}

/// Progress and notices of a run. `Display` gives the line the CLI prints.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A migration was applied.
    Applied {
        /// The migration's name.
        name: String,
        /// How long running and recording it took.
        elapsed: Duration,
    },
    /// A migration was rolled back.
    RolledBack {
        /// The migration's name.
        name: String,
        /// How long running and recording it took.
        elapsed: Duration,
    },
    /// A statement-wise migration continues after statements that ran before.
    Resuming {
        /// The migration's name.
        name: String,
        /// Statements that ran before (1 to `done`).
        done: usize,
        /// How many statements the migration has.
        total: usize,
    },
    /// A statement-wise migration continues after a run that stopped without
    /// recording its end: the statements whose effect is unknown run again in
    /// forms that are safe to repeat (see the runner's recovery rules).
    Recovering {
        /// The migration's name.
        name: String,
        /// The first statement that runs again (1-based).
        from: usize,
        /// The last statement whose effect was unknown (1-based).
        uncertain_to: usize,
        /// How many statements the migration has.
        total: usize,
    },
    /// Another migrator holds the lock; the run waits (said once per wait).
    Waiting {
        /// `true` on SQLite, whose lock is the database's write lock.
        write_lock: bool,
    },
    /// The lock was taken after waiting.
    LockAcquired {
        /// How long the run waited for it.
        waited: Duration,
    },
    /// `fresh` dropped a table.
    Dropped {
        /// The table's name.
        table: String,
    },
}

impl Event {
    /// Whether this is a notice about waiting (the CLI prints those on stderr).
    pub fn is_notice(&self) -> bool {
        matches!(self, Self::Waiting { .. } | Self::LockAcquired { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Applied { name, elapsed } => {
                write!(f, "Applied     {name} ({} ms)", elapsed.as_millis())
            }
            Self::RolledBack { name, elapsed } => {
                write!(f, "Rolled back {name} ({} ms)", elapsed.as_millis())
            }
            Self::Resuming { name, done, total } => write!(
                f,
                "Resuming   {name} at statement {} of {total} (statements 1 to {done} ran before and are unchanged)",
                done + 1
            ),
            Self::Recovering {
                name,
                from,
                uncertain_to,
                total,
            } => write!(
                f,
                "Recovering {name}: its last run stopped without recording its end; statements {from} \
                 to {uncertain_to} of {total} run again in forms safe to repeat"
            ),
            Self::Waiting { write_lock: true } => f.write_str(
                "waiting for another migrator to finish (it holds the database's write lock)...",
            ),
            Self::Waiting { write_lock: false } => f.write_str(
                "waiting for another migrator to finish (it holds the migration lock)...",
            ),
            Self::LockAcquired { waited } => {
                write!(f, "lock acquired after {:.1} s", waited.as_secs_f64())
            }
            Self::Dropped { table } => write!(f, "Dropped     {table}"),
        }
    }
}

/// How far `up` or `down` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every pending (up) or applied (down) migration.
    All,
    /// The next `n`.
    Count(u32),
    /// Up to and including this migration (up), or back to it, keeping it (down).
    To(String),
}

/// A migration rendered for the connected backend.
#[derive(Clone, Debug)]
pub struct Step {
    /// The migration's name.
    pub name: String,
    /// The statements the migration executes, with their bound values (see
    /// [`crate::render::render`]); these are what runs.
    pub statements: Vec<Statement>,
    /// The statements as SQL text, as `migrate sql` and dry runs print them.
    pub sql: Vec<String>,
    /// SHA-256 of `sql`.
    pub checksum: String,
    /// The migration's `use_transaction()`: `Some(false)` runs it statement
    /// by statement on PostgreSQL too (for `CREATE INDEX CONCURRENTLY` and
    /// batched backfills).
    pub use_transaction: Option<bool>,
}

impl Step {
    /// Whether this step commits statement by statement on `backend`, with
    /// the ledger recording how far it got: always on MySQL/MariaDB (DDL
    /// commits by itself), on PostgreSQL when the migration opts out of a
    /// transaction. SQLite always runs a step inside the run's transaction.
    pub fn statementwise(&self, backend: DbBackend) -> bool {
        match backend {
            DbBackend::MySql => true,
            DbBackend::Postgres => self.use_transaction == Some(false),
            _ => false,
        }
    }
}

/// Where a migration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Applied, and its SQL is what was recorded.
    Applied,
    /// Applied, with no ledger record to check it against (applied by plain sea-orm-migration).
    AppliedWithoutRecord,
    /// Applied, but its SQL differs from what was recorded then.
    Changed,
    /// Not applied.
    Pending,
    /// Not applied; its last run failed and was not repaired.
    Failed,
    /// Not applied; its last run stopped part way at a statement the ledger
    /// cannot tell (a statement-wise run: the migrator died or lost its connection).
    Interrupted,
    /// Not applied; another migrator is running it now.
    Running,
    /// Recorded as applied, but this build has no such migration.
    MissingFromCode,
    /// Applied, and another migrator's: the application's, when the runner's
    /// migrator is a part ([`Ownership::Part`]). Not checked.
    Application,
}

impl State {
    /// The state's name as the CLI's JSON output prints it: `applied`,
    /// `applied-without-record`, `changed`, `pending`, `failed`,
    /// `interrupted`, `running`, `missing-from-code` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::AppliedWithoutRecord => "applied-without-record",
            Self::Changed => "changed",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Running => "running",
            Self::MissingFromCode => "missing-from-code",
            Self::Application => "application",
        }
    }

    /// Whether the database has this migration applied.
    pub fn is_applied(self) -> bool {
        matches!(
            self,
            Self::Applied
                | Self::AppliedWithoutRecord
                | Self::Changed
                | Self::MissingFromCode
                | Self::Application
        )
    }

    /// Whether `verify` counts this state as a problem.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Self::AppliedWithoutRecord
                | Self::Changed
                | Self::Failed
                | Self::Interrupted
                | Self::MissingFromCode
        )
    }
}

/// One migration's standing.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The migration's name.
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// When it was applied, as sea-orm's migration table records it (to the
    /// second); `None` when it is not applied.
    pub applied_at: Option<DateTime<Utc>>,
    /// Checksum of the SQL this build renders (none for a migration missing from code).
    pub checksum: Option<String>,
    /// Checksum recorded when it was applied.
    pub recorded_checksum: Option<String>,
    /// The unresolved failed run, if any.
    pub failure: Option<Record>,
}

/// A migrator bound to one database connection of its own.
///
/// ```no_run
/// # async fn deploy(db: sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
/// use gatehouse_migration::runner::{Options, Runner, Target};
///
/// // `db` is the application's pool; the runner takes one connection of its own for the lock.
/// let runner = Runner::<gatehouse_migration::Migrator>::from_connection(db, None, Options::default()).await?;
/// let applied = runner.up(&Target::All).await?;
/// runner.close().await;
/// # Ok(()) }
/// ```
pub struct Runner<M> {
    db: DatabaseConnection,
    /// The Galera lease while a run holds it.
    lease: std::sync::Mutex<Option<lock::Lease>>,
    /// Whether `db` was opened by the runner (and so is closed by it).
    owned: bool,
    options: Options,
    // `fn() -> M`: the runner holds no `M`, so it is `Send + Sync` whatever `M` is.
    _migrator: PhantomData<fn() -> M>,
}

impl<M: MigratorTrait> Runner<M> {
    /// Opens the runner's single connection to `url`. The migration lock and
    /// session settings live on a connection, so the runner uses exactly one,
    /// and refuses a URL that goes through transaction pooling (see
    /// [`pooler`]) before it changes anything.
    ///
    /// # Errors
    /// A database error when the server cannot be reached;
    /// [`DbErr::Migration`] ([`pooler::transaction_pooling_error`]) for
    /// transaction pooling, declared or detected.
    // `schema` only concerns PostgreSQL.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub async fn connect(url: &str, schema: Option<&str>, options: Options) -> Result<Self, DbErr> {
        options.refuse_declared_pooling()?;
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .test_before_acquire(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        #[cfg(feature = "postgres")]
        if let Some(sql) = postgres_settings(schema, options.statement_timeout) {
            connect.map_sqlx_postgres_pool_opts(move |o| with_settings(o, sql.clone()));
        }
        // A short busy timeout lets the lock wait say that it waits and honour --lock-timeout.
        #[cfg(feature = "sqlite")]
        connect.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_millis(250)));
        // A driver's message may quote the URL: never with its secrets.
        let db = Database::connect(connect).await.map_err(|err| {
            DbErr::Conn(sea_orm_migration::sea_orm::RuntimeErr::Internal(
                crate::redact::text(&err.to_string(), url),
            ))
        })?;
        if let Err(err) = pooler::refuse_transaction_pooling(&db, options.url_var()).await {
            let _ = db.close().await;
            return Err(err);
        }
        if db.get_database_backend() == DbBackend::MySql
            && let Some(timeout) = options.statement_timeout
        {
            set_mysql_statement_timeout(&db, timeout).await?;
        }
        Ok(Self {
            db,
            owned: true,
            lease: Default::default(),
            options,
            _migrator: PhantomData,
        })
    }

    /// A runner for the database `db` is connected to, e.g. the
    /// application's pool. The migration lock and session settings live on
    /// one connection, and sea-orm pins none outside a transaction, so on
    /// PostgreSQL, MySQL/MariaDB and a SQLite file the runner opens one
    /// connection of its own with `db`'s connect options (server,
    /// credentials, TLS, file; on PostgreSQL the search path is `schema`, or
    /// else `db`'s current schema). An in-memory SQLite database is seen by
    /// `db`'s connections only, so the runner uses `db` itself, which must be
    /// a pool of one connection (sea-orm's default for SQLite); its lock is
    /// the write transaction a run holds, so it is safe there too. A `db`
    /// that goes through transaction pooling is refused (see [`pooler`]).
    ///
    /// # Errors
    /// [`DbErr::Conn`] when the connection cannot be opened, or `db` is an
    /// in-memory SQLite pool of several connections, or no sqlx connection;
    /// [`DbErr::Migration`] for transaction pooling, as [`Runner::connect`].
    pub async fn from_connection(
        db: DatabaseConnection,
        schema: Option<&str>,
        options: Options,
    ) -> Result<Self, DbErr> {
        options.refuse_declared_pooling()?;
        pooler::refuse_transaction_pooling(&db, options.url_var()).await?;
        let (db, owned) = dedicated(db, schema, &options).await?;
        if db.get_database_backend() == DbBackend::MySql
            && let Some(timeout) = options.statement_timeout
        {
            set_mysql_statement_timeout(&db, timeout).await?;
        }
        Ok(Self {
            db,
            owned,
            lease: Default::default(),
            options,
            _migrator: PhantomData,
        })
    }

    /// The Galera lease slot (a poisoned lock still holds a valid lease).
    pub(crate) fn lease(&self) -> std::sync::MutexGuard<'_, Option<lock::Lease>> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses a server that accepts no writes (a hot standby, a read-only
    /// replica) before anything changes; every run that writes calls it first.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] saying why; a database error reading the settings.
    pub async fn ensure_writable(&self) -> Result<(), Error> {
        match read_only::detect(&self.db).await? {
            Some(reason) => {
                tracing::info!(target: "gatehouse_migration", "refused: {reason}");
                Err(Error::ReadOnly(reason))
            }
            None => Ok(()),
        }
    }

    /// Sends `event` to `tracing` and to [`Options::on_event`].
    pub(crate) fn notify(&self, event: Event) {
        tracing::info!(target: "gatehouse_migration", "{event}");
        if let Some(on_event) = &self.options.on_event {
            on_event(&event);
        }
    }

    /// The runner's connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The backend of the runner's connection.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Closes the runner's own connection, releasing any lock (a connection
    /// the caller gave, an in-memory SQLite pool, stays open).
    pub async fn close(self) {
        if self.owned {
            let _ = self.db.close().await;
        }
    }

    /// Every migration of `M` rendered for this backend in `direction`.
    ///
    /// # Errors
    /// A migration that cannot be rendered.
    pub async fn steps(&self, direction: Direction) -> Result<Vec<Step>, DbErr> {
        steps::<M>(self.backend(), direction).await
    }

    /// Where every migration stands, without changing anything (no table is created).
    ///
    /// # Errors
    /// A database error.
    pub async fn status(&self) -> Result<Vec<Entry>, DbErr> {
        Ok(self.read_standing(&self.db, false).await?.1)
    }

    /// The up steps and where each migration stands, read on `conn` by a
    /// caller holding the migration lock.
    pub(super) async fn standing<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<(Vec<Step>, Vec<Entry>), DbErr> {
        self.read_standing(conn, true).await
    }

    async fn read_standing<C: ConnectionTrait>(
        &self,
        conn: &C,
        locked: bool,
    ) -> Result<(Vec<Step>, Vec<Entry>), DbErr> {
        let applied = applied_versions::<M, _>(conn).await?;
        let records = ledger::records(conn).await?;
        let steps = self.steps(Direction::Up).await?;
        // A run still marked running is live only while another migrator holds the lock.
        let live = !locked
            && records.iter().any(|r| r.status == ledger::RUNNING)
            && lock::held_elsewhere(&self.db).await?;
        let entries = entries(&steps, &applied, &records, live, self.options.ownership);
        Ok((steps, entries))
    }
}

/// The connection a runner made from `db` uses, and whether it opened it.
// `schema` and `options` only concern PostgreSQL's own connection.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
async fn dedicated(
    db: DatabaseConnection,
    schema: Option<&str>,
    options: &Options,
) -> Result<(DatabaseConnection, bool), DbErr> {
    use sea_orm_migration::sea_orm::DatabaseConnectionType as Kind;
    use sea_orm_migration::sea_orm::sqlx;
    fn conn_err(message: String) -> DbErr {
        DbErr::Conn(sea_orm_migration::sea_orm::RuntimeErr::Internal(message))
    }
    fn single<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
    }
    let opened = |err: sqlx::Error| {
        conn_err(format!(
            "cannot open the migration runner's own connection: {err}"
        ))
    };
    match &db.inner {
        #[cfg(feature = "postgres")]
        Kind::SqlxPostgresPoolConnection(_) => {
            let schema = match schema {
                Some(schema) => schema.to_owned(),
                None => db
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT current_schema()::text",
                    ))
                    .await?
                    .map(|row| row.try_get_by_index::<Option<String>>(0))
                    .transpose()?
                    .flatten()
                    .unwrap_or_else(|| "public".to_owned()),
            };
            let settings =
                postgres_settings(Some(&schema), options.statement_timeout).unwrap_or_default();
            let connect = (*db.get_postgres_connection_pool().connect_options()).clone();
            let pool = with_settings(single(), settings)
                .connect_with(connect)
                .await
                .map_err(opened)?;
            Ok((
                sea_orm_migration::sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                true,
            ))
        }
        #[cfg(feature = "mysql")]
        Kind::SqlxMySqlPoolConnection(_) => {
            let connect = (*db.get_mysql_connection_pool().connect_options()).clone();
            let pool = single().connect_with(connect).await.map_err(opened)?;
            Ok((
                sea_orm_migration::sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool(pool),
                true,
            ))
        }
        #[cfg(feature = "sqlite")]
        Kind::SqlxSqlitePoolConnection(_) => {
            let file = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT file FROM pragma_database_list WHERE name = 'main'",
                ))
                .await?
                .map(|row| row.try_get_by_index::<Option<String>>(0))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let pool = db.get_sqlite_connection_pool();
            if file.is_empty() {
                let max = pool.options().get_max_connections();
                if max > 1 {
                    return Err(conn_err(format!(
                        "the in-memory SQLite database's pool has {max} connections, and the \
                         migration runner needs the one connection that sees it: connect with \
                         ConnectOptions::max_connections(1) (sea-orm's default for SQLite)"
                    )));
                }
                return Ok((db, false));
            }
            // A short busy timeout lets the lock wait say that it waits and honour the lock timeout.
            let connect = (*pool.connect_options())
                .clone()
                .busy_timeout(Duration::from_millis(250));
            let pool = single().connect_with(connect).await.map_err(opened)?;
            Ok((
                sea_orm_migration::sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                true,
            ))
        }
        _ => Err(conn_err(
            "the migration runner needs a PostgreSQL, MySQL/MariaDB or SQLite connection \
             through sqlx"
                .to_owned(),
        )),
    }
}

/// The runner's PostgreSQL session settings as one simple query: `SET`s run
/// on each connection it opens, rather than the `options` startup
/// parameter, which PgBouncer refuses (`unsupported startup parameter`).
#[cfg(feature = "postgres")]
fn postgres_settings(schema: Option<&str>, statement_timeout: Option<Duration>) -> Option<String> {
    let mut sql = Vec::new();
    if let Some(schema) = schema {
        sql.push(format!(
            "SET search_path = \"{}\"",
            schema.replace('"', "\"\"")
        ));
    }
    if let Some(timeout) = statement_timeout {
        sql.push(format!("SET statement_timeout = {}", timeout.as_millis()));
    }
    (!sql.is_empty()).then(|| sql.join("; "))
}

/// `pool` running `settings` (see [`postgres_settings`]) on each new connection.
#[cfg(feature = "postgres")]
fn with_settings(
    pool: sea_orm_migration::sea_orm::sqlx::pool::PoolOptions<
        sea_orm_migration::sea_orm::sqlx::Postgres,
    >,
    settings: String,
) -> sea_orm_migration::sea_orm::sqlx::pool::PoolOptions<sea_orm_migration::sea_orm::sqlx::Postgres>
{
    use sea_orm_migration::sea_orm::sqlx;
    if settings.is_empty() {
        return pool;
    }
    pool.after_connect(move |conn, _| {
        let sql = settings.clone();
        Box::pin(async move {
            sqlx::Executor::execute(conn, sqlx::AssertSqlSafe(sql))
                .await
                .map(|_| ())
        })
    })
}

/// Renders every migration of `M` for `backend`.
///
/// # Errors
/// A migration that cannot be rendered.
pub async fn steps<M: MigratorTrait>(
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<Step>, DbErr> {
    let mut steps = Vec::new();
    for migration in M::migrations() {
        let statements = render(migration.as_ref(), backend, direction).await?;
        let sql: Vec<String> = statements.iter().map(to_sql).collect();
        steps.push(Step {
            name: migration.name().to_owned(),
            checksum: checksum(&sql),
            statements,
            sql,
            use_transaction: migration.use_transaction(),
        });
    }
    Ok(steps)
}

async fn set_mysql_statement_timeout(
    db: &DatabaseConnection,
    timeout: Duration,
) -> Result<(), DbErr> {
    let version = db
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT VERSION()".to_owned(),
        ))
        .await?
        .map(|row| row.try_get_by_index::<String>(0))
        .transpose()?
        .unwrap_or_default();
    // MariaDB bounds every statement; MySQL's max_execution_time bounds SELECTs only.
    let sql = if version.contains("MariaDB") {
        format!(
            "SET SESSION max_statement_time = {:.3}",
            timeout.as_secs_f64()
        )
    } else {
        format!("SET SESSION max_execution_time = {}", timeout.as_millis())
    };
    db.execute_raw(Statement::from_string(DbBackend::MySql, sql))
        .await
        .map(|_| ())
}

/// Applied migrations as sea-orm records them: version to applied_at.
/// Empty when sea-orm's table does not exist yet; creates nothing.
async fn applied_versions<M: MigratorTrait, C: ConnectionTrait>(
    db: &C,
) -> Result<BTreeMap<String, DateTime<Utc>>, DbErr> {
    let table = M::migration_table_name();
    if !has_table(db, &table.to_string()).await? {
        return Ok(BTreeMap::new());
    }
    let stmt = Query::select()
        .columns([Alias::new("version"), Alias::new("applied_at")])
        .from(table)
        .to_owned();
    let mut applied = BTreeMap::new();
    for row in db.query_all(&stmt).await? {
        let version: String = row.try_get("", "version")?;
        let at: i64 = row.try_get("", "applied_at")?;
        applied.insert(
            version,
            DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default(),
        );
    }
    Ok(applied)
}

/// Whether `table` exists in the connection's database (or PostgreSQL schema).
pub(super) async fn has_table<C: ConnectionTrait>(db: &C, table: &str) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
        DbBackend::MySql => {
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
        }
        _ => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await?
        .ok_or_else(|| DbErr::Custom("COUNT returned no row".into()))?;
    Ok(row.try_get_by_index::<i64>(0)? > 0)
}

/// Joins code, sea-orm's record and the ledger into one entry per migration;
/// `live`: another migrator holds the lock, so a run marked running is running.
fn entries(
    steps: &[Step],
    applied: &BTreeMap<String, DateTime<Utc>>,
    records: &[Record],
    live: bool,
    ownership: Ownership,
) -> Vec<Entry> {
    let latest = |name: &str| records.iter().rev().find(|r| r.name == name);
    let latest_success = |name: &str| {
        records
            .iter()
            .rev()
            .find(|r| r.name == name && r.status == ledger::SUCCEEDED)
    };
    let mut out = Vec::new();
    for step in steps {
        let applied_at = applied.get(&step.name).copied();
        let recorded = latest_success(&step.name)
            .filter(|r| r.direction != ledger::RunKind::Down.as_str())
            .map(|r| r.checksum.clone());
        let failure = latest(&step.name)
            .filter(|r| r.is_unresolved_failure())
            .cloned();
        let state = match (applied_at, &recorded) {
            (Some(_), Some(sum)) if *sum == step.checksum => State::Applied,
            (Some(_), Some(_)) => State::Changed,
            (Some(_), None) => State::AppliedWithoutRecord,
            (None, _) => match &failure {
                Some(f) if live && f.status == ledger::RUNNING => State::Running,
                Some(f) if f.is_unfinished() => State::Interrupted,
                Some(_) => State::Failed,
                None => State::Pending,
            },
        };
        out.push(Entry {
            name: step.name.clone(),
            state,
            applied_at,
            checksum: Some(step.checksum.clone()),
            recorded_checksum: recorded,
            failure,
        });
    }
    for (name, at) in applied {
        if !steps.iter().any(|s| &s.name == name) {
            out.push(Entry {
                name: name.clone(),
                state: match ownership {
                    Ownership::Whole => State::MissingFromCode,
                    Ownership::Part => State::Application,
                },
                applied_at: Some(*at),
                checksum: None,
                recorded_checksum: latest_success(name).map(|r| r.checksum.clone()),
                failure: None,
            });
        }
    }
    out
}
