//! PostgreSQL: `audit_logs` becomes range-partitioned by month on
//! `created_at`, so retention drops whole months instead of deleting rows
//! (seed 000: "audit_logs can grow quickly ... enable partitioning").
//!
//! - Monthly partitions `audit_logs_yYYYYmMM` cover `[first of month, first of
//!   next month)` in UTC, from the oldest row's month (at most 36 months
//!   back) through three months ahead; `audit_logs_default` takes anything
//!   else. `gatehouse audit partitions ensure` keeps creating months ahead.
//! - The primary key becomes `(id, created_at)`: PostgreSQL requires the
//!   partition column in every unique constraint. Ids are random UUIDs.
//! - A `retention_days` index lets prune read a partition's longest
//!   retention without scanning it.
//!
//! Rows are copied into the new table in this migration's transaction; down
//! copies them back into a plain table. MySQL/MariaDB and SQLite keep the
//! plain table (prune deletes in batches there): nothing runs on them.

use crate::columns::index;
use crate::m20260115_000003_create_security_enhancements::audit_logs::{self, AuditLogs};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_uuid, uuid};
use sea_orm_migration::sea_orm::{DbBackend, Statement};

/// The plain table while its rows are copied, on the way up or down.
const ASIDE: &str = "audit_logs_unpartitioned";
/// Partitions older than this many months before now are not created by
/// the migration; older rows go to the default partition.
const MONTHS_BACK: i32 = 36;
/// Months ahead of the current one the migration creates.
const MONTHS_AHEAD: i32 = 3;

const COLUMNS: &[&str] = &[
    "id",
    "user_id",
    "session_id",
    "event_type",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "request_id",
    "http_method",
    "request_path",
    "status_code",
    "ip_address",
    "user_agent",
    "is_suspicious",
    "risk_level",
    "country_code",
    "region",
    "city",
    "duration_ms",
    "response_size_bytes",
    "retention_days",
    "metadata",
    "created_at",
];

/// The index on `retention_days` this migration adds.
fn retention_index() -> IndexCreateStatement {
    index(AuditLogs::Table, &[AuditLogs::RetentionDays])
}

fn index_name(stmt: &IndexCreateStatement) -> String {
    stmt.get_index_spec()
        .get_name()
        .expect("every index is named")
        .to_owned()
}

async fn exec(manager: &SchemaManager<'_>, sql: String) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map(|_| ())
}

/// Renames the table and its primary key aside and drops its secondary
/// indexes, freeing their names for the table that replaces it.
async fn set_aside(
    manager: &SchemaManager<'_>,
    indexes: &[IndexCreateStatement],
) -> Result<(), DbErr> {
    exec(
        manager,
        format!(r#"ALTER TABLE "audit_logs" RENAME TO "{ASIDE}""#),
    )
    .await?;
    exec(
        manager,
        format!(r#"ALTER INDEX "audit_logs_pkey" RENAME TO "{ASIDE}_pkey""#),
    )
    .await?;
    for stmt in indexes {
        manager
            .drop_index(Index::drop().name(index_name(stmt)).to_owned())
            .await?;
    }
    Ok(())
}

/// Copies every row from the table set aside into `audit_logs`, then drops it.
async fn copy_back(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let columns = COLUMNS
        .iter()
        .map(|c| format!(r#""{c}""#))
        .collect::<Vec<_>>()
        .join(", ");
    exec(
        manager,
        format!(r#"INSERT INTO "audit_logs" ({columns}) SELECT {columns} FROM "{ASIDE}""#),
    )
    .await?;
    exec(manager, format!(r#"DROP TABLE "{ASIDE}""#)).await
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        if db != DbBackend::Postgres {
            return Ok(());
        }
        set_aside(manager, &audit_logs::indexes(db)).await?;
        let table = audit_logs::definition(db, uuid(AuditLogs::Id))
            .primary_key(Index::create().col(AuditLogs::Id).col(AuditLogs::CreatedAt))
            .to_string(PostgresQueryBuilder);
        exec(
            manager,
            format!(r#"{table} PARTITION BY RANGE ("created_at")"#),
        )
        .await?;
        exec(
            manager,
            r#"CREATE TABLE "audit_logs_default" PARTITION OF "audit_logs" DEFAULT"#.to_owned(),
        )
        .await?;
        // Month arithmetic on `timestamp` (UTC wall clock), so the session's
        // time zone cannot shift a bound. One line, like every statement
        // `migrate sql` prints.
        let months = [
            "DO $$ DECLARE",
            &format!(
                r#"oldest timestamp := (SELECT min("created_at") FROM "{ASIDE}") AT TIME ZONE 'UTC';"#
            ),
            "this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');",
            "month timestamp;",
            "BEGIN",
            "month := greatest(date_trunc('month', coalesce(oldest, this_month)),",
            &format!("this_month - interval '{MONTHS_BACK} months');"),
            &format!("WHILE month <= this_month + interval '{MONTHS_AHEAD} months' LOOP"),
            r#"EXECUTE format('CREATE TABLE %I PARTITION OF "audit_logs" FOR VALUES FROM (%L) TO (%L)',"#,
            r#"to_char(month, '"audit_logs_y"YYYY"m"MM'),"#,
            r#"to_char(month, 'YYYY-MM-DD"T00:00:00Z"'),"#,
            r#"to_char(month + interval '1 month', 'YYYY-MM-DD"T00:00:00Z"'));"#,
            "month := month + interval '1 month';",
            "END LOOP;",
            "END $$",
        ];
        exec(manager, months.join(" ")).await?;
        copy_back(manager).await?;
        for stmt in audit_logs::indexes(db)
            .into_iter()
            .chain([retention_index()])
        {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        if db != DbBackend::Postgres {
            return Ok(());
        }
        let mut indexes = audit_logs::indexes(db);
        indexes.push(retention_index());
        // Dropping the partitioned table at the end drops its partitions.
        set_aside(manager, &indexes).await?;
        manager
            .create_table(audit_logs::definition(db, pk_uuid(AuditLogs::Id)))
            .await?;
        copy_back(manager).await?;
        for stmt in audit_logs::indexes(db) {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }
}
