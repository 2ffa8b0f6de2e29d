//! Renders the exact statements a migration runs on a backend, without a
//! database: the migration runs against sea-orm's recording connection and
//! the recorded statements come back with their bound values.
//!
//! The runner executes these very statements, so what a dry run prints, what
//! the checksum covers and what runs are one and the same.

use sea_orm_migration::sea_orm::{
    ConnectionTrait, DbBackend, MockDatabase, MockExecResult, Statement, Value, Values,
};
use sea_orm_migration::{DbErr, MigrationTrait, SchemaManager};
use sha2::{Digest, Sha256};

/// Start of the leading comment of a statement that changes at most a batch
/// of rows, `/* gatehouse: repeat while a batch changes N rows */`: the
/// runner runs it again as long as it changes a full batch (each batch its
/// own commit where the migration runs statement by statement). A short
/// batch ends it, so rows other sessions keep adding while it runs cannot
/// keep it going for ever. Printed once, as is.
pub const REPEAT_WHILE_FULL: &str = "/* gatehouse: repeat while a batch changes ";

/// The batch size a statement marked with [`REPEAT_WHILE_FULL`] names.
pub fn repeat_batch(sql: &str) -> Option<u64> {
    sql.strip_prefix(REPEAT_WHILE_FULL)?
        .split_once(" rows */")?
        .0
        .parse()
        .ok()
}

/// Leading comment of an idempotent statement that prepares the next one
/// (dropping what a failed `CREATE INDEX CONCURRENTLY` leaves): a run that
/// resumes at the next statement runs this one again first.
pub const RETRY_WITH_NEXT: &str = "/* gatehouse: runs again when the next statement is retried */";

/// Runs `sql`, a statement changing at most `batch` rows, again as long as
/// it changes a full batch, as the runner does with the statement this
/// records (marked [`REPEAT_WHILE_FULL`]); under plain sea-orm-migration
/// (`sea-orm-cli migrate`) this loop is what repeats it. While rendering, the
/// recording connection reports no rows, so the statement is recorded once.
///
/// # Errors
/// The database's refusal of a batch.
pub async fn repeat_while_full<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    batch: u64,
) -> Result<u64, DbErr> {
    let statement = Statement::from_string(
        conn.get_database_backend(),
        format!("{REPEAT_WHILE_FULL}{batch} rows */ {sql}"),
    );
    let mut total = 0;
    loop {
        let changed = conn.execute_raw(statement.clone()).await?.rows_affected();
        total += changed;
        if changed < batch {
            return Ok(total);
        }
    }
}

/// Which way to run a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The migration's `up`: apply it.
    Up,
    /// The migration's `down`: roll it back.
    Down,
}

/// The statements `migration` executes in `direction` on `backend`, with
/// their bound values.
///
/// # Errors
/// Whatever the migration returns. A migration that reads from the database
/// while migrating cannot be rendered and fails here with a message saying so.
pub async fn render(
    migration: &dyn MigrationTrait,
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<Statement>, DbErr> {
    // Enough acknowledgements for any migration; unused ones are dropped.
    let acks = (0..10_000).map(|_| MockExecResult {
        last_insert_id: 0,
        rows_affected: 0,
    });
    let db = MockDatabase::new(backend)
        .append_exec_results(acks)
        .into_connection();
    {
        let manager = SchemaManager::new(&db);
        let result = match direction {
            Direction::Up => migration.up(&manager).await,
            Direction::Down => migration.down(&manager).await,
        };
        result.map_err(|err| {
            DbErr::Migration(format!(
                "{} cannot be rendered without a database ({err}); gatehouse migrations must consist of \
                 statements that do not depend on what a query returns",
                migration.name()
            ))
        })?;
    }
    Ok(db
        .into_transaction_log()
        .iter()
        .flat_map(|txn| txn.statements().to_vec())
        .collect())
}

/// `statement` as SQL text with its values written as literals the backend's
/// own client accepts (a UUID is a hex blob literal on MySQL and SQLite, as
/// the drivers bind it), ending in `;`.
pub fn to_sql(statement: &Statement) -> String {
    let backend = statement.db_backend;
    let literal = |value: &Value| match value {
        Value::Uuid(Some(uuid)) if backend != DbBackend::Postgres => {
            Value::Bytes(Some(uuid.as_bytes().to_vec()))
        }
        other => other.clone(),
    };
    let rendered = Statement {
        sql: statement.sql.clone(),
        values: statement
            .values
            .as_ref()
            .map(|v| Values(v.0.iter().map(literal).collect())),
        db_backend: backend,
    };
    format!("{rendered};")
}

/// [`render`] as SQL text, one statement per element.
///
/// # Errors
/// As [`render`].
pub async fn render_sql(
    migration: &dyn MigrationTrait,
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<String>, DbErr> {
    Ok(render(migration, backend, direction)
        .await?
        .iter()
        .map(to_sql)
        .collect())
}

/// SHA-256 (hex) of the SQL a migration renders: its checksum.
pub fn checksum(sql: &[String]) -> String {
    let mut hasher = Sha256::new();
    for statement in sql {
        hasher.update(statement.as_bytes());
        hasher.update(b"\n");
    }
    data_encoding::HEXLOWER.encode(&hasher.finalize())
}
