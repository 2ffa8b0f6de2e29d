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
//! migration's transaction (see `use_transaction`). gatehouse has nothing
//! that refers to `api_keys`; when an application's table, index or trigger
//! does, the migration refuses before it changes anything (dropping the
//! table would delete the referring rows), saying what to do.
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

/// Refuses the SQLite rebuild, before it changes anything, when an
/// application's table refers to `api_keys` or its own index or trigger is
/// on it: dropping `api_keys` would delete the referring rows (or fail) and
/// drop the index or trigger. The count goes into a column whose CHECK
/// names the problem, so that SQLite's error says what to do.
const GUARD: [&str; 3] = [
    r#"CREATE TEMP TABLE "gatehouse_api_keys_guard" ("found" integer NOT NULL CONSTRAINT "an application table, index or trigger refers to api_keys: drop it, run this migration, then create it again" CHECK ("found" = 0))"#,
    r#"INSERT INTO "gatehouse_api_keys_guard" ("found") SELECT (SELECT count(*) FROM "sqlite_master" AS "m", pragma_foreign_key_list("m"."name") AS "f" WHERE "m"."type" = 'table' AND "m"."name" NOT IN ('api_keys', 'api_keys_rebuilt') AND "f"."table" = 'api_keys') + (SELECT count(*) FROM "sqlite_master" WHERE "tbl_name" = 'api_keys' AND ("type" = 'trigger' OR ("type" = 'index' AND "sql" IS NOT NULL AND "name" NOT IN ('idx-api_keys-key_hash', 'idx-api_keys-user_id', 'idx-api_keys-key_prefix'))))"#,
    r#"DROP TABLE "gatehouse_api_keys_guard""#,
];

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
    let connection = manager.get_connection();
    for sql in GUARD {
        connection
            .execute_raw(Statement::from_string(db, sql))
            .await?;
    }
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
