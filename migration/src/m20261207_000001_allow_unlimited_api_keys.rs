//! `api_keys.rate_limit_per_minute` becomes nullable: NULL is a key with no
//! per-minute limit. Such a key verifies with one read and records its use
//! at most once per interval (`gatehouse::api_keys`), instead of counting
//! every use in a conditional `UPDATE`. The column keeps its default of 60
//! and its `CHECK (> 0)`, which a NULL passes.
//!
//! PostgreSQL drops the `NOT NULL`; MySQL/MariaDB redefine the column
//! (`MODIFY`). SQLite cannot change a column's constraints in place, so the
//! table is rebuilt the way SQLite documents it (create the new table, copy
//! the rows, drop the old one, rename, create the indexes again), inside the
//! migration's transaction (see `use_transaction`): nothing refers to
//! `api_keys`, so the drop touches no other table.
//!
//! `down` gives every key without a limit the default of 60 per minute, then
//! puts the `NOT NULL` back.

use crate::columns::{create_table, foreign_key, index, timestamp_utc_now, timestamp_utc_null};
use crate::m20260115_000001_create_initial_schema::api_keys::ApiKeys;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::sea_orm::{DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

/// The default every key had, and gets back in `down`.
const DEFAULT_LIMIT: i32 = 60;

/// The rebuilt table's name while the old one still exists (SQLite only).
const REBUILT: &str = "api_keys_rebuilt";

#[derive(DeriveIden, Clone, Copy)]
enum RateWindow {
    RateWindowMinute,
    RateWindowCount,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on every backend, so that plain
    /// `Migrator::up` (which runs SQLite without one, each statement on any
    /// connection of the pool) rebuilds the SQLite table all or nothing, on
    /// one connection. MySQL/MariaDB commit the `MODIFY` by themselves.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_nullable(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::update()
                    .table(ApiKeys::Table)
                    .value(ApiKeys::RateLimitPerMinute, DEFAULT_LIMIT)
                    .and_where(Expr::col(ApiKeys::RateLimitPerMinute).is_null())
                    .to_owned(),
            )
            .await?;
        set_nullable(manager, false).await
    }
}

/// `rate_limit_per_minute` as `integer [NOT] NULL DEFAULT 60`.
fn limit_column(nullable: bool) -> ColumnDef {
    let mut def = ColumnDef::new(ApiKeys::RateLimitPerMinute);
    def.integer().default(DEFAULT_LIMIT);
    if nullable {
        def.null()
    } else {
        def.not_null()
    };
    def
}

async fn set_nullable(manager: &SchemaManager<'_>, nullable: bool) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    match backend {
        DbBackend::Sqlite => rebuild_on_sqlite(manager, nullable).await,
        DbBackend::Postgres => {
            let change = if nullable { "DROP" } else { "SET" };
            manager
                .get_connection()
                .execute_raw(Statement::from_string(
                    backend,
                    format!(
                        r#"ALTER TABLE "api_keys" ALTER COLUMN "rate_limit_per_minute" {change} NOT NULL"#
                    ),
                ))
                .await
                .map(drop)
        }
        _ => {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .modify_column(limit_column(nullable))
                        .to_owned(),
                )
                .await
        }
    }
}

/// Rebuilds `api_keys` with every column as it stands after the rate-window
/// migration, in order, and `rate_limit_per_minute` nullable or not.
async fn rebuild_on_sqlite(manager: &SchemaManager<'_>, nullable: bool) -> Result<(), DbErr> {
    let db = DbBackend::Sqlite;
    let rebuilt = Alias::new(REBUILT);
    manager
        .create_table(
            create_table(db, rebuilt.clone())
                .col(pk_uuid(ApiKeys::Id))
                .col(ColumnDef::new(ApiKeys::UserId).uuid().not_null())
                .col(string_len(ApiKeys::Name, 100))
                .col(string_len(ApiKeys::KeyPrefix, 32))
                .col(string_len(ApiKeys::KeyHash, 64))
                .col(json_binary(ApiKeys::Scopes))
                .col(limit_column(nullable))
                .col(big_integer(ApiKeys::UsageCount).default(0))
                .col(timestamp_utc_null(db, ApiKeys::LastUsedAt))
                .col(string_len_null(ApiKeys::LastUsedIp, 45))
                .col(timestamp_utc_null(db, ApiKeys::ExpiresAt))
                .col(boolean(ApiKeys::IsRevoked).default(false))
                .col(timestamp_utc_null(db, ApiKeys::RevokedAt))
                .col(timestamp_utc_now(db, ApiKeys::CreatedAt))
                .col(timestamp_utc_now(db, ApiKeys::UpdatedAt))
                .col(big_integer(RateWindow::RateWindowMinute).default(0))
                .col(
                    integer(RateWindow::RateWindowCount)
                        .default(0)
                        .check(Expr::col(RateWindow::RateWindowCount).gte(0)),
                )
                .check(Check::from((
                    "ck-api_keys-rate_limit_per_minute",
                    Expr::col(ApiKeys::RateLimitPerMinute).gt(0),
                )))
                .check(Check::from((
                    "ck-api_keys-usage_count",
                    Expr::col(ApiKeys::UsageCount).gte(0),
                )))
                .foreign_key(&mut foreign_key(
                    ApiKeys::Table,
                    ApiKeys::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    let columns = [
        "id",
        "user_id",
        "name",
        "key_prefix",
        "key_hash",
        "scopes",
        "rate_limit_per_minute",
        "usage_count",
        "last_used_at",
        "last_used_ip",
        "expires_at",
        "is_revoked",
        "revoked_at",
        "created_at",
        "updated_at",
        "rate_window_minute",
        "rate_window_count",
    ]
    .map(|c| format!("\"{c}\""))
    .join(", ");
    let connection = manager.get_connection();
    for sql in [
        format!(r#"INSERT INTO "{REBUILT}" ({columns}) SELECT {columns} FROM "api_keys""#),
        r#"DROP TABLE "api_keys""#.to_owned(),
        format!(r#"ALTER TABLE "{REBUILT}" RENAME TO "api_keys""#),
    ] {
        connection
            .execute_raw(Statement::from_string(db, sql))
            .await?;
    }
    manager
        .create_index(
            index(ApiKeys::Table, &[ApiKeys::KeyHash])
                .unique()
                .to_owned(),
        )
        .await?;
    for col in [ApiKeys::UserId, ApiKeys::KeyPrefix] {
        manager.create_index(index(ApiKeys::Table, &[col])).await?;
    }
    Ok(())
}
