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

/// Leading comment of a statement that changes at most a batch of rows: the
/// runner runs it again until it changes none (each batch its own commit
/// where the migration runs statement by statement). Printed once, as is.
pub const REPEAT_UNTIL_NO_ROWS: &str = "/* gatehouse: repeat until no rows change */";

/// Leading comment of an idempotent statement that prepares the next one
/// (dropping what a failed `CREATE INDEX CONCURRENTLY` leaves): a run that
/// resumes at the next statement runs this one again first.
pub const RETRY_WITH_NEXT: &str = "/* gatehouse: runs again when the next statement is retried */";

/// Runs `sql`, marked [`REPEAT_UNTIL_NO_ROWS`], until it changes no rows, as
/// the runner does; plain sea-orm-migration (`sea-orm-cli migrate`) runs it
/// this way. While rendering, the recording connection reports no rows, so
/// the statement is recorded once.
///
/// # Errors
/// The database's refusal of a batch.
pub async fn repeat_until_no_rows<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<u64, DbErr> {
    let statement = Statement::from_string(
        conn.get_database_backend(),
        format!("{REPEAT_UNTIL_NO_ROWS} {sql}"),
    );
    let mut total = 0;
    loop {
        let changed = conn.execute_raw(statement.clone()).await?.rows_affected();
        if changed == 0 {
            return Ok(total);
        }
        total += changed;
    }
}

/// Which way to run a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
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
