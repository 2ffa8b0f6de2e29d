//! The ledger: one row per migration run in `gatehouse_migrations`, beside
//! sea-orm's own `seaql_migrations` (which stays the record of what is
//! applied, so sea-orm-cli keeps working). A row holds the migration's name,
//! direction, outcome, checksum, execution time and how many statements had
//! run when it succeeded, failed or was interrupted.

use chrono::{DateTime, Utc};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};

use crate::columns::timestamp_utc;

/// Name of the ledger table.
pub const LEDGER_TABLE: &str = "gatehouse_migrations";

#[derive(DeriveIden)]
enum Ledger {
    #[sea_orm(iden = "gatehouse_migrations")]
    Table,
    Id,
    Name,
    Direction,
    Status,
    Checksum,
    StatementsTotal,
    StatementsDone,
    DoneChecksum,
    ExecutedAt,
    ExecutionTimeMs,
    Error,
    RunBy,
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Applies the migration: runs its up statements.
    Up,
    /// Rolls the migration back: runs its down statements.
    Down,
    /// Records the migration as applied without running it (`migrate mark-applied`).
    MarkApplied,
    /// Records the checksum of a migration the database already has, marking
    /// it applied if it was pending (`migrate baseline`).
    Baseline,
}

impl RunKind {
    /// The kind as the ledger's `direction` column stores it: `up`, `down`,
    /// `mark_applied` or `baseline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::MarkApplied => "mark_applied",
            Self::Baseline => "baseline",
        }
    }

    /// Whether this kind of run leaves the migration applied.
    pub fn applies(self) -> bool {
        self != Self::Down
    }
}

/// Outcome of a run, the ledger's `status` column: [`RUNNING`],
/// [`SUCCEEDED`], [`FAILED`], [`INTERRUPTED`] or [`REPAIRED`].
///
/// `running` while a run executes; a `running` row that no migrator holds the
/// lock for is a run that stopped without recording its end (process killed,
/// machine down). `failed`: the database refused a statement, and
/// `statements_done` counts exactly those that ran before it. `interrupted`:
/// the connection failed while a statement ran, so whether that statement
/// took effect is unknown; `statements_done` counts those known to have run.
pub const RUNNING: &str = "running";
/// Outcome of a run that ran to its end (see [`RUNNING`]).
pub const SUCCEEDED: &str = "succeeded";
/// Outcome of a run the database refused a statement of (see [`RUNNING`]).
pub const FAILED: &str = "failed";
/// Outcome of a run whose connection failed while a statement ran (see [`RUNNING`]).
pub const INTERRUPTED: &str = "interrupted";
/// Outcome of a failed, interrupted or unfinished (`running`) run cleared by
/// `migrate repair` after the database was fixed by hand.
pub const REPAIRED: &str = "repaired";

/// Statuses of runs that stopped part way and were not repaired since.
const UNRESOLVED: [&str; 3] = [FAILED, RUNNING, INTERRUPTED];

/// One ledger row.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Record {
    /// The row's id, increasing with every run.
    pub id: i64,
    /// The migration's name.
    pub name: String,
    /// What the run did: a [`RunKind::as_str`].
    pub direction: String,
    /// How the run ended: [`RUNNING`], [`SUCCEEDED`], [`FAILED`],
    /// [`INTERRUPTED`] or [`REPAIRED`].
    pub status: String,
    /// SHA-256 (lowercase hex) of the migration's rendered SQL, all of its statements.
    pub checksum: String,
    /// How many statements the migration has.
    pub statements_total: i32,
    /// How many statements had run when the run ended: for a failure, those
    /// before the refused statement (undone again where the migration ran in
    /// one transaction); 0 for `mark_applied` and `baseline`, which run none.
    pub statements_done: i32,
    /// SHA-256 of the first `statements_done` statements' SQL, recorded when
    /// a run closes after starting as [`RUNNING`] (or is settled by `repair
    /// --statements-done`); `None` for a run recorded in one piece or one that
    /// has not recorded its end.
    pub done_checksum: Option<String>,
    /// When the run started (or, for one recorded in one piece, was recorded).
    pub executed_at: DateTime<Utc>,
    /// How long the run took, in milliseconds; `None` for a run that has not
    /// recorded its end.
    pub execution_time_ms: Option<i64>,
    /// What went wrong, for a run that failed or was interrupted; for one
    /// settled by `repair --statements-done`, a note saying so.
    pub error: Option<String>,
    /// Who ran it: `host:pid` of the migrating process.
    pub run_by: String,
}

impl Record {
    /// A run that stopped part way and was not repaired since.
    pub fn is_unresolved_failure(&self) -> bool {
        UNRESOLVED.contains(&self.status.as_str())
    }

    /// A run that stopped where the ledger cannot tell how many statements
    /// took effect (or, while a migrator holds the lock, one still running).
    pub fn is_unfinished(&self) -> bool {
        self.status == RUNNING || self.status == INTERRUPTED
    }
}

/// Creates the ledger table if it does not exist.
///
/// # Errors
/// A database error.
pub async fn install<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut table = Table::create();
    table
        .table(Ledger::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(Ledger::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(ColumnDef::new(Ledger::Name).string_len(255).not_null())
        .col(ColumnDef::new(Ledger::Direction).string_len(16).not_null())
        .col(ColumnDef::new(Ledger::Status).string_len(16).not_null())
        .col(ColumnDef::new(Ledger::Checksum).string_len(64).not_null())
        .col(ColumnDef::new(Ledger::StatementsTotal).integer().not_null())
        .col(ColumnDef::new(Ledger::StatementsDone).integer().not_null())
        .col(ColumnDef::new(Ledger::DoneChecksum).string_len(64).null())
        .col(timestamp_utc(backend, Ledger::ExecutedAt))
        .col(ColumnDef::new(Ledger::ExecutionTimeMs).big_integer().null())
        .col(ColumnDef::new(Ledger::Error).text().null())
        .col(ColumnDef::new(Ledger::RunBy).string_len(255).not_null());
    if backend == DbBackend::MySql {
        table
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_unicode_ci");
    }
    db.execute(&table).await?;
    Ok(())
}

/// Whether the ledger table exists.
///
/// # Errors
/// A database error.
pub async fn exists<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    super::has_table(db, LEDGER_TABLE).await
}

