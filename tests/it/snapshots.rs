//! The DDL each migration renders, per backend and direction, as reviewed
//! snapshots: a schema change shows up in review as a snapshot diff.

use gatehouse_migration::render::{Direction, render_sql};
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::DbBackend;

async fn snapshot_all(backend: DbBackend, label: &str) {
    for migration in Migrator::migrations() {
        for (direction, dir) in [(Direction::Up, "up"), (Direction::Down, "down")] {
            let sql = render_sql(migration.as_ref(), backend, direction)
                .await
                .unwrap();
            // Partitioning audit_logs is PostgreSQL's alone.
            let postgres_only = migration.name() == "m20261121_000003_partition_audit_logs";
            assert_eq!(
                sql.is_empty(),
                postgres_only && backend != DbBackend::Postgres,
                "{} {dir} on {label}: {} statement(s)",
                migration.name(),
                sql.len()
            );
            insta::assert_snapshot!(
                format!("{}__{label}__{dir}", migration.name()),
                sql.join("\n\n")
            );
        }
    }
}

#[tokio::test]
async fn postgres_ddl() {
    snapshot_all(DbBackend::Postgres, "postgres").await;
}

#[tokio::test]
async fn mysql_ddl() {
    snapshot_all(DbBackend::MySql, "mysql").await;
}

#[tokio::test]
async fn sqlite_ddl() {
    snapshot_all(DbBackend::Sqlite, "sqlite").await;
}
