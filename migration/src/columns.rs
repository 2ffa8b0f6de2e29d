//! Column, constraint and index builders shared by the migrations, so that
//! every table gets the same portable types and one naming scheme:
//! `pk-<table>`, `fk-<table>-<col>`, `idx-<table>-<cols>`, `uq-<table>-<cols>`,
//! `ck-<table>-<col>`.
//!
//! Frozen: what these render is part of every applied migration (and of its
//! checksum). Change a builder only by adding a new one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

/// A `CREATE TABLE` that on MySQL/MariaDB is InnoDB, utf8mb4 and
/// case-insensitive (`utf8mb4_unicode_ci`), so unique text is unique
/// regardless of case there as it is through `lower()` indexes elsewhere.
pub fn create_table<T: IntoIden + 'static>(backend: DbBackend, table: T) -> TableCreateStatement {
    let mut stmt = Table::create();
    stmt.table(table);
    if backend == DbBackend::MySql {
        stmt.engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_unicode_ci");
    }
    stmt
}

/// A point in time with microsecond precision and no 2038 limit:
/// `timestamptz` on PostgreSQL, `datetime(6)` (always UTC) on MySQL/MariaDB,
/// RFC 3339 text on SQLite.
pub fn timestamp_utc<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    let mut def = ColumnDef::new(col);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("datetime(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def.not_null().take()
}

/// [`timestamp_utc`], nullable.
pub fn timestamp_utc_null<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    let mut def = timestamp_utc(backend, col);
    def.null().take()
}

/// [`timestamp_utc`] defaulting to the current time, in the same text form the
/// driver writes on SQLite so that values compare correctly as text.
pub fn timestamp_utc_now<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    let mut def = timestamp_utc(backend, col);
    def.default(now(backend)).take()
}

/// The current time, as each backend's column default.
pub fn now(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::MySql => Expr::cust("CURRENT_TIMESTAMP(6)"),
        DbBackend::Sqlite => Expr::cust("(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"),
        _ => Expr::current_timestamp(),
    }
}

/// `CHECK (<col> IN (...))`: how enumerations are stored portably.
pub fn one_of<T: IntoIden + Clone>(table: &str, col: T, values: &[&str]) -> (String, Expr) {
    let name = format!("ck-{table}-{}", col.clone().into_iden());
    let values: Vec<Expr> = values.iter().map(|v| Expr::val(*v)).collect();
    (name, Expr::col(col).is_in(values))
}

/// `CHECK (<lo> <= <col> AND <col> <= <hi>)`.
pub fn between<T: IntoIden + Clone>(table: &str, col: T, lo: i32, hi: i32) -> (String, Expr) {
    let name = format!("ck-{table}-{}", col.clone().into_iden());
    (name, Expr::col(col).between(lo, hi))
}

/// A foreign key named `fk-<table>-<col>` with an explicit ON DELETE.
pub fn foreign_key<T, C, R>(
    table: T,
    col: C,
    ref_table: R,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
    R: IntoIden + 'static,
{
    let name = format!(
        "fk-{}-{}",
        table.clone().into_iden(),
        col.clone().into_iden()
    );
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(ref_table, Alias::new("id"))
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::Cascade)
        .take()
}

/// An index named `idx-<table>-<col>[-<col>...]`.
pub fn index<T, C>(table: T, cols: &[C]) -> IndexCreateStatement
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
{
    let names: Vec<String> = cols
        .iter()
        .map(|c| c.clone().into_iden().to_string())
        .collect();
    let mut stmt = Index::create();
    stmt.name(format!(
        "idx-{}-{}",
        table.clone().into_iden(),
        names.join("-")
    ))
    .table(table);
    for col in cols {
        stmt.col(col.clone());
    }
    stmt
}

/// Creates a unique index on `lower(<col>)` (PostgreSQL, SQLite) or on the
/// column under the table's case-insensitive collation (MySQL/MariaDB), named
/// `uq-<table>-<col>`.
pub async fn create_unique_ci<T, C>(
    manager: &SchemaManager<'_>,
    table: T,
    col: C,
) -> Result<(), DbErr>
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
{
    let backend = manager.get_database_backend();
    let table_name = table.clone().into_iden().to_string();
    let col_name = col.clone().into_iden().to_string();
    let name = format!("uq-{table_name}-{col_name}");
    match backend {
        DbBackend::MySql => {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await
        }
        DbBackend::Postgres => {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(Expr::from(Func::lower(Expr::col(col))))
                        .unique()
                        .to_owned(),
                )
                .await
        }
        // sea-query cannot render expression indexes for SQLite.
        _ => {
            let sql =
                format!(r#"CREATE UNIQUE INDEX "{name}" ON "{table_name}" (lower("{col_name}"))"#);
            manager
                .get_connection()
                .execute_raw(Statement::from_string(backend, sql))
                .await
                .map(|_| ())
        }
    }
}

/// Narrows an index to the rows matching `cond` where the backend supports
/// partial indexes (PostgreSQL, SQLite); MySQL/MariaDB index every row.
pub fn partial(
    backend: DbBackend,
    mut stmt: IndexCreateStatement,
    cond: Expr,
) -> IndexCreateStatement {
    if backend != DbBackend::MySql {
        stmt.and_where(cond);
    }
    stmt
}