/// Every ledger row, oldest first; none when the ledger does not exist yet.
///
/// # Errors
/// A database error.
pub async fn records<C: ConnectionTrait>(db: &C) -> Result<Vec<Record>, DbErr> {
    if !exists(db).await? {
        return Ok(Vec::new());
    }
    let stmt = Query::select()
        .columns([
            Ledger::Id,
            Ledger::Name,
            Ledger::Direction,
            Ledger::Status,
            Ledger::Checksum,
            Ledger::StatementsTotal,
            Ledger::StatementsDone,
            Ledger::DoneChecksum,
            Ledger::ExecutedAt,
            Ledger::ExecutionTimeMs,
            Ledger::Error,
            Ledger::RunBy,
        ])
        .from(Ledger::Table)
        .order_by(Ledger::Id, Order::Asc)
        .to_owned();
    db.query_all(&stmt)
        .await?
        .iter()
        .map(|row| Record::from_query_result(row, ""))
        .collect()
}

/// Records the start (or, with `status`, the whole) of a run; returns its id.
///
/// # Errors
/// A database error.
#[allow(clippy::too_many_arguments)]
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    name: &str,
    kind: RunKind,
    status: &str,
    checksum: &str,
    statements_total: usize,
    statements_done: usize,
    execution_time_ms: Option<i64>,
    error: Option<&str>,
) -> Result<i64, DbErr> {
    let stmt = Query::insert()
        .into_table(Ledger::Table)
        .columns([
            Ledger::Name,
            Ledger::Direction,
            Ledger::Status,
            Ledger::Checksum,
            Ledger::StatementsTotal,
            Ledger::StatementsDone,
            Ledger::ExecutedAt,
            Ledger::ExecutionTimeMs,
            Ledger::Error,
            Ledger::RunBy,
        ])
        .values_panic([
            name.into(),
            kind.as_str().into(),
            status.into(),
            checksum.into(),
            (statements_total as i32).into(),
            (statements_done as i32).into(),
            Utc::now().into(),
            execution_time_ms.into(),
            error.map(str::to_owned).into(),
            run_by().into(),
        ])
        .to_owned();
    db.execute(&stmt).await?;
    // The newest row of this name is ours: runs are serialized by the migration lock.
    let id = Query::select()
        .expr(Expr::col(Ledger::Id).max())
        .from(Ledger::Table)
        .and_where(Expr::col(Ledger::Name).eq(name))
        .to_owned();
    let row = db
        .query_one(&id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(LEDGER_TABLE.into()))?;
    row.try_get_by_index::<i64>(0)
}

/// Closes run `id` with its outcome and how many statements had run, with
/// the checksum of those statements.
///
/// # Errors
/// A database error.
#[allow(clippy::too_many_arguments)]
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    id: i64,
    status: &str,
    statements_done: usize,
    done_checksum: &str,
    execution_time_ms: i64,
    error: Option<&str>,
) -> Result<(), DbErr> {
    let stmt = Query::update()
        .table(Ledger::Table)
        .value(Ledger::Status, status)
        .value(Ledger::StatementsDone, statements_done as i32)
        .value(Ledger::DoneChecksum, done_checksum)
        .value(Ledger::ExecutionTimeMs, execution_time_ms)
        .value(Ledger::Error, error.map(str::to_owned))
        .and_where(Expr::col(Ledger::Id).eq(id))
        .to_owned();
    db.execute(&stmt).await.map(|_| ())
}

/// Turns the unfinished run `id` into a failure that stopped after
/// `statements_done` statements, as a person established, so that the next
/// run continues after them.
///
/// # Errors
/// A database error.
pub async fn settle<C: ConnectionTrait>(
    db: &C,
    id: i64,
    statements_done: usize,
    done_checksum: &str,
    note: &str,
) -> Result<(), DbErr> {
    let stmt = Query::update()
        .table(Ledger::Table)
        .value(Ledger::Status, FAILED)
        .value(Ledger::StatementsDone, statements_done as i32)
        .value(Ledger::DoneChecksum, done_checksum)
        .value(Ledger::Error, note)
        .and_where(Expr::col(Ledger::Id).eq(id))
        .to_owned();
    db.execute(&stmt).await.map(|_| ())
}

/// Marks every unresolved failure of `name` repaired; returns how many.
///
/// # Errors
/// A database error.
pub async fn repair<C: ConnectionTrait>(db: &C, name: &str) -> Result<u64, DbErr> {
    let stmt = Query::update()
        .table(Ledger::Table)
        .value(Ledger::Status, REPAIRED)
        .and_where(Expr::col(Ledger::Name).eq(name))
        .and_where(Expr::col(Ledger::Status).is_in(UNRESOLVED))
        .to_owned();
    Ok(db.execute(&stmt).await?.rows_affected())
}

/// Drops the ledger.
///
/// # Errors
/// A database error.
pub async fn uninstall<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute(&Table::drop().table(Ledger::Table).if_exists().to_owned())
        .await
        .map(|_| ())
}

/// Who runs migrations: host and process, for the ledger.
fn run_by() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}
