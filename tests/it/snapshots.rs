//! The DDL each migration renders, per backend and direction, as reviewed
//! snapshots: a schema change shows up in review as a snapshot diff.

use migration::render::{Direction, render_sql};
use migration::{Migrator, MigratorTrait};
use sea_orm::DbBackend;

async fn snapshot_all(backend: DbBackend, label: &str) {
    for migration in Migrator::migrations() {
        for (direction, dir) in [(Direction::Up, "up"), (Direction::Down, "down")] {
            let sql = render_sql(migration.as_ref(), backend, direction)
                .await
                .unwrap();
            assert!(!sql.is_empty(), "{} {dir} renders no SQL", migration.name());
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
