//! Renders the exact statements a migration runs on a backend, without a
//! database: the migration runs against sea-orm's recording connection and
//! the recorded statements are printed with their values inlined.

use sea_orm_migration::sea_orm::{DbBackend, MockDatabase, MockExecResult};
use sea_orm_migration::{DbErr, MigrationTrait, SchemaManager};

/// Which way to run a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// The SQL `migration` executes in `direction` on `backend`, one statement
/// per element, values inlined.
///
/// # Errors
/// Whatever the migration returns; a migration that reads from the database
/// while migrating cannot be rendered and fails here.
pub async fn render_sql(
    migration: &dyn MigrationTrait,
    backend: DbBackend,
    direction: Direction,
) -> Result<Vec<String>, DbErr> {
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
        match direction {
            Direction::Up => migration.up(&manager).await?,
            Direction::Down => migration.down(&manager).await?,
        }
    }
    Ok(db
        .into_transaction_log()
        .iter()
        .flat_map(|txn| txn.statements().iter().map(ToString::to_string))
        .collect())
}
